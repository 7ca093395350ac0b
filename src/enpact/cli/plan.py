"""`enpact plan`: the distinct windows of a loci chunk over every individual, in parts for the predictor tasks."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import (add_sample_arguments, add_variant_arguments, existing_file, samples_or_none, set_step,
                                variant_options)
from enpact.steps import PlanConfig, plan

ORDER = 48
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `plan` subcommand."""
    p = subparsers.add_parser(
        "plan", help="decide which haplotype windows of a loci chunk are identical, over every individual",
        description="Read the genotypes of every individual (or --samples/--samples-file) at the chunk's loci and "
        "give each haplotype the index of its distinct window (identity: the set of applied variants; no sequence is "
        "built); split the distinct windows into parts of at most --windows-per-part for the predictor tasks "
        "(`enpact personalize --plan OUT --part K`), which `enpact merge --plan OUT` maps back to every haplotype. "
        "The predictor then runs once per distinct window of a locus, whatever the chunk sizes.",
    )
    p.add_argument("--fasta", required=True, type=existing_file)
    p.add_argument("--loci", required=True, type=existing_file, help="loci TSV (a chunk)")
    p.add_argument("--vcf", required=True, type=existing_file, help="phased, indexed VCF/BCF")
    add_sample_arguments(p)
    p.add_argument("--allow-unphased", action="store_true")
    p.add_argument("--features", type=existing_file, help="reference feature store (its predictor window)")
    p.add_argument("--window-bp", type=int, help="the predictor window (default: that of --features)")
    p.add_argument("--windows-per-part", type=int, default=10000,
                   help="distinct windows per predictor task (default 10,000)")
    add_variant_arguments(p)
    p.add_argument("--parts-file", type=Path, help="also write the number of parts to this file (for workflows)")
    p.add_argument("--out", required=True, type=Path, help="output plan (HDF5)")
    set_step(p, config, plan)


def config(args: argparse.Namespace) -> PlanConfig:
    """The step's configuration from the arguments."""
    return PlanConfig(fasta=args.fasta, loci=args.loci, vcf=args.vcf, out=args.out, features=args.features,
                      parts_file=args.parts_file,
                      window_bp=args.window_bp, samples=samples_or_none(args.samples), samples_file=args.samples_file,
                      windows_per_part=args.windows_per_part, allow_unphased=args.allow_unphased,
                      **variant_options(args))
