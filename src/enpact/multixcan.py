"""S-MultiXcan: joint association of a gene's predicted expression in several contexts with a GWAS, from the
contexts' S-PrediXcan z-scores, as MetaXcan's SMulTiXcan.py computes it.

For gene g and the contexts c with a finite S-PrediXcan z-score and a model with SNPs in the covariance,
restricted to SNPs "cleared" for the GWAS (in the GWAS with some model's two alleles): with weights w_c and SNP
covariance Σ, the predicted-expression covariance is M_cd = w_cᵀ Σ w_d and its correlation C_cd = M_cd /
sqrt(M_cc M_dd) (contexts with M_cc = 0 are left out). C (+ λI with --regularization) is decomposed by SVD; the
components with singular value ≥ a cut-off (by default λ_max / 30, a condition number of 30; the first component
is always kept) give a pseudo-inverse C⁺, and T = zᵀ C⁺ z is χ² with n_indep (components kept) degrees of
freedom. Output columns, order, status codes and NA conventions are SMulTiXcan.py's.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from enpact.errors import EnpactError
from enpact.io import atomic_path, parse_float_column, read_text_columns
from enpact.predictdb import ModelDatabase, load_model_database, read_covariance_coded
from enpact.twas import GwasColumns, _check_contiguous, read_gwas

log = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "gene", "gene_name", "pvalue", "n", "n_indep", "p_i_best", "t_i_best", "p_i_worst", "t_i_worst", "eigen_max",
    "eigen_min", "eigen_min_kept", "z_min", "z_max", "z_mean", "z_sd", "tmi", "status",
)
INTEGER_COLUMNS = ("n", "n_indep", "status")
DEFAULT_CONDITION_NUMBER = 30.0
TIE_RELATIVE = 1e-9  # a singular value this close to the cut-off is kept or dropped by rounding alone

# SMulTiXcan.py's status codes
OK = 0
NO_METAXCAN_RESULTS = -2
NO_PRODUCT = -3
INSUFFICIENT_NUMERICAL_RESOLUTION = -4
INVERSE_ERROR = -6

PRODUCT_CHUNK_VALUES = 1 << 24  # entries x contexts² values summed at a time when forming the per-gene products


# ---------------------------------------------------------------------------------------------------------
# the joint test


@dataclass(frozen=True)
class Cutoff:
    """Which principal components are kept: eigen_ratio (λ ≥ value·λ_max; a condition number N is 1/N),
    trace_ratio (λ ≥ value·trace) or threshold (components explaining all but `value` of the variance)."""

    kind: str
    value: float

    @classmethod
    def from_options(cls, condition_number: float | None = None, eigen_ratio: float | None = None,
                     threshold: float | None = None, trace_ratio: float | None = None) -> "Cutoff":
        """The one cut-off option given (a condition number of 30 when none is)."""
        given = {name: value for name, value in (("--cutoff-condition-number", condition_number),
                                                 ("--cutoff-eigen-ratio", eigen_ratio),
                                                 ("--cutoff-threshold", threshold),
                                                 ("--cutoff-trace-ratio", trace_ratio)) if value is not None}
        if len(given) > 1:
            raise EnpactError(f"give one cut-off option, not {' and '.join(given)}")
        if any(value < 0 for value in given.values()):
            raise EnpactError(f"{next(iter(given))} must not be negative")
        if eigen_ratio is not None:
            return cls("eigen_ratio", float(eigen_ratio))
        if trace_ratio is not None:
            return cls("trace_ratio", float(trace_ratio))
        if threshold is not None:
            return cls("threshold", float(threshold))
        number = DEFAULT_CONDITION_NUMBER if condition_number is None else float(condition_number)
        if number == 0:
            raise EnpactError("--cutoff-condition-number must be positive")
        return cls("eigen_ratio", 1.0 / number)

    def limits(self, correlation: np.ndarray) -> np.ndarray:
        """Per matrix of a (genes, k, k) stack, the smallest singular value kept (from the unregularised matrix).

        Computed as SMulTiXcan.py computes it, so that the SVD's values compare with the same numbers: eigenvalues
        from `eigh` (not `eigvalsh`, whose values may differ in the last bit), summed from a contiguous descending
        array, and compared without a tolerance. A boundary component whose SVD value rounds below eigh's is dropped,
        as there."""
        if self.value == 0:
            return np.zeros(len(correlation))
        if self.kind == "trace_ratio":
            return self.value * np.trace(correlation, axis1=1, axis2=2)
        eigen = np.ascontiguousarray(np.linalg.eigh(correlation)[0][:, ::-1])
        if self.kind == "eigen_ratio":
            return self.value * eigen[:, 0]
        cumulative = np.cumsum(eigen, axis=1)
        objective = np.array([np.sum(row) for row in eigen]) * (1 - self.value)
        beyond = cumulative > objective[:, None]
        first_beyond = np.where(beyond.any(axis=1), beyond.argmax(axis=1), eigen.shape[1])
        return eigen[np.arange(len(eigen)), np.maximum(first_beyond - 1, 0)]


@dataclass(frozen=True)
class JointTest:
    """Per gene of a stack: the S-MultiXcan statistic and what SMulTiXcan.py reports about it."""

    statistic: np.ndarray
    pvalue: np.ndarray
    n_indep: np.ndarray
    eigen_max: np.ndarray
    eigen_min: np.ndarray
    eigen_min_kept: np.ndarray
    tmi: np.ndarray
    status: np.ndarray
    at_limit: np.ndarray  # a singular value lies within rounding of the cut-off: its keep decision is a tie


def joint_test(correlation: np.ndarray, zscores: np.ndarray, cutoff: Cutoff,
               regularization: float | None = None) -> JointTest:
    """T = zᵀ C⁺ z ~ χ²(n_indep) for a (genes, k, k) stack of context correlations and (genes, k) z-scores."""
    correlation = np.asarray(correlation, dtype=np.float64)
    k = correlation.shape[-1]
    limit = cutoff.limits(correlation)
    regularised = correlation + regularization * np.eye(k) if regularization is not None else correlation
    u, singular, vt = np.linalg.svd(regularised, full_matrices=False)
    kept = singular >= limit[:, None]
    kept[:, 0] = True
    with np.errstate(divide="ignore"):
        inverse_singular = np.where(kept, 1.0 / singular, 0.0)
    inverse = np.swapaxes(vt, 1, 2) @ (inverse_singular[:, :, None] * np.swapaxes(u, 1, 2))
    n_indep = np.count_nonzero(inverse_singular, axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        statistic = np.einsum("gi,gij,gj->g", zscores, inverse, zscores)
        tmi = np.einsum("gij,gji->g", correlation, inverse)
    invertible = np.isfinite(inverse).all(axis=(1, 2))
    pvalue = np.where(invertible, stats.chi2.sf(statistic, n_indep), np.nan)
    status = np.where(~invertible, INVERSE_ERROR, np.where(pvalue == 0, INSUFFICIENT_NUMERICAL_RESOLUTION, OK))
    return JointTest(
        statistic=np.where(invertible, statistic, np.nan), pvalue=pvalue, n_indep=n_indep,
        eigen_max=singular.max(axis=1), eigen_min=singular.min(axis=1),
        eigen_min_kept=np.where(kept, singular, np.inf).min(axis=1), tmi=np.where(invertible, tmi, np.nan),
        status=status,
        at_limit=(limit > 0) & (np.abs(singular - limit[:, None]) <= TIE_RELATIVE * limit[:, None]).any(axis=1),
    )


# ---------------------------------------------------------------------------------------------------------
# contexts: models and S-PrediXcan results


@dataclass(frozen=True)
class Context:
    """A context's model database (None: results only) and S-PrediXcan results file (None: model only)."""

    name: str
    model_db: Path | None
    results: Path | None


