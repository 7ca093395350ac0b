"""`enpact loci`: build the loci table from a feature annotation and the training matrix."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import existing_file
from enpact.expression import read_expression
from enpact.genome import Genome
from enpact.io import atomic_path
from enpact.loci import ANNOTATION_FORMATS, build_loci, write_loci

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
    p.set_defaults(func=run)


def warn_dropped(dropped) -> None:
    """Features dropped for their chromosome, at WARNING with counts (the others are expected and in the report)."""
    def where(reason: str) -> tuple[int, str]:
        rows = dropped[dropped["reason"] == reason]
        return len(rows), ", ".join(f"{c} {n}" for c, n in rows["chrom"].value_counts().items())

    n, chroms = where("chromosome_not_in_any_split")
    if n:
        log.warning("%d features on chromosomes in no split (%s) are not trained on, personalized or linearized; "
                    "sex and mitochondrial chromosomes are used only when a split names them (haploid chrX "
                    "genotypes in males are then treated as diploid)", n, chroms)
    n, chroms = where("chromosome_not_in_fasta")
    if n:
        log.warning("%d features on chromosomes the FASTA lacks (%s) are dropped: check the genome build and "
                    "naming", n, chroms)


def run(args: argparse.Namespace) -> int:
    """Build and write loci plus the dropped-features report."""
    matrix = read_expression(args.expression)
    genome = Genome(args.fasta)
    annotation = args.annotation if args.annotation is not None else args.expression
    if args.annotation is None and args.annotation_format != "names":
        from enpact.errors import EnpactError

        raise EnpactError("--annotation is required unless --annotation-format names")
    loci, dropped = build_loci(annotation, args.annotation_format, matrix.index.tolist(), genome.chroms,
                               args.train_chroms, args.valid_chroms, args.test_chroms, args.gene_types)
    write_loci(loci, args.out)
    dropped_path = args.out.with_name(args.out.name.removesuffix(".tsv") + ".dropped.tsv")
    with atomic_path(dropped_path) as tmp:
        dropped.to_csv(tmp, sep="\t", index=False)
    warn_dropped(dropped)
    counts = loci["split"].value_counts().to_dict()
    log.info("wrote %s: %d loci (%s); %d features dropped (%s), see %s", args.out, len(loci),
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), len(dropped),
             ", ".join(f"{k} {v}" for k, v in dropped["reason"].value_counts().items()) or "none", dropped_path)
    return 0
