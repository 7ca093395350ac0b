"""`enpact chunk`: split loci and samples into chunks named from their content (stable across reruns)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import existing_file, read_sample_list
from enpact.loci import read_loci, write_chunks
from enpact.variants import VcfReader

ORDER = 8
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `chunk` subcommand."""
    p = subparsers.add_parser("chunk", help="split loci and samples into chunks",
                              description="Write loci chunks (DIR/loci/<first>--<last>.tsv) and sample chunks "
                              "(DIR/samples/<first>--<last>.txt).")
    p.add_argument("--loci", required=True, type=existing_file)
    p.add_argument("--loci-per-chunk", type=int, default=50)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--vcf", type=existing_file, help="take the samples from this VCF's header")
    group.add_argument("--samples-file", type=existing_file, help="file with one sample id per line")
    p.add_argument("--samples-per-chunk", type=int, default=500)
    p.add_argument("--outdir", required=True, type=Path)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the chunk files."""
    loci = read_loci(args.loci)
    samples: list[str] = []
    if args.samples_file:
        samples = read_sample_list(None, args.samples_file) or []
    elif args.vcf:
        samples = VcfReader(args.vcf).samples
    loci_files, sample_files = write_chunks(loci, args.loci_per_chunk, samples, args.samples_per_chunk, args.outdir)
    log.info("wrote %d loci chunks and %d sample chunks under %s", len(loci_files), len(sample_files), args.outdir)
    return 0
