"""`enpact twas`: S-PrediXcan association of a PredictDB model database with GWAS summary statistics."""

from __future__ import annotations

import argparse
from pathlib import Path

from enpact.cli._common import set_step
from enpact.steps import TwasConfig, twas

ORDER = 80

SEPARATOR_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t", "space": " ", "comma": ",",
                   "whitespace": None, "ANY_WHITESPACE": None}


def separator(value: str) -> str | None:
    """argparse type: one separator character, or a name (tab, '\\t', comma, space, whitespace)."""
    if value in SEPARATOR_NAMES:
        return SEPARATOR_NAMES[value]
    if len(value) != 1:
        raise argparse.ArgumentTypeError(
            f"separator must be one character or tab/comma/space/whitespace, not '{value}'")
    return value


def _names(option: str, spredixcan: str | None = None) -> list[str]:
    """The hyphenated option name plus SPrediXcan.py's underscore spelling."""
    return [f"--{option}", f"--{spredixcan or option.replace('-', '_')}"]


COLUMN_OPTIONS = (  # (option, default, help)
    ("snp-column", "SNP", "SNP id column (default SNP)"),
    ("effect-allele-column", "A1", "effect allele column (default A1)"),
    ("non-effect-allele-column", "A2", "non-effect allele column (default A2)"),
    ("beta-column", None, "effect size column"),
    ("se-column", None, "standard error column (z = beta/se)"),
    ("zscore-column", None, "z-score column (used first)"),
    ("pvalue-column", None, "p-value column (z from p, sign from beta, OR or the sign column)"),
    ("or-column", None, "odds ratio column (beta = ln OR)"),
    ("beta-sign-column", None, "column with the sign of beta (+/-), for --pvalue-column without beta"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `twas` subcommand (options also accept SPrediXcan.py's underscore spellings)."""
    p = subparsers.add_parser(
        "twas",
        help="S-PrediXcan: gene-level association from GWAS summary statistics and a PredictDB model database",
        description="Same method, inputs and output columns as MetaXcan's SPrediXcan.py. Options also accept "
        "SPrediXcan.py's spellings (--model_db_path, --gwas_file, ...).",
    )
    p.add_argument(*_names("model-db-path"), dest="model_db_path", type=Path, required=True, metavar="DB",
                   help="PredictDB model database (.db)")
    p.add_argument("--covariance", type=Path, required=True, metavar="FILE",
                   help="SNP covariance file (GENE RSID1 RSID2 VALUE, .gz ok)")
    p.add_argument(*_names("gwas-file"), dest="gwas_file", type=Path, nargs="+", required=True, metavar="FILE",
                   help="GWAS summary statistics file(s), plain or gzip; each file is one study with its own output")
    for option, default, text in COLUMN_OPTIONS:
        p.add_argument(*_names(option), dest=option.replace("-", "_"), default=default, metavar="COL", help=text)
    p.add_argument("--separator", type=separator, default=None, metavar="SEP",
                   help="GWAS field separator: one character, tab, comma, space (default: any whitespace)")
    p.add_argument(*_names("model-db-snp-key"), dest="model_db_snp_key", default="rsid", metavar="COLUMN",
                   help="weights column matched to the GWAS SNP ids and the covariance ids (default rsid; "
                   "varID for enpact databases built with --snp-key varID)")
    p.add_argument(*_names("keep-non-rsid"), dest="keep_non_rsid", action="store_true",
                   help="keep GWAS SNP ids that do not contain 'rs' (needed with varID keys)")
    p.add_argument(*_names("gwas-h2"), dest="gwas_h2", type=float, metavar="H2",
                   help="GWAS heritability, for calibration")
    p.add_argument(*_names("gwas-n", "gwas_N"), dest="gwas_n", type=float, metavar="N",
                   help="GWAS sample size, for calibration")
    p.add_argument(*_names("input-pvalue-fix"), dest="input_pvalue_fix", type=float, default=1e-50, metavar="P",
                   help="p-values of 0 get the z of min(P, smallest non-zero p); 0 drops them (default 1e-50)")
    p.add_argument(*_names("output-file"), dest="output_file", required=True, metavar="PATH",
                   help="results CSV; with several GWAS files a directory (DIR/{gwas}.csv) or a path with {gwas}")
    p.add_argument("--plots-prefix", metavar="PREFIX",
                   help="also write PREFIX.qq.png and PREFIX.manhattan.png ({gwas} allowed)")
    p.add_argument("--allow-empty", action="store_true",
                   help="write the table even when no gene can be tested (otherwise that is an error with the reason)")
    p.add_argument("--gene-positions", type=Path, metavar="TSV",
                   help="gene, chrom, pos table for the Manhattan plot (default: median varID position of the "
                   "gene's model SNPs)")
    set_step(p, config, twas)


def config(args: argparse.Namespace) -> TwasConfig:
    """The step's configuration from the arguments."""
    return TwasConfig(
        model_db_path=args.model_db_path, covariance=args.covariance, gwas_file=tuple(args.gwas_file),
        output_file=args.output_file, snp_column=args.snp_column, effect_allele_column=args.effect_allele_column,
        non_effect_allele_column=args.non_effect_allele_column, beta_column=args.beta_column,
        se_column=args.se_column, zscore_column=args.zscore_column, pvalue_column=args.pvalue_column,
        or_column=args.or_column, beta_sign_column=args.beta_sign_column, separator=args.separator,
        model_db_snp_key=args.model_db_snp_key, keep_non_rsid=args.keep_non_rsid, gwas_h2=args.gwas_h2,
        gwas_n=args.gwas_n, input_pvalue_fix=args.input_pvalue_fix, plots_prefix=args.plots_prefix,
        gene_positions=args.gene_positions, allow_empty=args.allow_empty,
    )
