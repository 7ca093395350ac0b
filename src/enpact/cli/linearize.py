"""`enpact linearize`: per-locus elastic nets from dosages to personalized EnPACT values."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import existing_file, set_step
from enpact.steps import LinearizeConfig, linearize

ORDER = 60
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `linearize` subcommand."""
    p = subparsers.add_parser(
        "linearize",
        help="per-locus elastic nets: variant dosages -> personalized EnPACT values",
        description="For each locus, fit an elastic net across individuals from the alt-allele dosages of the "
        "variants inside the predictor window to the personalized EnPACT value (mean of the two haplotypes).",
    )
    p.add_argument("--personalized", required=True, type=existing_file, help="personalized store (enpact merge)")
    p.add_argument("--context", help="the context to linearize, for a store of several")
    p.add_argument("--vcf", required=True, type=existing_file, help="the phased VCF the store was made from")
    p.add_argument("--loci", required=True, type=existing_file, help="loci TSV (a chunk or all)")
    p.add_argument("--window-bp", type=int, help="variant window around the locus centre (default: the predictor's)")
    filters = p.add_argument_group("variant filters (PredictDB defaults)")
    filters.add_argument("--maf", type=float, default=0.01, help="minimum minor allele frequency (default 0.01)")
    filters.add_argument("--keep-indels", action="store_true", help="also use indels")
    filters.add_argument("--keep-ambiguous", action="store_true", help="also use strand-ambiguous A/T and C/G SNVs")
    filters.add_argument("--keep-multiallelic", action="store_true", help="also use multi-allelic sites (one column per ALT)")
    filters.add_argument("--build", default="b38", help="genome build suffix of varIDs (default b38)")
    filters.add_argument("--require-rsid", action="store_true",
                         help="only variants with an rsid (for databases keyed by rsid: PredictDB filters before fitting)")
    fit = p.add_argument_group("elastic net")
    fit.add_argument("--folds", type=int, default=10)
    fit.add_argument("--alpha", type=float, default=0.5, help="elastic-net mixing (l1 ratio), default 0.5")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--min-snps", type=int, default=2, help="loci with fewer usable variants are skipped")
    gwas = p.add_argument_group("optional selection of loci near GWAS signals")
    gwas.add_argument("--gwas", type=existing_file, help="GWAS summary statistics")
    gwas.add_argument("--gwas-snp-column", default="variant_id", help="column with chrom_pos_ref_alt ids")
    gwas.add_argument("--gwas-pvalue-column", default="pvalue")
    gwas.add_argument("--gwas-pvalue-threshold", type=float, default=5e-8)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, type=Path,
                   help="the linearization chunk (HDF5: summary, weights, covariances) that `enpact database` reads")
    set_step(p, config, linearize)


def config(args: argparse.Namespace) -> LinearizeConfig:
    """The step's configuration from the arguments."""
    return LinearizeConfig(
        personalized=args.personalized, vcf=args.vcf, loci=args.loci, out=args.out, context=args.context,
        window_bp=args.window_bp, maf=args.maf, keep_indels=args.keep_indels, keep_ambiguous=args.keep_ambiguous,
        keep_multiallelic=args.keep_multiallelic, require_rsid=args.require_rsid, build=args.build,
        folds=args.folds, alpha=args.alpha, seed=args.seed, min_snps=args.min_snps, gwas=args.gwas,
        gwas_snp_column=args.gwas_snp_column, gwas_pvalue_column=args.gwas_pvalue_column,
        gwas_pvalue_threshold=args.gwas_pvalue_threshold, progress=not args.no_progress,
    )
