"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from enpact.errors import EnpactError


def existing_file(value: str) -> Path:
    """argparse type: a path that must exist (checked at parse time, reported as one line)."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return path


def comma_list(value: str) -> list[str]:
    """argparse type: a comma-separated list, empty items dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def read_sample_list(samples: list[str] | None, samples_file: Path | None) -> list[str] | None:
    """Samples from --samples or --samples-file (one id per line, '#' comments), or None for all."""
    if samples and samples_file:
        raise EnpactError("give --samples or --samples-file, not both")
    if samples_file:
        lines = Path(samples_file).read_text().splitlines()
        ids = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
        if not ids:
            raise EnpactError(f"{samples_file}: no sample ids in file")
        return ids
    return samples or None


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """--samples / --samples-file, used by every command that reads a VCF."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--samples", type=comma_list, help="comma-separated sample ids (default: all in the VCF)")
    group.add_argument("--samples-file", type=Path, help="file with one sample id per line")
