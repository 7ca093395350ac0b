"""Association steps: `enpact twas` (S-PrediXcan) and `enpact multixcan` (S-MultiXcan), with MetaXcan's method,
columns and option spellings, and `enpact finemap` (FOCUS's fine-mapping of TWAS regions)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from enpact.errors import EnpactError
from enpact.options import option
from enpact.steps.common import (allow_empty_option, input_file, max_missing_option, optional_input, output_file,
                                 samples_file_option, selected_samples, snp_key_option)

log = logging.getLogger(__name__)

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


def column(default: str | None, param: str, help: str) -> Any:
    """A GWAS column option: the pipeline's parameter sets it; the command line's default is SPrediXcan.py's."""
    return option(default, param=param, metavar="COL", help=help)


@dataclass(frozen=True, kw_only=True)
class GwasOptions:
    """How S-PrediXcan and S-MultiXcan read GWAS files and key the models' SNPs (SPrediXcan.py's options)."""

    UNDERSCORE_FLAGS = True   # SPrediXcan.py's spellings (--gwas_file, --model_db_path)

    snp_column: str = column("SNP", "gwas_snp_column", "SNP id column (default SNP)")
    effect_allele_column: str = column("A1", "gwas_effect_allele_column", "effect allele column (default A1)")
    non_effect_allele_column: str = column("A2", "gwas_non_effect_allele_column",
                                           "non-effect allele column (default A2)")
    beta_column: str | None = column(None, "gwas_beta_column", "effect size column")
    se_column: str | None = column(None, "gwas_se_column", "standard error column (z = beta/se)")
    zscore_column: str | None = column(None, "gwas_zscore_column", "z-score column (used first)")
    pvalue_column: str | None = column(None, "gwas_pvalue_column",
                                       "p-value column (z from p, sign from beta, OR or the sign column)")
    or_column: str | None = column(None, "gwas_or_column", "odds ratio column (beta = ln OR)")
    beta_sign_column: str | None = option(None, metavar="COL", help="column with the sign of beta (+/-), for "
                                          "--pvalue-column without beta")
    separator: str | None = option(None, parse=separator, metavar="SEP", help="GWAS field separator: one "
                                   "character, tab, comma, space (default: any whitespace)")
    model_db_snp_key: str = option("rsid", param="snp_key", metavar="COLUMN",
                                   help="weights column matched to the GWAS SNP ids and the covariance ids (default "
                                   "rsid; varID for enpact databases built with --snp-key varID)")
    keep_non_rsid: bool = option(False, param="gwas_keep_non_rsid",
                                 help="keep GWAS SNP ids that do not contain 'rs' (needed with varID keys)")
    input_pvalue_fix: float = option(1e-50, metavar="P", help="p-values of 0 get the z of min(P, smallest non-zero "
                                     "p); 0 drops them (default 1e-50)")

    def columns(self) -> Any:
        """The GWAS columns to read (enpact.twas.GwasColumns)."""
        from enpact.twas import GwasColumns

        return GwasColumns(
            snp=self.snp_column, effect_allele=self.effect_allele_column,
            non_effect_allele=self.non_effect_allele_column, beta=self.beta_column, se=self.se_column,
            zscore=self.zscore_column, pvalue=self.pvalue_column, odds_ratio=self.or_column,
            beta_sign=self.beta_sign_column,
        )


