"""`enpact predict`: predictor features of reference (and optionally haplotype) windows into an HDF5 store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import add_sample_arguments, existing_file, read_sample_list
from enpact.cli._predictor_args import add_predictor_arguments, predictor_from_args
from enpact.genome import Genome
from enpact.loci import read_loci
from enpact.predict import collect_feature_store, dedup_summary, predict_loci
from enpact.store import write_feature_store
from enpact.variants import VariantCounts, VcfReader

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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Predict and write the feature store."""
    genome = Genome(args.fasta)
    loci = read_loci(args.loci)
    for chrom in loci["chrom"].unique():
        genome.resolve(chrom)
    vcf = None
    if args.vcf:
        vcf = VcfReader(args.vcf, read_sample_list(args.samples, args.samples_file), args.allow_unphased)
    predictor = predictor_from_args(args)
    counts = VariantCounts()
    predictions = predict_loci(predictor, genome, loci, vcf, counts, progress=not args.no_progress)
    samples = vcf.samples if vcf is not None else []
    meta = {"predictor": predictor.describe(), "vcf": str(args.vcf) if args.vcf else None}
    store = collect_feature_store(predictions, loci["locus_id"].tolist(), samples, meta)
    write_feature_store(args.out, store)
    if vcf is not None:
        vcf.counts.log(str(args.vcf))
    summary = dedup_summary(store)
    log.info("wrote %s: %d loci, %d windows predicted for %d haplotype windows (%.1f%%)", args.out,
             summary["loci"], summary["predicted_windows"], summary["haplotype_windows"],
             100 * summary["fraction_predicted"])
    return 0
