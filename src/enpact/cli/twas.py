"""`enpact twas`: S-PrediXcan association of a PredictDB model database with GWAS summary statistics."""

from __future__ import annotations

import argparse
from pathlib import Path

from enpact.errors import EnpactError
from enpact.twas import GwasColumns, run_twas

ORDER = 80

SEPARATOR_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t", "space": " ", "comma": ",",
                   "whitespace": None, "ANY_WHITESPACE": None}


def separator(value: str) -> str | None:
    """argparse type: one separator character, or a name (tab, '\\t', comma, space, whitespace)."""
    if value in SEPARATOR_NAMES:
        return SEPARATOR_NAMES[value]
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"separator must be one character or tab/comma/space/whitespace, not '{value}'")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `twas` subcommand (options also accept SPrediXcan.py's underscore spellings)."""
    p = subparsers.add_parser(
        "twas",
        help="S-PrediXcan: gene-level association from GWAS summary statistics and a PredictDB model database",
        description="Same method, inputs and output columns as MetaXcan's SPrediXcan.py. Options also accept "
        "SPrediXcan.py's spellings (--model_db_path, --gwas_file, ...).",
    )
    p.add_argument("--model-db-path", "--model_db_path", dest="model_db_path", type=Path, required=True,
                   help="PredictDB model database (.db)")
    p.add_argument("--covariance", type=Path, required=True, help="SNP covariance file (GENE RSID1 RSID2 VALUE, .gz ok)")
    p.add_argument("--gwas-file", "--gwas_file", dest="gwas_file", type=Path, nargs="+", required=True,
                   help="GWAS summary statistics file(s), plain or gzip; each file is one study with its own output")
    p.add_argument("--snp-column", "--snp_column", dest="snp_column", default="SNP", help="SNP id column (default SNP)")
    p.add_argument("--effect-allele-column", "--effect_allele_column", dest="effect_allele_column", default="A1",
                   help="effect allele column (default A1)")
    p.add_argument("--non-effect-allele-column", "--non_effect_allele_column", dest="non_effect_allele_column",
                   default="A2", help="non-effect allele column (default A2)")
    p.add_argument("--beta-column", "--beta_column", dest="beta_column", help="effect size column")
    p.add_argument("--se-column", "--se_column", dest="se_column", help="standard error column (z = beta/se)")
    p.add_argument("--zscore-column", "--zscore_column", dest="zscore_column", help="z-score column (used first)")
    p.add_argument("--pvalue-column", "--pvalue_column", dest="pvalue_column",
                   help="p-value column (z from p, sign from beta, OR or the sign column)")
    p.add_argument("--or-column", "--or_column", dest="or_column", help="odds ratio column (beta = ln OR)")
    p.add_argument("--beta-sign-column", "--beta_sign_column", dest="beta_sign_column",
                   help="column with the sign of beta (+/-), for --pvalue-column without beta")
    p.add_argument("--separator", type=separator, default=None,
                   help="GWAS field separator: one character, tab, comma, space (default: any whitespace)")
    p.add_argument("--model-db-snp-key", "--model_db_snp_key", dest="model_db_snp_key", default="rsid",
                   help="weights column matched to the GWAS SNP column and the covariance ids (default rsid; "
                   "varID for enpact databases built with --snp-key varID)")
    p.add_argument("--keep-non-rsid", "--keep_non_rsid", dest="keep_non_rsid", action="store_true",
                   help="keep GWAS SNP ids that do not contain 'rs' (needed with varID keys)")
    p.add_argument("--gwas-h2", "--gwas_h2", dest="gwas_h2", type=float, help="GWAS heritability, for calibration")
    p.add_argument("--gwas-n", "--gwas_N", dest="gwas_n", type=float, help="GWAS sample size, for calibration")
    p.add_argument("--input-pvalue-fix", "--input_pvalue_fix", dest="input_pvalue_fix", type=float, default=1e-50,
                   help="p-values of 0 are replaced by min(this, smallest non-zero p); 0 drops them (default 1e-50)")
    p.add_argument("--output-file", "--output_file", dest="output_file", required=True,
                   help="results CSV; with several GWAS files a directory (DIR/{gwas}.csv) or a path containing {gwas}")
    p.add_argument("--plots-prefix", help="also write PREFIX.qq.png and PREFIX.manhattan.png ({gwas} allowed)")
    p.add_argument("--gene-positions", type=Path,
                   help="TSV with gene, chrom, pos for the Manhattan plot (default: median of the model SNPs' varID positions)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run S-PrediXcan for each GWAS file."""
    if args.input_pvalue_fix < 0:
        raise EnpactError("--input-pvalue-fix must be 0 or a positive p-value")
    columns = GwasColumns(
        snp=args.snp_column, effect_allele=args.effect_allele_column,
        non_effect_allele=args.non_effect_allele_column, beta=args.beta_column, se=args.se_column,
        zscore=args.zscore_column, pvalue=args.pvalue_column, odds_ratio=args.or_column,
        beta_sign=args.beta_sign_column,
    )
    run_twas(
        args.model_db_path, args.covariance, args.gwas_file, columns, args.output_file,
        snp_key=args.model_db_snp_key, keep_non_rsid=args.keep_non_rsid, separator=args.separator,
        input_pvalue_fix=args.input_pvalue_fix, gwas_h2=args.gwas_h2, gwas_n=args.gwas_n,
        plots_prefix=args.plots_prefix, gene_positions_path=args.gene_positions,
    )
    return 0
