"""`enpact loci`: build the loci table from a feature annotation and the training matrix."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import comma_list, existing_file, set_step
from enpact.loci import ANNOTATION_FORMATS
from enpact.steps import LociConfig, LociUnionConfig, loci, loci_union

ORDER = 5
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `loci` subcommand."""
    p = subparsers.add_parser(
        "loci",
        help="build the loci table (TSS or peak centres, chromosome splits)",
        description="Loci for features present in both the annotation and the matrix: genes by TSS (GTF, GFF3, "
        "TSV) or peaks by midpoint (BED, or chr_start_end feature names), split by chromosome.",
    )
    p.add_argument("--annotation", type=Path, help="GTF/GFF3/TSV gene annotation or BED peaks "
                   "(not needed with --annotation-format names)")
    p.add_argument("--annotation-format", choices=ANNOTATION_FORMATS, default="auto")
    p.add_argument("--expression", required=True, type=existing_file, help="training matrix NAME IND1 IND2 ...")
    p.add_argument("--fasta", required=True, type=existing_file, help="indexed reference FASTA (chromosome names)")
    p.add_argument("--train-chroms", help="comma-separated training chromosomes (default: all numbered "
                   "autosomes not held out)")
    p.add_argument("--valid-chroms", help="comma-separated validation chromosomes (default: second-to-last "
                   "numbered autosome with loci)")
    p.add_argument("--test-chroms", help="comma-separated test chromosomes (default: last numbered autosome "
                   "with loci)")
    p.add_argument("--gene-types", help="comma-separated gene types to keep (default: all)")
    p.add_argument("--out", required=True, type=Path, help="output loci TSV; dropped features go to OUT.dropped.tsv")
    set_step(p, config, loci)

    u = subparsers.add_parser(
        "loci-union",
        help="the loci tables of several contexts as one (one predictor pass serves them all)",
        description="Union of the contexts' loci tables (enpact loci, one per context), with a contexts column "
        "naming the contexts that use each locus; a locus id placed differently by two contexts is an error.",
    )
    u.add_argument("--loci", required=True, nargs="+", type=existing_file, help="the contexts' loci tables")
    u.add_argument("--contexts", required=True, type=comma_list, help="comma-separated context names, in the "
                   "order of --loci")
    u.add_argument("--out", required=True, type=Path, help="output union loci TSV")
    set_step(u, union_config, loci_union)


def config(args: argparse.Namespace) -> LociConfig:
    """The step's configuration from the arguments."""
    return LociConfig(expression=args.expression, fasta=args.fasta, out=args.out, annotation=args.annotation,
                      annotation_format=args.annotation_format, train_chroms=args.train_chroms,
                      valid_chroms=args.valid_chroms, test_chroms=args.test_chroms, gene_types=args.gene_types)


def union_config(args: argparse.Namespace) -> LociUnionConfig:
    """The loci-union step's configuration from the arguments."""
    return LociUnionConfig(loci=tuple(args.loci), contexts=tuple(args.contexts), out=args.out)
