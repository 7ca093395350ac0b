"""Linearization: per locus, an elastic net across individuals from variant dosages to personalized values."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enpact.glmnet import fit_elastic_net_cv
from enpact.errors import EnpactError
from enpact.genome import gtex_chrom, window_start
from enpact.logsummary import progress_bar
from enpact.predictdb import NESTED_SUMMARY_COLUMNS, SUMMARY_COLUMNS, WEIGHTS_COLUMNS
from enpact.store import PersonalizedStore
from enpact.variants import (VariantFilters, VariantTable, VcfReader, is_symbolic, missing_genotypes, passing_alleles,
                             too_missing)

log = logging.getLogger(__name__)

SUMMARY_NUMERIC = ["alpha", "lambda_min", "cv_mse", "cv_R2_avg", "cv_R2_sd", "rho_avg", "rho_se", "rho_zscore",
                   "rho_avg_squared", "zscore_pval", "cv_fisher_pval", "in_sample_R2", *NESTED_SUMMARY_COLUMNS]


@dataclass(frozen=True)
class FitSettings:
    """Elastic-net settings shared by all loci."""

    alpha: float = 0.5
    folds: int = 10
    seed: int = 0
    min_snps: int = 2
    nested_cv: bool = False  # also the nested cross-validation's statistics (PredictDB GTEx v8)


@dataclass
class DosageMatrix:
    """Alt-allele dosages (samples x variants) with the variants' identifiers."""

    dosages: np.ndarray  # (n_samples, n_variants) float64
    var_id: list[str]
    rsid: list[str]
    ref: list[str]
    alt: list[str]
    missing_calls: int = 0   # missing genotype calls in these columns, mean-imputed
    too_missing: int = 0     # sites of the window left out for more missing calls than the filters allow


def locus_dosages(table: VariantTable, center: int, window_bp: int, filters: VariantFilters) -> tuple[DosageMatrix, int]:
    """Dosages of the variants inside the window that pass the filters; returns (matrix, variants in window).

    A missing call gets the site's mean dosage over the called individuals, and sites with more missing calls than
    `filters.max_missing` are left out; a multi-allelic site, when kept, gives one column per ALT allele.
    """
    start = window_start(center, window_bp)
    inside = table.overlapping(start, start + window_bp)
    real = np.array([any(not is_symbolic(a) for a in table.alts[v]) for v in inside.tolist()], dtype=bool)
    inside = inside[real] if len(inside) else inside
    columns, var_ids, rsids, refs, alts = [], [], [], [], []
    missing_calls = 0
    chrom_id = gtex_chrom(table.chrom)   # varIDs name chromosomes as GTEx does, whatever the FASTA calls them
    for v, k, dosage in passing_alleles(table, inside, filters):
        ref, alt = table.ref[v], table.alts[v][k - 1]
        columns.append(dosage)
        missing_calls += int(missing_genotypes(table.alleles[v]).sum())
        pos1 = int(table.pos[v]) + 1
        var_ids.append(f"{chrom_id}_{pos1}_{ref}_{alt}_{filters.build}")
        identifier = table.ids[v]
        rsids.append(identifier if identifier.startswith("rs") else ".")
        refs.append(ref)
        alts.append(alt)
    n_samples = table.alleles.shape[1]
    matrix = np.column_stack(columns) if columns else np.zeros((n_samples, 0))
    dropped = int(too_missing(table, inside, filters).sum())
    return DosageMatrix(matrix, var_ids, rsids, refs, alts, missing_calls, dropped), len(inside)


def _skipped(gene: str, name: str, gene_type: str, n_samples: int, n_window: int, matrix: DosageMatrix,
             reason: str) -> dict:
    """A summary row for a locus that was not fitted."""
    row = {"gene": gene, "genename": name, "gene_type": gene_type, "n_samples": n_samples,
           "n_snps_in_window": n_window, "n_snps_passing_filters": matrix.dosages.shape[1], "n_snps_in_model": 0,
           "n_snps_too_missing": matrix.too_missing, "n_missing_calls": matrix.missing_calls,
           "status": "skipped", "reason": reason}
    row.update({key: np.nan for key in SUMMARY_NUMERIC})
    return row


