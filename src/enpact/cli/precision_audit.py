"""`enpact precision-audit`: personalized predictions at lower precisions against fp32, on your data and weights."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import comma_list, existing_file
from enpact.io import atomic_path

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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Sample, audit, write the tables."""
    from enpact.errors import EnpactError
    from enpact.genome import Genome
    from enpact.loci import read_loci
    from enpact.models import load_model
    from enpact.precision_audit import audit_precisions, sample_evenly
    from enpact.variants import VcfReader, read_sample_list

    if args.n_loci < 1 or args.n_samples < 3:
        raise EnpactError("--n-loci must be at least 1 and --n-samples at least 3")
    loci = read_loci(args.loci)
    loci = loci[loci["locus_id"].isin(sample_evenly(loci["locus_id"].tolist(), args.n_loci))]
    samples = read_sample_list(args.samples_file) if args.samples_file else None
    vcf_all = VcfReader(args.vcf, samples)
    vcf = VcfReader(args.vcf, sample_evenly(list(vcf_all.samples), args.n_samples))
    model = load_model(args.model)
    result = audit_precisions(Genome(args.fasta), loci, vcf, model, args.weights or model.feature_spec.weights,
                              list(args.precisions), args.device, args.batch_size)
    with atomic_path(args.out) as tmp:
        result.summary.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    per_locus = args.out.with_name(args.out.name.removesuffix(".tsv") + ".loci.tsv")
    with atomic_path(per_locus) as tmp:
        result.loci.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    for row in result.summary.to_dict("records"):
        log.info("%s: median r with fp32 %.3f over %d loci (%d below 0.5), median error %.0f%% of the "
                 "between-individual spread, %.4f s per window", row["precision"], row["median_r"], row["loci"],
                 row["loci_r_below_0.5"], 100 * row["median_relative_error"], row["seconds_per_window"])
    return 0
