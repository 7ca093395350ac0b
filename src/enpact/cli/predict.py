"""`enpact predict`: predictor features of reference (and optionally haplotype) windows into an HDF5 store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import add_sample_arguments, existing_file, samples_or_none, set_step
from enpact.cli._predictor_args import add_predictor_arguments, predictor_config
from enpact.steps import PredictConfig, predict

ORDER = 20
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `predict` subcommand."""
    p = subparsers.add_parser(
        "predict",
        help="predictor features of loci windows (reference, or haplotypes with --vcf)",
        description="Run the sequence predictor on the reference window of every locus (and, with --vcf, on every "
        "distinct haplotype window) and store the summarised features in HDF5.",
    )
    p.add_argument("--fasta", required=True, type=existing_file, help="indexed reference FASTA")
    p.add_argument("--loci", required=True, type=existing_file, help="loci TSV (locus_id, chrom, center)")
    p.add_argument("--vcf", type=existing_file, help="phased, indexed VCF/BCF (omit for reference windows only)")
    add_sample_arguments(p)
    p.add_argument("--allow-unphased", action="store_true", help="use unphased genotypes in the order written")
    add_predictor_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, type=Path, help="output HDF5 feature store")
    set_step(p, config, predict)


def config(args: argparse.Namespace) -> PredictConfig:
    """The step's configuration from the arguments."""
    return PredictConfig(fasta=args.fasta, loci=args.loci, out=args.out, predictor=predictor_config(args),
                         vcf=args.vcf, samples=samples_or_none(args.samples), samples_file=args.samples_file,
                         allow_unphased=args.allow_unphased, progress=not args.no_progress)