def fit_locus(gene: str, name: str, gene_type: str, y: np.ndarray, matrix: DosageMatrix,
              settings: FitSettings, n_in_window: int) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """Fit one locus; returns (summary row, weights rows, covariance of the weighted SNPs). `n_in_window`: the
    variant sites in the window before the filters (the matrix holds those that pass)."""
    n_samples = len(y)
    empty = pd.DataFrame(columns=["gene", "rsid", "varID", "ref_allele", "eff_allele", "weight"])
    n_snps = matrix.dosages.shape[1]

    def skipped(reason: str) -> tuple[dict, pd.DataFrame, np.ndarray]:
        return _skipped(gene, name, gene_type, n_samples, n_in_window, matrix, reason), empty, np.zeros((0, 0))

    if n_snps < settings.min_snps:
        return skipped("too_few_snps")
    if not np.isfinite(y).all():
        return skipped("missing_values")
    if np.ptp(y) <= 1e-12 * max(1.0, float(np.abs(y).max())):
        return skipped("zero_variance")
    try:
        fit = fit_elastic_net_cv(matrix.dosages, y, alpha=settings.alpha, n_folds=settings.folds, seed=settings.seed,
                                 nested_cv=settings.nested_cv)
    except ValueError as err:
        return skipped(f"fit_failed: {err}")
    row = {"gene": gene, "genename": name, "gene_type": gene_type, "n_samples": n_samples,
           "n_snps_in_window": n_in_window, "n_snps_passing_filters": n_snps, "n_snps_in_model": fit.n_snps_in_model,
           "n_snps_too_missing": matrix.too_missing, "n_missing_calls": matrix.missing_calls,
           "status": "ok", "reason": ""}
    row.update({key: float(getattr(fit, key)) for key in SUMMARY_NUMERIC})
    nonzero = np.flatnonzero(fit.weights != 0)
    weights = pd.DataFrame({
        "gene": gene, "rsid": [matrix.rsid[i] for i in nonzero], "varID": [matrix.var_id[i] for i in nonzero],
        "ref_allele": [matrix.ref[i] for i in nonzero], "eff_allele": [matrix.alt[i] for i in nonzero],
        "weight": fit.weights[nonzero],
    })
    selected = matrix.dosages[:, nonzero]
    covariance = np.cov(selected, rowvar=False, ddof=1).reshape(len(nonzero), len(nonzero))
    return row, weights, covariance


def linearize(
    store: PersonalizedStore,
    loci: pd.DataFrame,
    vcf: VcfReader,
    window_bp: int,
    filters: VariantFilters,
    settings: FitSettings,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """Fit every locus of the store; returns (summary, weights, covariances by gene)."""
    values = store.individual_values()
    row_of = {locus: i for i, locus in enumerate(store.locus_ids)}
    missing = [l for l in loci["locus_id"] if l not in row_of]
    if missing:
        raise EnpactError(f"locus {missing[0]} is not in the personalized store ({len(missing)} missing)")
    summaries, weights, covariances = [], [], {}
    names = loci["name"] if "name" in loci else loci["locus_id"]
    types = loci["gene_type"] if "gene_type" in loci else pd.Series(["NA"] * len(loci), index=loci.index)
    iterator = zip(loci["locus_id"], loci["chrom"], loci["center"], names, types)
    for gene, chrom, center, name, gene_type in progress_bar(iterator, total=len(loci), desc="linearize",
                                                    disable=not progress, leave=False):
        y = values[row_of[gene]]
        start = window_start(int(center), window_bp)
        table = vcf.read(chrom, start, start + window_bp)
        matrix, n_in_window = locus_dosages(table, int(center), window_bp, filters)
        row, w, cov = fit_locus(gene, str(name), str(gene_type), y, matrix, settings, n_in_window)
        summaries.append(row)
        if len(w):
            weights.append(w)
            covariances[gene] = cov
    # a chunk may hold no locus of a context: an empty summary with every column
    summary = pd.DataFrame(summaries) if summaries else pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    all_weights = pd.concat(weights, ignore_index=True) if weights else pd.DataFrame(columns=list(WEIGHTS_COLUMNS))
    n_ok = int((summary["status"] == "ok").sum())
    log.info("linearized %d loci (%d fitted, %d skipped: %s)", len(summary), n_ok, len(summary) - n_ok,
             ", ".join(f"{k} {v}" for k, v in summary.loc[summary["status"] != "ok", "reason"].value_counts().items())
             or "none")
    return summary, all_weights, covariances
