"""Steps from personalized predictions to TWAS-ready models: `enpact linearize`, `database`, `covariance`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from enpact.errors import EnpactError
from enpact.options import option
from enpact.steps.common import (allow_empty_option, input_file, max_missing_option, output_file, progress_option,
                                 samples_file_option, samples_option, seed_option, selected_samples, snp_key_option,
                                 vcf_option)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinearizeConfig:
    """`enpact linearize`: per locus, an elastic net from variant dosages to the personalized values."""

    personalized: Path = input_file("personalized store (enpact merge)")
    vcf: Path = vcf_option()
    loci: Path = input_file("loci TSV (a chunk or all)")
    out: Path = output_file("the linearization chunk (HDF5: summary, weights, covariances) that `enpact database` "
                            "reads")
    context: str | None = option(None, help="the context to linearize, for a store of several")
    lin_window_bp: int | None = option(None, param="lin_window_bp",
                                       help="variant window around the locus centre (default: the predictor's)")
    maf: float = option(0.01, param="lin_maf", help="minimum minor allele frequency (default 0.01)")
    keep_indels: bool = option(False, param="lin_keep_indels", help="also use indels")
    keep_ambiguous: bool = option(False, param="lin_keep_ambiguous",
                                  help="also use strand-ambiguous A/T and C/G SNVs")
    keep_multiallelic: bool = option(False, param="lin_keep_multiallelic",
                                     help="also use multi-allelic sites (one column per ALT)")
    require_rsid: bool = option(False, param="snp_key", value=lambda key: key == "rsid",
                                help="only variants with an rsid (for databases keyed by rsid: PredictDB filters "
                                "before fitting)")
    max_missing: float = max_missing_option("leave out sites with a larger fraction of missing genotype calls "
                                            "(default 0.1); the others' missing calls get the site's mean dosage")
    build: str = option("b38", param="build", help="genome build suffix of varIDs (default b38)")
    folds: int = option(10, param="lin_folds", help="cross-validation folds (default 10)")
    alpha: float = option(0.5, param="lin_alpha", help="elastic-net mixing (l1 ratio), default 0.5")
    seed: int = seed_option()
    min_snps: int = option(2, param="lin_min_snps", help="loci with fewer usable variants are skipped")
    nested_cv: bool = option(False, param="lin_nested_cv",
                             help="also estimate each model's performance by nested cross-validation (5 outer folds, "
                             "lambda chosen within each; PredictDB GTEx v8): less optimistic, 3-5x slower; the "
                             "database's filter and pred.perf columns then use it")
    progress: bool = progress_option()


def linearize(config: LinearizeConfig) -> None:
    """Linearize the loci of a personalized store and write the chunk."""
    # imported here: the numba engine is slow to import, and every other step would pay for it
    from enpact.linearize import FitSettings
    from enpact.linearize import linearize as linearize_loci
    from enpact.loci import read_loci
    from enpact.predictdb import write_linearized_chunk
    from enpact.store import read_personalized_store, single_context
    from enpact.variants import VariantFilters, VcfReader

    store = single_context(read_personalized_store(config.personalized, False, config.context),
                           str(config.personalized))
    table = read_loci(config.loci)
    table = table[table["locus_id"].isin(store.locus_ids)] if len(table) > len(store.locus_ids) else table
    window = config.lin_window_bp or int(store.meta.get("predictor", {}).get("window_bp", 0))
    if window <= 0:
        raise EnpactError(f"{config.personalized}: no predictor window recorded; pass --lin-window-bp")
    vcf = VcfReader(config.vcf, store.samples, allow_unphased=True)
    filters = VariantFilters(config.maf, config.keep_indels, config.keep_ambiguous, config.keep_multiallelic,
                             config.build, config.require_rsid, config.max_missing)
    settings = FitSettings(config.alpha, config.folds, config.seed, config.min_snps,
                           nested_cv=config.nested_cv)
    summary, weights, covariances = linearize_loci(store, table, vcf, window, filters, settings,
                                                   progress=config.progress)
    write_linearized_chunk(config.out, summary, weights, covariances)
    log.info("wrote %s", config.out)


@dataclass(frozen=True)
class DatabaseConfig:
    """`enpact database`: PredictDB databases, covariances and the merged summary from linearization chunks."""

    linearized: tuple[Path, ...] = input_file("linearization chunks (enpact linearize --out) or directories of "
                                              "them (*.h5)", metavar="CHUNK", parse=Path)
    name: str = option(help="output file name stem")
    outdir: Path = output_file("output directory", metavar="DIR")
    snp_key: str = snp_key_option("varID", "SNP id used by the covariance file and TWAS matching (default: varID)")
    pval_threshold: float = option(0.05, param="db_pval_threshold", metavar="P",
                                   help="keep models with zscore_pval (nested_cv_zscore_pval after lin_nested_cv) "
                                   "below this (default 0.05)")
    rho_threshold: float = option(0.1, param="db_rho_threshold", metavar="RHO",
                                  help="keep models with rho_avg (nested_cv_rho_avg after lin_nested_cv) above "
                                  "this (default 0.1)")
    keep_unfiltered: bool = option(False, param="keep_unfiltered",
                                   help="also write NAME.unfiltered.db and NAME.unfiltered.txt.gz")
    population: str | None = option(None, param="population", help="population label stored in sample_info")
    cv_seed: int | None = option(None, param="seed", help="cross-validation seed stored in construction")
    allow_empty: bool = allow_empty_option("write the databases even when no model passes the filters (otherwise "
                                           "an error with the reason)")


def database(config: DatabaseConfig) -> None:
    """Build and write the databases."""
    from enpact.predictdb import build_database

    outputs = build_database(
        list(config.linearized), config.name, config.outdir, snp_key=config.snp_key,
        pval_threshold=config.pval_threshold, rho_threshold=config.rho_threshold,
        keep_unfiltered=config.keep_unfiltered, population=config.population, cv_seed=config.cv_seed,
        allow_empty=config.allow_empty,
    )
    log.info("wrote %s (%d models) and %s", outputs.db, outputs.n_genes, outputs.covariance)
    if outputs.unfiltered_db:
        log.info("wrote %s (%d models) and %s", outputs.unfiltered_db, outputs.n_genes_unfiltered,
                 outputs.unfiltered_covariance)


@dataclass(frozen=True)
class CovarianceConfig:
    """`enpact covariance`: the SNP covariance of databases' model SNPs (per gene, their union) across the
    individuals of a reference panel VCF."""

    UNDERSCORE_FLAGS = True   # MetaXcan's spellings (--model_db_path)

    model_db_path: tuple[Path, ...] = input_file("PredictDB model database(s) (.db)", metavar="DB")
    vcf: Path = input_file("reference panel: bgzipped, indexed VCF/BCF in the databases' genome build")
    out: Path = output_file("covariance file to write (.txt.gz)", metavar="FILE")
    snp_key: str = snp_key_option("varID", "weights column matched to the panel and written as the SNP id: varID "
                                  "(chr_pos_ref_alt_build, matched by position and alleles; default) or rsid "
                                  "(matched by the VCF ID and alleles at the varID's position)",
                                  flags=("--snp-key", "--model-db-snp-key"))
    samples: tuple[str, ...] | None = samples_option()
    samples_file: Path | None = samples_file_option()
    max_missing: float = max_missing_option("leave out model SNPs with a larger fraction of missing genotype calls "
                                            "in the panel (default 0.1, as linearization); the others' missing calls "
                                            "get the site's mean dosage")


def covariance(config: CovarianceConfig) -> Path:
    """Match the model SNPs to the panel and write the covariance file."""
    from enpact.panel_covariance import write_panel_covariance

    return write_panel_covariance(list(config.model_db_path), config.vcf, config.out, config.snp_key,
                                  selected_samples(config), config.max_missing)