@dataclass(frozen=True)
class TwasConfig(GwasOptions):
    """`enpact twas`: S-PrediXcan of GWAS files against a database (MetaXcan SPrediXcan.py's method and columns)."""

    model_db_path: Path = input_file("PredictDB model database (.db)", metavar="DB", parse=Path)
    covariance: Path = input_file("SNP covariance file (GENE RSID1 RSID2 VALUE, .gz ok)", metavar="FILE",
                                  parse=Path)
    gwas_files: tuple[Path, ...] = input_file("GWAS summary statistics file(s), plain or gzip; each file is one "
                                              "study with its own output", flags=("--gwas-file",), metavar="FILE",
                                              parse=Path, nargs="+")
    out: str = output_file("results CSV; with several GWAS files a directory (DIR/{gwas}.csv) or a path with "
                           "{gwas}", flags=("--out", "--output-file"), metavar="PATH")
    gwas_h2: float | None = option(None, metavar="H2", help="GWAS heritability, for calibration")
    gwas_n: float | None = option(None, flags=("--gwas-n", "--gwas_N"), metavar="N",
                                  help="GWAS sample size, for calibration")
    plots_prefix: str | None = option(None, role="prefix-output", metavar="PREFIX",
                                      help="also write PREFIX.qq.png and PREFIX.manhattan.png ({gwas} allowed)")
    gene_positions: Path | None = optional_input("gene, chrom, pos table for the Manhattan plot (default: median "
                                                 "varID position of the gene's model SNPs)", metavar="TSV")
    allow_empty: bool = allow_empty_option("write the table even when no gene can be tested (otherwise that is an "
                                           "error with the reason)")


def twas(config: TwasConfig) -> list[Path]:
    """Run S-PrediXcan for each GWAS file."""
    from enpact.twas import run_twas

    if config.input_pvalue_fix < 0:
        raise EnpactError("--input-pvalue-fix must be 0 or a positive p-value")
    return run_twas(
        config.model_db_path, config.covariance, list(config.gwas_files), config.columns(), config.out,
        snp_key=config.model_db_snp_key, keep_non_rsid=config.keep_non_rsid, separator=config.separator,
        input_pvalue_fix=config.input_pvalue_fix, gwas_h2=config.gwas_h2, gwas_n=config.gwas_n,
        plots_prefix=config.plots_prefix, gene_positions_path=config.gene_positions, allow_empty=config.allow_empty,
    )