def explicit_contexts(triples: Sequence[tuple[str, str | Path, str | Path]]) -> list[Context]:
    """Contexts given as (name, database, results) triples; a name given twice is an error."""
    seen: set[str] = set()
    contexts = []
    for name, db, results in triples:
        if not name or any(ch.isspace() for ch in name):
            raise EnpactError(f"--context '{name}': a context name must be non-empty and without spaces")
        if name in seen:
            raise EnpactError(f"--context {name} is given twice; give each context once")
        seen.add(name)
        contexts.append(Context(name, Path(db), Path(results)))
    return sorted(contexts, key=lambda c: c.name)


_MODEL_NAME_RULES = (re.compile(r"\.db$"), re.compile(r"_0\.5$"), re.compile(r"^TW_"), re.compile(r"^gtex_v7_"))


def model_name(path: Path, pattern: str | None) -> str:
    """A model's context name from its file name: group 1 of `pattern`, else the name without .db (and SMulTiXcan's
    other default trims: _0.5, TW_, gtex_v7_)."""
    name = path.name
    if pattern:
        found = re.search(pattern, name)
        if not found or not found.groups():
            raise EnpactError(f"{path}: --models-name-pattern '{pattern}' does not match the file name with a group")
        return found.group(1)
    for rule in _MODEL_NAME_RULES:
        name = rule.sub("", name)
    return name


def results_name(path: Path, pattern: str | None, model_names: Sequence[str]) -> str:
    """A results file's context name: the last group of `pattern` matched on the file name, else the model name that
    the name without .csv ends with (after '_', '-' or '.'), the longest such."""
    name = path.name
    if pattern:
        found = re.match(pattern, name)
        if not found or not found.groups():
            raise EnpactError(f"{path}: --metaxcan-file-name-parse-pattern '{pattern}' does not match the file name "
                              "with a group")
        groups = found.groups()
        return groups[1] if len(groups) > 1 else groups[0]
    stem = re.sub(r"\.csv$", "", name)
    endings = [m for m in model_names if stem == m or any(stem.endswith(s + m) for s in ("_", "-", "."))]
    if not endings:
        raise EnpactError(f"{path}: no model name ends this results file's name; give "
                          "--metaxcan-file-name-parse-pattern (e.g. '(.*)__PM__(.*).csv') or use --context")
    return max(endings, key=len)


