"""`enpact chunk`: split loci and samples into chunks named from their content (stable across reruns)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import existing_file, set_step
from enpact.steps import ChunkConfig, chunk

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
    set_step(p, config, chunk)


def config(args: argparse.Namespace) -> ChunkConfig:
    """The step's configuration from the arguments."""
    return ChunkConfig(loci=args.loci, outdir=args.outdir, loci_per_chunk=args.loci_per_chunk,
                       samples_per_chunk=args.samples_per_chunk, vcf=args.vcf, samples_file=args.samples_file)