def _positive_int(value: str) -> int:
    """argparse type: an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return number


@dataclass(frozen=True)
class FinemapConfig:
    """`enpact finemap`: which genes of a region of TWAS hits are causal: posterior inclusion probabilities and
    credible sets (FOCUS's model, Mancuso et al. 2019), from S-PrediXcan z-scores and the correlation of predicted
    expression across a reference panel."""

    twas: tuple[Path, ...] = input_file("S-PrediXcan results CSV(s) of `enpact twas`, one per GWAS",
                                        metavar="CSV", parse=Path, nargs="+")
    model_db_path: Path = input_file("the PredictDB database the results come from (.db)", metavar="DB",
                                     parse=Path)
    vcf: Path = input_file("reference panel: bgzipped, indexed VCF/BCF of the LD between the genes' model SNPs",
                           metavar="VCF", parse=Path)
    out: str = output_file("table to write (tab-separated); with several results a directory (DIR/{gwas}.tsv) or a "
                           "path with {gwas}", metavar="PATH")
    samples_file: Path | None = samples_file_option()
    snp_key: str = snp_key_option("varID", "weights column matched to the panel: varID (by position and alleles; "
                                  "default) or rsid (also the VCF ID)")
    gene_positions: Path | None = optional_input("gene, chrom, pos table (default: median varID position of the "
                                                 "gene's model SNPs)", metavar="TSV")
    pvalue_threshold: float | None = option(None, param="finemap_pvalue", metavar="P",
                                            help="genes with a TWAS p-value below P open a region (default: "
                                            "Bonferroni, 0.05 / genes tested)")
    window_bp: int = option(1_000_000, param="finemap_window_bp", metavar="BP",
                            help="a region reaches BP either side of its significant genes; overlapping ones merge "
                            "(default 1000000)")
    max_genes: int = option(3, param="finemap_max_genes", parse=_positive_int, metavar="K",
                            help="most causal genes in one configuration (default 3, FOCUS's)")
    prior_prob: float | None = option(None, param="finemap_prior_prob", metavar="P",
                                      help="prior probability that a gene is causal (default: 1 / genes in the "
                                      "region, FOCUS's default)")
    credible_level: float = option(0.9, param="finemap_credible_level", metavar="LEVEL",
                                   help="credible set level (default 0.9)")
    ridge: float = option(0.1, param="finemap_ridge", metavar="R",
                          help="added to the LD matrix's diagonal, relative to it (default 0.1, FOCUS's)")
    max_missing: float = max_missing_option("leave out model SNPs with a larger fraction of missing genotype calls "
                                            "in the panel (default 0.1, as linearization); the others' missing calls "
                                            "get the site's mean dosage")


def finemap(config: FinemapConfig) -> list[Path]:
    """Fine-map each TWAS result's regions and write one table per result."""
    from enpact.finemap import FinemapSettings, run_finemap

    settings = FinemapSettings(pvalue_threshold=config.pvalue_threshold, window_bp=config.window_bp,
                               max_genes=config.max_genes, prior_prob=config.prior_prob,
                               credible_level=config.credible_level, ridge=config.ridge,
                               max_missing=config.max_missing)
    return run_finemap(list(config.twas), config.model_db_path, config.vcf, config.out, config.snp_key,
                       selected_samples(config), settings, config.gene_positions)


@dataclass(frozen=True)
class MultixcanConfig(GwasOptions):
    """`enpact multixcan`: S-MultiXcan of the contexts' S-PrediXcan results (MetaXcan SMulTiXcan.py's method and
    columns); contexts given explicitly (--context NAME DB RESULTS, repeated) or found in a models and a results
    folder."""

    snp_covariance: Path = input_file("SNP covariance of every context's model SNPs per gene (GENE RSID1 RSID2 "
                                      "VALUE), e.g. from `enpact covariance` with all the contexts' databases",
                                      metavar="FILE", parse=Path)
    out: Path = output_file("results table (tab-separated)", flags=("--out", "--output"), metavar="FILE")
    context_names: tuple[str, ...] = option((), flags=("--context",), nargs=3, append=True,
                                            metavar=("NAME", "DB", "RESULTS"),
                                            help="a context's name, model database and its S-PrediXcan results CSV "
                                            "for this GWAS (repeat for each context)")
    context_dbs: tuple[Path, ...] = option((), role="input", cli=False)       # the DBs of --context
    context_results: tuple[Path, ...] = option((), role="input", cli=False)   # the results of --context
    models_folder: Path | None = optional_input("folder of model databases", metavar="DIR", parse=Path)
    models_name_filter: tuple[str, ...] | None = option(None, metavar="REGEX", help="model files whose name one of "
                                                        "these finds (default: .*db$)")
    models_name_pattern: str | None = option(None, metavar="REGEX", help="regular expression whose group 1 is the "
                                             "context name in a model file name (default: the name without .db, "
                                             "_0.5, TW_ and gtex_v7_)")
    metaxcan_folder: Path | None = optional_input("folder of S-PrediXcan results, one CSV per context",
                                                  metavar="DIR", parse=Path)
    metaxcan_filter: tuple[str, ...] = option((".*csv",), metavar="REGEX",
                                              help="results files whose name all of these match (default: .*csv)")
    metaxcan_file_name_parse_pattern: str | None = option(None, metavar="REGEX", help="regular expression matched "
                                                          "on a results file name: its last of at most two groups is "
                                                          "the context name (default: the model name the file name "
                                                          "ends with)")
    gwas_file: Path | None = optional_input("GWAS summary statistics file, plain or gzip", metavar="FILE",
                                            parse=Path)
    gwas_folder: Path | None = optional_input("folder of GWAS files of one study (e.g. one per chromosome)",
                                              metavar="DIR", parse=Path)
    gwas_file_pattern: str | None = option(None, metavar="REGEX", help="files of --gwas-folder whose name this "
                                           "matches")
    cleared_snps: Path | None = optional_input("instead of a GWAS: the SNP ids to use, in a column named rsid",
                                               metavar="FILE", parse=Path)
    cutoff_condition_number: float | None = option(None, metavar="N", help="keep components with eigenvalue >= "
                                                   "largest / N (the default, 30, when no cut-off is given)")
    cutoff_eigen_ratio: float | None = option(None, metavar="R", help="keep components with eigenvalue >= R x "
                                              "largest")
    cutoff_threshold: float | None = option(None, metavar="T", help="keep the components that explain all but a "
                                            "fraction T of the variance")
    cutoff_trace_ratio: float | None = option(None, metavar="R", help="keep components with eigenvalue >= R x "
                                              "trace")
    regularization: float | None = option(None, metavar="LAMBDA", help="add LAMBDA to the correlation matrix's "
                                          "diagonal before inverting it")
    trimmed_ensemble_id: bool = option(False, help="match gene ids without their version (ENSG00000123.4 -> "
                                       "ENSG00000123)")
    max_m: int | None = option(None, flags=("--MAX-M", "--MAX_M", "--max-m"), metavar="M",
                               help="compute only the first M genes of the covariance file")
    qq_plot: Path | None = option(None, role="output", metavar="PNG", help="also write a QQ plot of the p-values")

    @staticmethod
    def cli_values(values: dict[str, Any]) -> dict[str, Any]:
        """--context NAME DB RESULTS (repeated) as the three context fields."""
        given = values["context_names"]
        return {**values, "context_names": tuple(c[0] for c in given),
                "context_dbs": tuple(Path(c[1]) for c in given), "context_results": tuple(Path(c[2]) for c in given)}


def _with_gwas_name(config: MultixcanConfig) -> MultixcanConfig:
    """`{gwas}` in the output, QQ plot and results paths replaced by the GWAS file's output name (the rule of
    `enpact twas`), so a pipeline task need not know it."""
    from dataclasses import replace as with_fields

    from enpact.layout import gwas_name

    paths = [config.out, config.qq_plot, *config.context_results]
    if not any("{gwas}" in str(p) for p in paths if p is not None):
        return config
    if config.gwas_file is None:
        raise EnpactError("{gwas} in a path needs --gwas-file (its name replaces {gwas})")
    name = gwas_name(config.gwas_file)
    named = lambda p: None if p is None else Path(str(p).replace("{gwas}", name))  # noqa: E731
    return with_fields(config, out=named(config.out), qq_plot=named(config.qq_plot),
                       context_results=tuple(named(p) for p in config.context_results))


def multixcan(config: MultixcanConfig) -> pd.DataFrame:
    """Run S-MultiXcan and write the results table (and the QQ plot)."""
    from enpact.multixcan import (
        Cutoff, MultixcanInputs, explicit_contexts, folder_contexts, gwas_folder_files, run_multixcan,
    )

    if not (len(config.context_names) == len(config.context_dbs) == len(config.context_results)):
        raise EnpactError("each --context needs a name, a model database and a results file")
    config = _with_gwas_name(config)
    folders = config.models_folder is not None or config.metaxcan_folder is not None
    if config.context_names and folders:
        raise EnpactError("give the contexts with --context, or with --models-folder and --metaxcan-folder, not both")
    if config.context_names:
        contexts = explicit_contexts(list(zip(config.context_names, config.context_dbs, config.context_results)))
    elif config.models_folder is not None and config.metaxcan_folder is not None:
        contexts = folder_contexts(config.models_folder, config.metaxcan_folder, config.models_name_filter,
                                   config.models_name_pattern, config.metaxcan_filter,
                                   config.metaxcan_file_name_parse_pattern)
    else:
        raise EnpactError("give the contexts: --context NAME DB RESULTS (repeated), or --models-folder with "
                          "--metaxcan-folder")
    if config.gwas_file is not None and config.gwas_folder is not None:
        raise EnpactError("give --gwas-file or --gwas-folder, not both")
    if config.max_m is not None and config.max_m < 1:
        raise EnpactError("--MAX-M must be at least 1")
    gwas_files = ([config.gwas_file] if config.gwas_file is not None
                  else gwas_folder_files(config.gwas_folder, config.gwas_file_pattern) if config.gwas_folder is not None
                  else [])
    cutoff = Cutoff.from_options(config.cutoff_condition_number, config.cutoff_eigen_ratio, config.cutoff_threshold,
                                 config.cutoff_trace_ratio)
    inputs = MultixcanInputs(contexts, config.snp_covariance, config.model_db_snp_key, config.trimmed_ensemble_id,
                             config.max_m)
    return run_multixcan(inputs, config.out, cutoff, config.regularization, gwas_files, config.columns(),
                         config.cleared_snps, config.separator, config.keep_non_rsid, config.input_pvalue_fix,
                         config.qq_plot)