def folder_contexts(models_folder: str | Path, results_folder: str | Path, name_filter: Sequence[str] | None = None,
                    name_pattern: str | None = None, results_filter: Sequence[str] = (".*csv",),
                    parse_pattern: str | None = None) -> list[Context]:
    """Contexts found as SMulTiXcan.py finds them: model files whose name any of `name_filter` finds (default .db),
    results files whose name every `results_filter` matches, paired by context name."""
    models_folder, results_folder = Path(models_folder), Path(results_folder)
    for folder, option in ((models_folder, "--models-folder"), (results_folder, "--metaxcan-folder")):
        if not folder.is_dir():
            raise EnpactError(f"{folder}: {option} is not a folder")
    model_filters = [re.compile(p) for p in (name_filter or [r".*db$"])]
    models: dict[str, Path] = {}
    for path in sorted(models_folder.iterdir()):
        if path.is_file() and any(f.search(path.name) for f in model_filters):
            name = model_name(path, name_pattern)
            if name in models:
                raise EnpactError(f"{path}: context name '{name}' is also that of {models[name]}; use "
                                  "--models-name-filter or --models-name-pattern to tell them apart")
            models[name] = path
    if not models:
        raise EnpactError(f"{models_folder}: no model database matches --models-name-filter")
    result_filters = [re.compile(p) for p in results_filter]
    results: dict[str, Path] = {}
    for path in sorted(results_folder.iterdir()):
        if path.is_file() and all(f.match(path.name) for f in result_filters):
            name = results_name(path, parse_pattern, list(models))
            if name in results:
                raise EnpactError(f"{path}: results for context '{name}' also come from {results[name]}; use "
                                  "--metaxcan-filter to keep one")
            results[name] = path
    if not results:
        raise EnpactError(f"{results_folder}: no results file matches --metaxcan-filter")
    if not set(models) & set(results):
        raise EnpactError(f"no context has both a model ({', '.join(sorted(models)[:4])}) and results "
                          f"({', '.join(sorted(results)[:4])}); check the name patterns")
    return [Context(name, models.get(name), results.get(name)) for name in sorted(set(models) | set(results))]


def trim_version(genes: pd.Series) -> pd.Series:
    """Gene ids without their version (ENSG00000123.4 -> ENSG00000123)."""
    return genes.astype(str).str.split(".").str[0]


def read_results(path: Path, trimmed: bool) -> pd.Series:
    """An S-PrediXcan results CSV as z-score per gene (finite z-scores only)."""
    table = read_text_columns(path, ["gene", "zscore"], separator=",")
    genes = pd.Series(table["gene"].to_numpy(), dtype=object)
    if trimmed:
        genes = trim_version(genes)
    zscores = pd.Series(parse_float_column(table["zscore"], path, "zscore", table["gene"]), index=genes.to_numpy())
    repeated = zscores.index.duplicated()
    if repeated.any():
        raise EnpactError(f"{path}: gene {zscores.index[repeated][0]} appears twice; give one row per gene")
    return zscores[np.isfinite(zscores.to_numpy())]


# ---------------------------------------------------------------------------------------------------------
# GWAS-cleared SNPs


def cleared_snps(gwas_files: Sequence[Path], columns: GwasColumns, models: Sequence[ModelDatabase],
                 separator: str | None, keep_non_rsid: bool, input_pvalue_fix: float) -> np.ndarray:
    """The GWAS SNP ids that some model has, with the model's two alleles (in either order), as SMulTiXcan.py
    clears them; a z-score is not needed."""
    keys = np.unique(np.concatenate([m.all_keys.astype(str) for m in models]))
    gwas = pl.concat([read_gwas(p, columns, keys, separator, keep_non_rsid, input_pvalue_fix) for p in gwas_files])
    alleles = pl.concat([pl.DataFrame({"snp": m.entry_key.astype(str), "ref": m.entry_ref.astype(str),
                                       "eff": m.entry_eff.astype(str)}) for m in models]).unique()
    merged = gwas.select("snp", "effect_allele", "non_effect_allele").join(alleles, on="snp", how="inner")
    same = (pl.col("effect_allele") == pl.col("eff")) & (pl.col("non_effect_allele") == pl.col("ref"))
    swapped = (pl.col("effect_allele") == pl.col("ref")) & (pl.col("non_effect_allele") == pl.col("eff"))
    cleared = merged.filter((same | swapped).fill_null(False))["snp"].unique().sort().to_numpy()
    log.info("GWAS: %d rows for model SNPs, %d SNPs with the models' alleles", gwas.height, len(cleared))
    return cleared


