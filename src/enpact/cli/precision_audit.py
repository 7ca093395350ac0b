"""`enpact precision-audit`: personalized predictions at lower precisions against fp32, on your data and weights."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import comma_list, existing_file, set_step
from enpact.steps import PrecisionAuditConfig, precision_audit

ORDER = 95
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `precision-audit` subcommand."""
    p = subparsers.add_parser(
        "precision-audit",
        help="measure what lower predictor precisions (tf32, bf16, fp16) cost: agreement with fp32 and speed",
        description="Run predictor + EnPACT model on a sample of loci x individuals at fp32 and at each precision "
        "given, and report per locus the across-individual correlation with fp32 and the error relative to the "
        "between-individual spread, and per precision the time per window. Use a precision other than fp32 for a "
        "study only where this shows it keeps the between-individual differences.",
    )
    p.add_argument("--fasta", required=True, type=existing_file)
    p.add_argument("--loci", required=True, type=existing_file, help="loci TSV (e.g. results/loci/loci.tsv)")
    p.add_argument("--vcf", required=True, type=existing_file)
    p.add_argument("--samples-file", type=Path, help="individuals to sample from (default: the VCF's)")
    p.add_argument("--model", required=True, type=existing_file, help="EnPACT model directory")
    p.add_argument("--weights", help="predictor weights (default: those recorded in the model)")
    p.add_argument("--precisions", type=comma_list, default=["bf16", "fp16"],
                   help="precisions to compare with fp32 (default bf16,fp16; also tf32 on GPUs)")
    p.add_argument("--n-loci", type=int, default=20, help="loci sampled evenly (default 20)")
    p.add_argument("--n-samples", type=int, default=50, help="individuals sampled evenly (default 50)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--out", required=True, type=Path,
                   help="per-precision summary TSV; OUT with .loci.tsv instead of .tsv holds the per-locus values")
    set_step(p, config, precision_audit)


def config(args: argparse.Namespace) -> PrecisionAuditConfig:
    """The step's configuration from the arguments."""
    return PrecisionAuditConfig(fasta=args.fasta, loci=args.loci, vcf=args.vcf, model=args.model, out=args.out,
                                samples_file=args.samples_file, weights=args.weights,
                                precisions=tuple(args.precisions), n_loci=args.n_loci, n_samples=args.n_samples,
                                device=args.device, batch_size=args.batch_size)
