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


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """--variants and linearization's variant options: which variants the personalized haplotypes carry."""
    from enpact.steps import VARIANT_CHOICES

    group = parser.add_argument_group("variants the haplotypes carry")
    group.add_argument("--variants", choices=VARIANT_CHOICES, default="all",
                       help="all (default), or linearizable: only the variants `enpact linearize` with the options "
                       "below will use (inside its window, passing its filters, frequencies over the panel)")
    group.add_argument("--panel-samples-file", type=existing_file,
                       help="the linearization panel's individuals, for the allele frequencies (default: all VCF "
                       "samples)")
    group.add_argument("--lin-window-bp", type=int, help="the linearization window (default: the predictor's)")
    group.add_argument("--maf", type=float, default=0.01)
    group.add_argument("--keep-indels", action="store_true")
    group.add_argument("--keep-ambiguous", action="store_true")
    group.add_argument("--keep-multiallelic", action="store_true")
    group.add_argument("--require-rsid", action="store_true")


def variant_options(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration fields of add_variant_arguments."""
    return dict(variants=args.variants, panel_samples_file=args.panel_samples_file, lin_window_bp=args.lin_window_bp,
                maf=args.maf, keep_indels=args.keep_indels, keep_ambiguous=args.keep_ambiguous,
                keep_multiallelic=args.keep_multiallelic, require_rsid=args.require_rsid)
