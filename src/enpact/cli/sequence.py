"""`enpact sequence`: write the exact predictor input windows as FASTA, for auditing."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import add_sample_arguments, existing_file, samples_or_none, set_step
from enpact.steps import SequenceConfig, sequence

ORDER = 10
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sequence` subcommand."""
    p = subparsers.add_parser(
        "sequence",
        help="write reference and haplotype windows as FASTA",
        description="Write the exact predictor input windows as FASTA records named "
        "{locus_id}|{sample}|{haplotype} (haplotype 'ref', '1' or '2').",
    )
    p.add_argument("--fasta", required=True, type=existing_file, help="indexed reference FASTA")
    p.add_argument("--loci", required=True, type=existing_file, help="loci TSV (locus_id, chrom, center)")
    p.add_argument("--window-bp", required=True, type=int, help="window length in bp")
    p.add_argument("--vcf", type=existing_file, help="phased, indexed VCF/BCF (omit for reference windows only)")
    add_sample_arguments(p)
    p.add_argument("--allow-unphased", action="store_true", help="use unphased genotypes in the order written")
    p.add_argument("--line-width", type=int, default=60, help="FASTA line width (0: one line per record)")
    p.add_argument("--out", required=True, type=Path, help="output FASTA")
    set_step(p, config, sequence)


def config(args: argparse.Namespace) -> SequenceConfig:
    """The step's configuration from the arguments."""
    return SequenceConfig(fasta=args.fasta, loci=args.loci, window_bp=args.window_bp, out=args.out, vcf=args.vcf,
                          samples=samples_or_none(args.samples), samples_file=args.samples_file,
                          allow_unphased=args.allow_unphased, line_width=args.line_width)
