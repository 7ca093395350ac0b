"""`enpact select`: the loci to personalize, near a trait's signal (GWAS p-value, credible sets, regions)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import existing_file, set_step
from enpact.steps import SelectConfig, select

ORDER = 9
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `select` subcommand."""
    p = subparsers.add_parser(
        "select", help="the loci to personalize: near GWAS signals, credible-set variants or regions",
        description="Keep the loci whose window (--window-bp, or the predictor window of the reference store "
        "--features) holds a GWAS variant with p below the threshold, a fine-mapped credible-set variant, or overlaps "
        "a region (any criterion given). Writes OUT (the loci, with a selected_by column) and its chunks under "
        "--chunks; the reference pass and the EnPACT model keep every locus.",
    )
    p.add_argument("--loci", required=True, type=existing_file, help="loci table (enpact loci / loci-union)")
    p.add_argument("--features", type=existing_file, help="reference feature store (its predictor window)")
    p.add_argument("--window-bp", type=int, help="window around each locus (default: the predictor's)")
    p.add_argument("--gwas", type=existing_file, help="GWAS summary statistics")
    p.add_argument("--gwas-snp-column", default="variant_id", help="its chrom_pos_ref_alt id column")
    p.add_argument("--gwas-pvalue-column", default="pvalue")
    p.add_argument("--gwas-pvalue-threshold", type=float, default=5e-8)
    p.add_argument("--credible-sets", type=existing_file,
                   help="fine-mapped variants: a table with variant_id (chrom_pos_ref_alt) or chrom and pos (1-based)")
    p.add_argument("--regions", type=existing_file, help="BED regions")
    p.add_argument("--loci-per-chunk", type=int, default=50)
    p.add_argument("--chunks", required=True, type=Path, help="folder for the selected loci's chunks")
    p.add_argument("--out", required=True, type=Path, help="selected loci TSV")
    set_step(p, config, select)


def config(args: argparse.Namespace) -> SelectConfig:
    """The step's configuration from the arguments."""
    return SelectConfig(loci=args.loci, out=args.out, chunks=args.chunks, loci_per_chunk=args.loci_per_chunk,
                        features=args.features, window_bp=args.window_bp, gwas=args.gwas,
                        gwas_snp_column=args.gwas_snp_column, gwas_pvalue_column=args.gwas_pvalue_column,
                        gwas_pvalue_threshold=args.gwas_pvalue_threshold, credible_sets=args.credible_sets,
                        regions=args.regions)
