"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any
from pathlib import Path



def existing_file(value: str) -> Path:
    """argparse type: a path that must exist (checked at parse time, reported as one line)."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return path


def comma_list(value: str) -> list[str]:
    """argparse type: a comma-separated list, empty items dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def samples_or_none(values: list[str] | None) -> tuple[str, ...] | None:
    """--samples as a configuration value (None: all samples of the VCF, or those of --samples-file)."""
    return tuple(values) if values else None


def run_step(args: argparse.Namespace) -> int:
    """A step's subcommand: the configuration from the arguments, then the step."""
    args.step(args.config(args))
    return 0


def set_step(parser: argparse.ArgumentParser, config: Callable[[argparse.Namespace], Any],
             step: Callable[..., Any]) -> None:
    """Make a subcommand run `step` on the configuration `config` builds from its arguments."""
    parser.set_defaults(func=run_step, config=config, step=step)


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """--samples / --samples-file, used by every command that reads a VCF."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--samples", type=comma_list, help="comma-separated sample ids (default: all in the VCF)")
    group.add_argument("--samples-file", type=Path, help="file with one sample id per line")
