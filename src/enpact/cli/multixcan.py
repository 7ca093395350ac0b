"""`enpact multixcan`: S-MultiXcan, joint association across contexts from their S-PrediXcan results."""

from __future__ import annotations

import argparse
from pathlib import Path

from enpact.cli._common import set_step
from enpact.cli.twas import COLUMN_OPTIONS, _names, separator
from enpact.steps import MultixcanConfig, multixcan

ORDER = 85


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `multixcan` subcommand (options also accept SMulTiXcan.py's underscore spellings)."""
    p = subparsers.add_parser(
        "multixcan",
        help="S-MultiXcan: joint gene-level association across contexts from their S-PrediXcan results",
        description="Same method, inputs and output columns as MetaXcan's SMulTiXcan.py (tab-separated, sorted by "
        "p-value). Contexts are given with --context NAME DB RESULTS (repeated), or found as SMulTiXcan.py finds "
        "them with --models-folder and --metaxcan-folder. Options also accept SMulTiXcan.py's spellings.",
    )
    contexts = p.add_argument_group("contexts")
    contexts.add_argument("--context", nargs=3, action="append", default=[], metavar=("NAME", "DB", "RESULTS"),
                          help="a context's name, model database and its S-PrediXcan results CSV for this GWAS "
                          "(repeat for each context)")
    contexts.add_argument(*_names("models-folder"), dest="models_folder", type=Path, metavar="DIR",
                          help="folder of model databases")
    contexts.add_argument(*_names("models-name-filter"), dest="models_name_filter", nargs="+", metavar="REGEX",
                          help="model files whose name one of these finds (default: .*db$)")
    contexts.add_argument(*_names("models-name-pattern"), dest="models_name_pattern", metavar="REGEX",
                          help="regular expression whose group 1 is the context name in a model file name (default: "
                          "the name without .db, _0.5, TW_ and gtex_v7_)")
    contexts.add_argument(*_names("metaxcan-folder"), dest="metaxcan_folder", type=Path, metavar="DIR",
                          help="folder of S-PrediXcan results, one CSV per context")
    contexts.add_argument(*_names("metaxcan-filter"), dest="metaxcan_filter", nargs="+", default=[".*csv"],
                          metavar="REGEX", help="results files whose name all of these match (default: .*csv)")
    contexts.add_argument(*_names("metaxcan-file-name-parse-pattern"), dest="metaxcan_file_name_parse_pattern",
                          metavar="REGEX", help="regular expression matched on a results file name: its last of "
                          "at most two groups is the context name (default: the model name the file name ends with)")
    p.add_argument(*_names("snp-covariance"), dest="snp_covariance", type=Path, required=True, metavar="FILE",
                   help="SNP covariance of every context's model SNPs per gene (GENE RSID1 RSID2 VALUE), e.g. from "
                   "`enpact covariance` with all the contexts' databases")
    p.add_argument(*_names("model-db-snp-key"), dest="model_db_snp_key", default="rsid", metavar="COLUMN",
                   help="weights column matched to the GWAS SNP ids and the covariance ids (default rsid; varID for "
                   "enpact databases built with --snp-key varID)")
    gwas = p.add_argument_group("GWAS (clears the SNPs whose covariance is used)")
    gwas.add_argument(*_names("gwas-file"), dest="gwas_file", type=Path, metavar="FILE",
                      help="GWAS summary statistics file, plain or gzip")
    gwas.add_argument(*_names("gwas-folder"), dest="gwas_folder", type=Path, metavar="DIR",
                      help="folder of GWAS files of one study (e.g. one per chromosome)")
    gwas.add_argument(*_names("gwas-file-pattern"), dest="gwas_file_pattern", metavar="REGEX",
                      help="files of --gwas-folder whose name this matches")
    gwas.add_argument(*_names("cleared-snps"), dest="cleared_snps", type=Path, metavar="FILE",
                      help="instead of a GWAS: the SNP ids to use, in a column named rsid")
    for option, default, text in COLUMN_OPTIONS:
        gwas.add_argument(*_names(option), dest=option.replace("-", "_"), default=default, metavar="COL", help=text)
    gwas.add_argument("--separator", type=separator, default=None, metavar="SEP",
                      help="GWAS field separator: one character, tab, comma, space (default: any whitespace)")
    gwas.add_argument(*_names("keep-non-rsid"), dest="keep_non_rsid", action="store_true",
                      help="keep GWAS SNP ids that do not contain 'rs' (needed with varID keys)")
    gwas.add_argument(*_names("input-pvalue-fix"), dest="input_pvalue_fix", type=float, default=1e-50, metavar="P",
                      help="p-values of 0 get the z of min(P, smallest non-zero p) (default 1e-50)")
    cut = p.add_argument_group("principal components kept (one option; default --cutoff-condition-number 30)")
    cut.add_argument(*_names("cutoff-condition-number"), dest="cutoff_condition_number", type=float, metavar="N",
                     help="keep components with eigenvalue >= largest / N")
    cut.add_argument(*_names("cutoff-eigen-ratio"), dest="cutoff_eigen_ratio", type=float, metavar="R",
                     help="keep components with eigenvalue >= R x largest")
    cut.add_argument(*_names("cutoff-threshold"), dest="cutoff_threshold", type=float, metavar="T",
                     help="keep the components that explain all but a fraction T of the variance")
    cut.add_argument(*_names("cutoff-trace-ratio"), dest="cutoff_trace_ratio", type=float, metavar="R",
                     help="keep components with eigenvalue >= R x trace")
    cut.add_argument("--regularization", type=float, metavar="LAMBDA",
                     help="add LAMBDA to the correlation matrix's diagonal before inverting it")
    p.add_argument(*_names("trimmed-ensemble-id"), dest="trimmed_ensemble_id", action="store_true",
                   help="match gene ids without their version (ENSG00000123.4 -> ENSG00000123)")
    p.add_argument("--MAX-M", "--MAX_M", "--max-m", dest="max_m", type=int, metavar="M",
                   help="compute only the first M genes of the covariance file")
    p.add_argument("--output", type=Path, required=True, metavar="FILE", help="results table (tab-separated)")
    p.add_argument("--qq-plot", type=Path, metavar="PNG", help="also write a QQ plot of the p-values")
    set_step(p, config, multixcan)


def config(args: argparse.Namespace) -> MultixcanConfig:
    """The step's configuration from the arguments."""
    return MultixcanConfig(
        snp_covariance=args.snp_covariance, output=args.output,
        context_names=tuple(c[0] for c in args.context), context_dbs=tuple(Path(c[1]) for c in args.context),
        context_results=tuple(Path(c[2]) for c in args.context), models_folder=args.models_folder,
        models_name_filter=tuple(args.models_name_filter) if args.models_name_filter else None,
        models_name_pattern=args.models_name_pattern, metaxcan_folder=args.metaxcan_folder,
        metaxcan_filter=tuple(args.metaxcan_filter),
        metaxcan_file_name_parse_pattern=args.metaxcan_file_name_parse_pattern,
        model_db_snp_key=args.model_db_snp_key, gwas_file=args.gwas_file, gwas_folder=args.gwas_folder,
        gwas_file_pattern=args.gwas_file_pattern, cleared_snps=args.cleared_snps, snp_column=args.snp_column,
        effect_allele_column=args.effect_allele_column, non_effect_allele_column=args.non_effect_allele_column,
        beta_column=args.beta_column, se_column=args.se_column, zscore_column=args.zscore_column,
        pvalue_column=args.pvalue_column, or_column=args.or_column, beta_sign_column=args.beta_sign_column,
        separator=args.separator, keep_non_rsid=args.keep_non_rsid, input_pvalue_fix=args.input_pvalue_fix,
        cutoff_condition_number=args.cutoff_condition_number, cutoff_eigen_ratio=args.cutoff_eigen_ratio,
        cutoff_threshold=args.cutoff_threshold, cutoff_trace_ratio=args.cutoff_trace_ratio,
        regularization=args.regularization, trimmed_ensemble_id=args.trimmed_ensemble_id, max_m=args.max_m,
        qq_plot=args.qq_plot,
    )