def gwas_folder_files(folder: str | Path, pattern: str | None = None) -> list[Path]:
    """The files of a GWAS folder (one study, e.g. one file per chromosome) whose name `pattern` matches, by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EnpactError(f"{folder}: --gwas-folder is not a folder")
    regex = re.compile(pattern) if pattern else None
    files = sorted(p for p in folder.iterdir() if p.is_file() and (regex is None or regex.match(p.name)))
    if not files:
        raise EnpactError(f"{folder}: no file matches --gwas-file-pattern '{pattern}'")
    return files


def read_cleared_snps(path: str | Path) -> np.ndarray:
    """SNP ids of an `rsid` column (SMulTiXcan.py's --cleared_snps)."""
    return read_text_columns(path, ["rsid"])["rsid"].unique().sort().to_numpy()


# ---------------------------------------------------------------------------------------------------------
# correlation of predicted expression across contexts


@dataclass(frozen=True)
class GeneCovariance:
    """The cleared SNP covariance: genes in file order, (gene, SNP) entries grouped by gene, unordered pairs."""

    genes: np.ndarray  # gene ids, covariance file order
    entry_gene: np.ndarray  # index into genes, non-decreasing
    entry_snp: np.ndarray
    pair_a: np.ndarray  # entry indexes, a <= b
    pair_b: np.ndarray
    value: np.ndarray


def load_gene_covariance(path: str | Path, cleared: np.ndarray, wanted_genes: set[str] | None,
                         trimmed: bool, max_genes: int | None = None) -> GeneCovariance:
    """Rows of the covariance file whose two SNPs are cleared, for the wanted genes (file order, the first
    `max_genes`); NA values are dropped, a pair listed twice keeps its last value."""
    path = Path(path)
    table = read_covariance_coded(path)
    _check_contiguous(path, table["GENE"])
    allowed = pl.Series(cleared, dtype=pl.Utf8).implode()
    table = table.filter(pl.col("RSID1").is_in(allowed) & pl.col("RSID2").is_in(allowed))
    table = table.with_columns(pl.col("GENE", "RSID1", "RSID2").cast(pl.Utf8))
    if trimmed:
        table = table.with_columns(pl.col("GENE").str.split(".").list.first())
    order = table["GENE"].unique(maintain_order=True).to_numpy()
    genes = np.array([g for g in order if wanted_genes is None or g in wanted_genes], dtype=object)
    if max_genes is not None:
        genes = genes[:max_genes]
    index = pl.DataFrame({"GENE": genes, "gene_index": np.arange(len(genes), dtype=np.int64)},
                         schema={"GENE": pl.Utf8, "gene_index": pl.Int64})
    table = table.join(index, on="GENE", how="inner", maintain_order="left").filter(pl.col("VALUE").is_not_nan())
    ends = pl.concat([table.select("gene_index", snp="RSID1"), table.select("gene_index", snp="RSID2")])
    entries = ends.unique().sort("gene_index", "snp").with_row_index("entry")
    a = table.select("gene_index", snp="RSID1").join(entries, on=["gene_index", "snp"], how="left",
                                                     maintain_order="left")["entry"].to_numpy().astype(np.int64)
    b = table.select("gene_index", snp="RSID2").join(entries, on=["gene_index", "snp"], how="left",
                                                     maintain_order="left")["entry"].to_numpy().astype(np.int64)
    pairs = pl.DataFrame({"low": np.minimum(a, b), "high": np.maximum(a, b), "value": table["VALUE"].to_numpy()})
    pairs = pairs.unique(["low", "high"], keep="last", maintain_order=True)
    log.info("%s: %d rows with both SNPs cleared for %d genes", path, table.height, len(genes))
    return GeneCovariance(genes=genes, entry_gene=entries["gene_index"].to_numpy(), entry_snp=entries["snp"].to_numpy(),
                          pair_a=pairs["low"].to_numpy(), pair_b=pairs["high"].to_numpy(),
                          value=pairs["value"].to_numpy())


def context_weights(cov: GeneCovariance, models: Sequence[ModelDatabase], trimmed: bool) -> np.ndarray:
    """(entries, contexts) weights: a model's weight of the entry's SNP for the entry's gene, NaN where it has none."""
    entries = pl.DataFrame({"gene": cov.genes[cov.entry_gene], "snp": cov.entry_snp,
                            "entry": np.arange(len(cov.entry_gene))},
                           schema={"gene": pl.Utf8, "snp": pl.Utf8, "entry": pl.Int64})
    weights = np.full((len(cov.entry_gene), len(models)), np.nan)
    for c, model in enumerate(models):
        genes = model.extra["gene"].to_numpy(dtype=object)[model.entry_gene]
        table = pl.DataFrame({"gene": trim_version(pd.Series(genes)).to_numpy() if trimmed else genes,
                              "snp": model.entry_key, "weight": model.entry_weight},
                             schema={"gene": pl.Utf8, "snp": pl.Utf8, "weight": pl.Float64})
        matched = entries.join(table, on=["gene", "snp"], how="inner")
        weights[matched["entry"].to_numpy(), c] = matched["weight"].to_numpy()
    return weights


def _check_complete_pairs(cov: GeneCovariance, used: np.ndarray, source: str) -> None:
    """Every pair of the SNPs a gene's contexts use needs a covariance value (SMulTiXcan.py fails there too)."""
    n_genes = len(cov.genes)
    n_used = np.bincount(cov.entry_gene, weights=used, minlength=n_genes).astype(np.int64)
    both = used[cov.pair_a] & used[cov.pair_b]
    counts = np.bincount(cov.entry_gene[cov.pair_a[both]], minlength=n_genes)
    wrong = np.flatnonzero(counts != n_used * (n_used + 1) // 2)
    if not len(wrong):
        return
    gene = wrong[0]
    members = np.flatnonzero(used & (cov.entry_gene == gene)).tolist()
    listed = set(zip(cov.pair_a[both].tolist(), cov.pair_b[both].tolist()))
    a, b = next((a, b) for i, a in enumerate(members) for b in members[i:] if (a, b) not in listed)
    raise EnpactError(f"{source}: gene {cov.genes[gene]} has no covariance for SNP pair {cov.entry_snp[a]},"
                      f"{cov.entry_snp[b]}; the covariance must list every pair of the SNPs of the gene's models "
                      "(`enpact covariance` with all the contexts' databases writes such a file)")


def expression_products(cov: GeneCovariance, weights: np.ndarray) -> np.ndarray:
    """(genes, contexts, contexts) products w_cᵀ Σ w_d over each gene's SNPs (absent weights count as 0)."""
    n_entries, n_contexts = weights.shape
    w = np.nan_to_num(weights, nan=0.0)
    a, b, value = cov.pair_a, cov.pair_b, cov.value
    off = a != b
    sigma_w = np.empty_like(w)  # Σ w per entry, from the pairs listed once per unordered pair
    for c in range(n_contexts):
        sigma_w[:, c] = (np.bincount(a, value * w[b, c], minlength=n_entries)
                         + np.bincount(b[off], value[off] * w[a[off], c], minlength=n_entries))
    products = np.zeros((len(cov.genes), n_contexts, n_contexts))
    step = max(1, PRODUCT_CHUNK_VALUES // (n_contexts * n_contexts))
    for start in range(0, n_entries, step):
        gene = cov.entry_gene[start:start + step]
        firsts = np.flatnonzero(np.r_[True, gene[1:] != gene[:-1]])
        outer = w[start:start + step, :, None] * sigma_w[start:start + step, None, :]
        products[gene[firsts]] += np.add.reduceat(outer, firsts, axis=0)
    upper = np.triu(np.ones((n_contexts, n_contexts), dtype=bool))
    # one value per pair of contexts, as SMulTiXcan.py computes c <= d and mirrors it
    return np.where(upper, products, np.swapaxes(products, 1, 2))


@dataclass(frozen=True)
class GeneBlocks:
    """Where each gene's entries and pairs lie in a GeneCovariance, found once instead of scanning per gene."""

    entry_bounds: np.ndarray  # (genes + 1,): gene g's entries are entry_bounds[g]:entry_bounds[g + 1]
    pair_order: np.ndarray    # pair indexes grouped by gene
    pair_bounds: np.ndarray   # (genes + 1,): gene g's pairs are pair_order[pair_bounds[g]:pair_bounds[g + 1]]

    @classmethod
    def of(cls, cov: GeneCovariance) -> "GeneBlocks":
        """The blocks of a covariance (entries are grouped by gene; a pair's gene is its first entry's)."""
        genes = np.arange(len(cov.genes) + 1)
        pair_gene = cov.entry_gene[cov.pair_a]
        order = np.argsort(pair_gene, kind="stable")
        return cls(entry_bounds=np.searchsorted(cov.entry_gene, genes), pair_order=order,
                   pair_bounds=np.searchsorted(pair_gene[order], genes))


def correlation_in_smultixcan_order(cov: GeneCovariance, blocks: GeneBlocks, weights: np.ndarray, gene: int,
                                     contexts: np.ndarray) -> np.ndarray:
    """A gene's (k, k) correlation of predicted expression over `contexts`, computed as SMulTiXcan.py computes it
    (covariance values as its pandas reads them; per pair, SNPs in sorted order, w_cᵀ (Σ w_d) then divided by
    sqrt(var_c var_d)), bit for bit."""
    first, last = blocks.entry_bounds[gene], blocks.entry_bounds[gene + 1]
    entries = np.arange(first, last)  # sorted by SNP id within a gene
    pairs = blocks.pair_order[blocks.pair_bounds[gene]:blocks.pair_bounds[gene + 1]]
    a, b = cov.pair_a[pairs] - first, cov.pair_b[pairs] - first
    value = as_pandas_2_reads(cov.value[pairs])
    sigma = np.zeros((len(entries), len(entries)))
    sigma[a, b] = value
    sigma[b, a] = value
    members = [np.flatnonzero(~np.isnan(weights[entries, c])) for c in contexts]
    w = [weights[entries[m], c] for m, c in zip(members, contexts)]

    def product(i: int, j: int) -> float:
        return float(np.dot(np.dot(w[i], sigma[np.ix_(members[i], members[j])]), w[j]))

    variance = [product(i, i) for i in range(len(contexts))]
    correlation = np.empty((len(contexts), len(contexts)))
    for i in range(len(contexts)):
        for j in range(i, len(contexts)):
            correlation[i, j] = correlation[j, i] = product(i, j) / np.sqrt(variance[i] * variance[j])
    return correlation


_POWERS_OF_TEN = [float(f"1e{i}") for i in range(309)]


def as_pandas_2_reads(values: np.ndarray) -> np.ndarray:
    """The numbers pandas < 2.2's default C parser (`precise_xstrtod`, which SMulTiXcan.py reads the covariance with)
    makes of these values written in shortest form: it keeps 17 digits, leading zeros included, and rounds at every
    step, so long decimals come out a few ulps off (12 significant digits, as in MetaXcan's files, read exactly
    down to about 1e-10)."""
    return np.array([_precise_xstrtod(repr(float(v))) for v in values], dtype=np.float64)


def _precise_xstrtod(text: str) -> float:
    """pandas' `precise_xstrtod` on a decimal or scientific number: digits accumulated as a double, then one
    multiplication or division by a tabled power of ten."""
    position, end = 0, len(text)
    negative = text.startswith("-")
    position += text[:1] in ("-", "+")
    number, exponent, digits = 0.0, 0, 0
    while position < end and text[position].isdigit():
        if digits < 17:
            number, digits = number * 10.0 + int(text[position]), digits + 1
        else:
            exponent += 1
        position += 1
    if position < end and text[position] == ".":
        position += 1
        while position < end and text[position].isdigit():
            if digits < 17:
                number, digits, exponent = number * 10.0 + int(text[position]), digits + 1, exponent - 1
            position += 1
    number = -number if negative else number
    if position < end and text[position] in "eE":
        mantissa_end = position + 1
        exponent += int(text[mantissa_end:])
    if exponent > 308:
        return math.copysign(math.inf, number)
    if exponent > 0:
        return number * _POWERS_OF_TEN[exponent]
    if exponent < -308:
        return 0.0 * number if exponent < -616 else number / _POWERS_OF_TEN[-308 - exponent] / _POWERS_OF_TEN[308]
    return number / _POWERS_OF_TEN[-exponent]


def _replace_rows(values: np.ndarray, rows: np.ndarray, replacement: np.ndarray) -> np.ndarray:
    """`values` with `rows` taken from `replacement` (one row of it per listed row)."""
    values = values.copy()
    values[rows] = replacement
    return values


# ---------------------------------------------------------------------------------------------------------
# driver


@dataclass(frozen=True)
class MultixcanInputs:
    """What S-MultiXcan reads, besides the GWAS."""

    contexts: list[Context]
    snp_covariance: Path
    snp_key: str = "rsid"
    trimmed: bool = False
    max_genes: int | None = None


def _load_models(contexts: Sequence[Context], snp_key: str, trimmed: bool) -> list[ModelDatabase]:
    """The contexts' model databases (trimmed gene ids must stay distinct)."""
    models = []
    for context in contexts:
        model = load_model_database(context.model_db, snp_key)
        if trimmed:
            trimmed_genes = trim_version(model.extra["gene"])
            if trimmed_genes.duplicated().any():
                raise EnpactError(f"{context.model_db}: gene {trimmed_genes[trimmed_genes.duplicated()].iloc[0]} "
                                  "appears twice without its version; leave out --trimmed-ensemble-id")
        models.append(model)
    return models


def _check_results_in_models(contexts: Sequence[Context], models: Sequence[ModelDatabase],
                             results: dict[str, pd.Series], trimmed: bool) -> None:
    """Results for a gene its context's database lacks mean the wrong database or results file."""
    for context, model in zip(contexts, models):
        if context.name not in results:
            continue
        genes = set(trim_version(model.extra["gene"]) if trimmed else model.extra["gene"])
        absent = [g for g in results[context.name].index if g not in genes]
        if absent:
            raise EnpactError(f"{context.results}: gene {absent[0]} has results but is not in {context.model_db} "
                              f"({len(absent)} such genes); give context {context.name} the database its "
                              "S-PrediXcan results were computed with")


def multixcan(inputs: MultixcanInputs, cleared: np.ndarray, cutoff: Cutoff, regularization: float | None = None,
              models: Sequence[ModelDatabase] | None = None) -> pd.DataFrame:
    """S-MultiXcan results (SMulTiXcan.py's columns) for the genes of the covariance file, sorted by p-value
    (`models`: the contexts' databases, if already loaded)."""
    modelled = [c for c in inputs.contexts if c.model_db is not None]
    models = list(models) if models is not None else _load_models(modelled, inputs.snp_key, inputs.trimmed)
    results = {c.name: read_results(c.results, inputs.trimmed) for c in inputs.contexts if c.results is not None}
    _check_results_in_models(modelled, models, results, inputs.trimmed)
    names = pd.concat([m.extra[["gene", "gene_name"]] for m in models], ignore_index=True)
    if inputs.trimmed:
        names["gene"] = trim_version(names["gene"])
    names = names.drop_duplicates("gene").set_index("gene")["gene_name"]
    cov = load_gene_covariance(inputs.snp_covariance, cleared, set(names.index), inputs.trimmed, inputs.max_genes)
    genes = cov.genes
    weights = context_weights(cov, models, inputs.trimmed)
    result_names = sorted(results)
    z_all = np.column_stack([results[n].reindex(genes).to_numpy(dtype=np.float64) for n in result_names]) \
        if result_names else np.full((len(genes), 0), np.nan)
    z_model = np.column_stack([results[c.name].reindex(genes).to_numpy(dtype=np.float64) if c.name in results
                               else np.full(len(genes), np.nan) for c in modelled])
    has_result = np.isfinite(z_model)
    in_cov = ~np.isnan(weights)
    used = (in_cov & has_result[cov.entry_gene]).any(axis=1)
    _check_complete_pairs(cov, used, str(inputs.snp_covariance))
    products = expression_products(cov, np.where(has_result[cov.entry_gene], weights, np.nan))
    variance = np.diagonal(products, axis1=1, axis2=2)
    present = np.zeros_like(has_result)
    np.logical_or.at(present, cov.entry_gene, in_cov)
    kept = has_result & present & (variance > 0)
    blocks = GeneBlocks.of(cov)
    table = _result_table(genes, names, z_all, z_model, products, variance, kept,
                          [c.name for c in modelled], cutoff, regularization,
                          tie_correlation=lambda gene, contexts: correlation_in_smultixcan_order(
                              cov, blocks, weights, gene, contexts))
    return table.sort_values(["pvalue", "status"], na_position="last").reset_index(drop=True)


def _result_table(genes: np.ndarray, names: pd.Series, z_all: np.ndarray, z_model: np.ndarray, products: np.ndarray,
                  variance: np.ndarray, kept: np.ndarray, context_names: list[str], cutoff: Cutoff,
                  regularization: float | None,
                  tie_correlation: Callable[[int, np.ndarray], np.ndarray] | None = None) -> pd.DataFrame:
    """The output columns for every gene: z summaries over all results, the joint test over the kept contexts.

    Where a component's keep decision is a tie (its singular value within rounding of the cut-off, as in every gene
    under --cutoff-threshold, whose cut-off is an eigenvalue itself), rounding alone decides it: those genes are
    tested again on the correlation computed in SMulTiXcan.py's order of operations (`tie_correlation`), so that
    the decision, n_indep and the p-value are SMulTiXcan.py's."""
    n_genes = len(genes)
    finite = np.isfinite(z_all)
    n = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_min = np.where(n > 0, np.min(np.where(finite, z_all, np.inf), axis=1, initial=np.inf), np.nan)
        z_max = np.where(n > 0, np.max(np.where(finite, z_all, -np.inf), axis=1, initial=-np.inf), np.nan)
        z_mean = np.where(n > 0, np.where(finite, z_all, 0).sum(axis=1) / n, np.nan)
        z_sd = np.where(n > 1, np.sqrt(np.where(finite, (z_all - z_mean[:, None]) ** 2, 0).sum(axis=1) / (n - 1)),
                        np.nan)
    columns = {name: np.full(n_genes, np.nan) for name in ("pvalue", "n_indep", "p_i_best", "p_i_worst", "eigen_max",
                                                            "eigen_min", "eigen_min_kept", "tmi")}
    best = np.full(n_genes, None, dtype=object)
    worst = np.full(n_genes, None, dtype=object)
    status = np.where(n == 0, NO_METAXCAN_RESULTS, NO_PRODUCT)
    n_kept = kept.sum(axis=1)
    labels = np.array(context_names, dtype=object)
    for k in np.unique(n_kept[(n > 0) & (n_kept > 0)]).tolist():
        rows = np.flatnonzero((n > 0) & (n_kept == k))
        chosen = np.flatnonzero(kept[rows].ravel()).reshape(len(rows), k) % kept.shape[1]
        v = variance[rows[:, None], chosen]
        correlation = products[rows[:, None, None], chosen[:, :, None], chosen[:, None, :]] / np.sqrt(
            v[:, :, None] * v[:, None, :])
        zscores = z_model[rows[:, None], chosen]
        test = joint_test(correlation, zscores, cutoff, regularization)
        if tie_correlation is not None and test.at_limit.any():
            tied = np.flatnonzero(test.at_limit)
            again = joint_test(np.stack([tie_correlation(int(rows[i]), chosen[i]) for i in tied]), zscores[tied],
                               cutoff, regularization)
            test = JointTest(**{name: _replace_rows(getattr(test, name), tied, getattr(again, name))
                                for name in JointTest.__dataclass_fields__})
        columns["pvalue"][rows] = test.pvalue
        columns["n_indep"][rows] = test.n_indep
        for name in ("eigen_max", "eigen_min", "eigen_min_kept", "tmi"):
            columns[name][rows] = getattr(test, name)
        strongest, weakest = np.abs(zscores).argmax(axis=1), np.abs(zscores).argmin(axis=1)
        columns["p_i_best"][rows] = 2 * stats.norm.sf(np.abs(zscores[np.arange(len(rows)), strongest]))
        columns["p_i_worst"][rows] = 2 * stats.norm.sf(np.abs(zscores[np.arange(len(rows)), weakest]))
        best[rows] = labels[chosen[np.arange(len(rows)), strongest]]
        worst[rows] = labels[chosen[np.arange(len(rows)), weakest]]
        status[rows] = test.status
    table = pd.DataFrame({
        "gene": genes, "gene_name": names.reindex(genes).to_numpy(), "pvalue": columns["pvalue"],
        "n": pd.array(n, dtype="Int64"), "n_indep": pd.array(columns["n_indep"], dtype="Float64").astype("Int64"),
        "p_i_best": columns["p_i_best"], "t_i_best": best, "p_i_worst": columns["p_i_worst"], "t_i_worst": worst,
        "eigen_max": columns["eigen_max"], "eigen_min": columns["eigen_min"],
        "eigen_min_kept": columns["eigen_min_kept"], "z_min": z_min, "z_max": z_max, "z_mean": z_mean, "z_sd": z_sd,
        "tmi": columns["tmi"], "status": status.astype(np.int64),
    })
    table["n"] = table["n"].mask(n == 0)
    return table.loc[:, list(RESULT_COLUMNS)]


def write_results(results: pd.DataFrame, path: str | Path) -> None:
    """Write the results tab-separated (as SMulTiXcan.py), `NA` for missing values, atomically."""
    with atomic_path(path) as tmp:
        results.to_csv(tmp, sep="\t", index=False, na_rep="NA")


def run_multixcan(
    inputs: MultixcanInputs,
    output: str | Path,
    cutoff: Cutoff,
    regularization: float | None = None,
    gwas_files: Sequence[str | Path] = (),
    columns: GwasColumns | None = None,
    cleared_snps_path: str | Path | None = None,
    separator: str | None = None,
    keep_non_rsid: bool = False,
    input_pvalue_fix: float = 1e-50,
    qq_plot_path: str | Path | None = None,
) -> pd.DataFrame:
    """Run S-MultiXcan and write the results table (and a QQ plot); SNPs are cleared by the GWAS files or by an
    `rsid` list."""
    if bool(gwas_files) == bool(cleared_snps_path):
        raise EnpactError("give the GWAS (--gwas-file or --gwas-folder) or --cleared-snps, one of them")
    columns = columns or GwasColumns()
    if not cleared_snps_path:
        columns.z_source()
    models = _load_models([c for c in inputs.contexts if c.model_db is not None], inputs.snp_key, inputs.trimmed)
    if cleared_snps_path:
        cleared = read_cleared_snps(cleared_snps_path)
    else:
        cleared = cleared_snps([Path(p) for p in gwas_files], columns, models, separator, keep_non_rsid,
                               input_pvalue_fix)
    if len(cleared) == 0:
        hint = "; ids without 'rs' are dropped unless --keep-non-rsid" if not keep_non_rsid else ""
        raise EnpactError(f"no GWAS SNP is in the models with the models' alleles (key {inputs.snp_key}); check "
                          f"--model-db-snp-key and the GWAS column options{hint}")
    results = multixcan(inputs, cleared, cutoff, regularization, models)
    write_results(results, output)
    counts = results["status"].value_counts()
    log.info("wrote %s: %d genes, %d tested (%d with p below the numerical resolution), %d without S-PrediXcan "
             "results, %d without a usable model", output, len(results),
             int(counts.get(OK, 0) + counts.get(INSUFFICIENT_NUMERICAL_RESOLUTION, 0)),
             int(counts.get(INSUFFICIENT_NUMERICAL_RESOLUTION, 0)), int(counts.get(NO_METAXCAN_RESULTS, 0)),
             int(counts.get(NO_PRODUCT, 0)))
    if qq_plot_path:
        from enpact.plots_twas import qq_plot

        qq_plot(results["pvalue"].to_numpy(dtype=np.float64, na_value=np.nan), qq_plot_path, title="S-MultiXcan")
    return results


__all__ = [
    "RESULT_COLUMNS", "Cutoff", "JointTest", "joint_test", "Context", "explicit_contexts", "folder_contexts",
    "model_name", "results_name", "read_results", "cleared_snps", "gwas_folder_files", "read_cleared_snps",
    "GeneCovariance", "load_gene_covariance", "context_weights", "expression_products", "MultixcanInputs", "multixcan",
    "write_results", "run_multixcan",
]
