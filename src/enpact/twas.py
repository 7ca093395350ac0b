"""S-PrediXcan: association of PredictDB gene models with GWAS summary statistics.

Same inputs, harmonisation, formula and output columns as MetaXcan's SPrediXcan.py, vectorised over genes:
for gene g with used SNPs l (model ∩ allele-matched GWAS ∩ covariance), weights w, covariance Σ,
σ_l = sqrt(Σ_ll): var_g = wᵀΣw, z_g = Σ w_l σ_l Z_l / sqrt(var_g), effect = Σ w_l σ_l² β_l / var_g.
"""

from __future__ import annotations

import gzip
import logging
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from scipy.special import ndtr, ndtri

from enpact.errors import EnpactError
from enpact.layout import gwas_name, gwas_names
from enpact.io import (
    GZIP_READ_ERRORS,
    atomic_path,
    gzip_error,
    header_columns,
    is_gzip,
    parse_float_column,
    read_text_columns,
    sniff_separator,
)
from enpact.predictdb import (
    ModelDatabase,
    gene_positions_from_model,
    load_model_database,
    load_phi,
    read_covariance_coded,
)

log = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "gene", "gene_name", "zscore", "effect_size", "pvalue", "var_g", "pred_perf_r2", "pred_perf_pval",
    "pred_perf_qval", "n_snps_used", "n_snps_in_cov", "n_snps_in_model",
)
CALIBRATION_COLUMNS = ("phi", "uncalibrated_pvalue", "uncalibrated_zscore")


@dataclass(frozen=True)
class GwasColumns:
    """Column names of a GWAS summary statistics file (SPrediXcan.py defaults for SNP and alleles)."""

    snp: str = "SNP"
    effect_allele: str = "A1"
    non_effect_allele: str = "A2"
    beta: str | None = None
    se: str | None = None
    zscore: str | None = None
    pvalue: str | None = None
    odds_ratio: str | None = None
    beta_sign: str | None = None

    def z_source(self) -> str:
        """Where z comes from, in SPrediXcan's order: 'zscore', 'pvalue' (sign from beta) or 'beta_se'."""
        if self.zscore:
            return "zscore"
        if self.pvalue:
            if self.beta or self.odds_ratio or self.beta_sign:
                return "pvalue"
            raise EnpactError("--pvalue-column needs --beta-column, --or-column or --beta-sign-column for the sign")
        if self.se:
            if self.beta or self.odds_ratio:
                return "beta_se"
            raise EnpactError("--se-column needs --beta-column or --or-column")
        raise EnpactError("give --zscore-column, or --pvalue-column with a beta/OR/sign column, "
                          "or --se-column with a beta/OR column")

    def needed(self) -> list[str]:
        """The file columns to read, without repeats."""
        names = [self.snp, self.effect_allele, self.non_effect_allele, self.zscore, self.pvalue, self.beta,
                 self.odds_ratio, self.se, self.beta_sign]
        return list(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class CovarianceIndex:
    """Covariance entries mapped onto model entries: unordered pairs (a <= b) with their value."""

    pair_a: np.ndarray
    pair_b: np.ndarray
    value: np.ndarray
    in_cov: np.ndarray  # per entry: the SNP is a RSID1 of a non-NA row of its gene
    n_snps_in_cov: np.ndarray  # per gene, float (NaN when the gene is absent from the file)


@dataclass(frozen=True)
class GwasData:
    """Harmonised GWAS values per model entry."""

    present: np.ndarray
    zscore: np.ndarray
    beta: np.ndarray
    has_beta: bool


# ---------------------------------------------------------------------------------------------------------
# covariance


def _check_contiguous(path: Path, genes: pl.Series) -> None:
    """Rows of a gene must be contiguous (SPrediXcan.py rejects files where they are not)."""
    codes = genes.to_physical().to_numpy()
    if codes.size == 0:
        return
    runs = codes[np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])]
    _, first = np.unique(runs, return_index=True)
    if len(first) < len(runs):
        again = np.setdiff1d(np.arange(len(runs)), first)[0]
        name = genes.gather(int(np.flatnonzero(codes == runs[again])[0])).cast(pl.Utf8)[0]
        raise EnpactError(f"{path}: rows of gene {name} are not contiguous; keep each gene's rows together")


def _snps_in_covariance(table: pl.DataFrame, model: ModelDatabase) -> np.ndarray:
    """Per model gene, the number of distinct RSID1 with a value (NaN where the gene is not in the file)."""
    counts = (table.filter(pl.col("VALUE").is_not_nan()).group_by("GENE").agg(pl.col("RSID1").n_unique().alias("n"))
              .with_columns(pl.col("GENE").cast(pl.Utf8)))
    n_in_cov = pd.Series(counts["n"].to_numpy(), index=counts["GENE"].to_list(), dtype=np.float64)
    n_in_cov = n_in_cov.reindex(model.extra["gene"]).to_numpy()
    in_file = model.extra["gene"].isin(set(table["GENE"].unique().cast(pl.Utf8).to_list())).to_numpy()
    return np.where(in_file & np.isnan(n_in_cov), 0.0, n_in_cov)


def load_covariance(path: str | Path, model: ModelDatabase) -> CovarianceIndex:
    """Read a covariance file and map its values onto the model's entries (pairs, presence, counts)."""
    path = Path(path)
    # the file's identifiers and the model's share one string pool, so rows match entries by integer codes
    identifiers = pl.Categorical(pl.Categories.random())
    table = read_covariance_coded(path, identifiers)
    _check_contiguous(path, table["GENE"])
    n_in_cov = _snps_in_covariance(table, model)
    entry_code = _entry_codes(model, identifiers)
    order = np.argsort(entry_code)
    sorted_code = entry_code[order]
    gene = _codes(table["GENE"])
    a = _entry_index(sorted_code, order, _pair_code(gene, table["RSID1"]))
    b = _entry_index(sorted_code, order, _pair_code(gene, table["RSID2"]))
    values = table["VALUE"].to_numpy()
    n_rows = table.height
    del table, gene
    measured = ~np.isnan(values)
    in_cov = np.zeros(len(model.entry_key), dtype=bool)
    in_cov[a[measured & (a >= 0)]] = True
    usable = measured & (a >= 0) & (b >= 0)
    a, b, values = a[usable], b[usable], values[usable]
    low, high = np.minimum(a, b), np.maximum(a, b)
    keep = _last_of_each_pair(low * len(model.entry_key) + high)
    if keep is not None:
        _check_repeated_rows(path, a, b, values, model)
        log.info("%s: %d SNP pairs are listed more than once; the last value is used", path, len(a) - len(keep))
        low, high, values = low[keep], high[keep], values[keep]
    log.info("%s: %d rows, %d of the model's genes, %d SNP pairs matching the model", path, n_rows,
             int(np.isfinite(n_in_cov).sum()), len(low))
    return CovarianceIndex(pair_a=low, pair_b=high, value=values, in_cov=in_cov, n_snps_in_cov=n_in_cov)


_CODE_STRIDE = 1 << 32  # physical codes of a Categorical are 32-bit


def _codes(column: pl.Series) -> np.ndarray:
    """Physical codes of a Categorical column as int64; missing values get a code no string has."""
    return column.to_physical().fill_null(_CODE_STRIDE - 1).to_numpy().astype(np.int64)


def _entry_codes(model: ModelDatabase, identifiers: pl.Categorical) -> np.ndarray:
    """Per model entry, gene code x stride + SNP key code in the string pool of `identifiers`."""
    gene = _codes(pl.Series(model.extra["gene"].to_numpy(dtype=object), dtype=pl.Utf8).cast(identifiers))
    key = _codes(pl.Series(model.entry_key, dtype=pl.Utf8).cast(identifiers))
    return gene[model.entry_gene] * _CODE_STRIDE + key


def _pair_code(gene: np.ndarray, snp: pl.Series) -> np.ndarray:
    """Per covariance row, gene code x stride + SNP code (comparable with `_entry_codes`)."""
    return gene * _CODE_STRIDE + _codes(snp)


def _entry_index(sorted_code: np.ndarray, order: np.ndarray, row_code: np.ndarray) -> np.ndarray:
    """The model entry of each row's (gene, SNP) code, -1 where the model has none (`order` sorts the entry
    codes into `sorted_code`)."""
    result = np.full(len(row_code), -1, dtype=np.int64)
    if len(sorted_code) == 0:
        return result
    position = np.minimum(np.searchsorted(sorted_code, row_code), len(sorted_code) - 1)
    found = sorted_code[position] == row_code
    result[found] = order[position[found]]
    return result


def _last_of_each_pair(pair: np.ndarray) -> np.ndarray | None:
    """Rows to keep so that a pair listed twice keeps its last value (as SPrediXcan.py does); None when every
    pair is listed once."""
    if len(pair) < 2 or bool((pair[1:] > pair[:-1]).all()):
        return None
    _, last = np.unique(pair[::-1], return_index=True)
    if len(last) == len(pair):
        return None
    return np.sort(len(pair) - 1 - last)


def _check_repeated_rows(path: Path, a: np.ndarray, b: np.ndarray, values: np.ndarray, model: ModelDatabase) -> None:
    """The same row twice (same pair, orientation and value) is an error, as in SPrediXcan.py."""
    key = a * len(model.entry_key) + b
    order = np.lexsort((values, key))
    same = (key[order][1:] == key[order][:-1]) & (values[order][1:] == values[order][:-1])
    if same.any():
        entry = order[int(np.argmax(same))]
        gene = model.extra["gene"].iloc[model.entry_gene[a[entry]]]
        raise EnpactError(f"{path}: row '{gene} {model.entry_key[a[entry]]} {model.entry_key[b[entry]]}' appears "
                          "twice; remove the repeated row")


# ---------------------------------------------------------------------------------------------------------
# GWAS


def _beta_sign(text: pl.Series) -> np.ndarray:
    """+1 / -1 from a sign column ('+', '-', '1', '-1'); anything else is NaN."""
    mapping = {"+": 1.0, "1": 1.0, "+1": 1.0, "-": -1.0, "-1": -1.0}
    return text.str.strip_chars().replace_strict(mapping, default=None, return_dtype=pl.Float64).fill_null(
        float("nan")).to_numpy()


def gwas_zscores(
    table: pl.DataFrame, columns: GwasColumns, path: str | Path, input_pvalue_fix: float = 1e-50
) -> tuple[np.ndarray, np.ndarray | None]:
    """z (rounded through float32 as SPrediXcan.py does) and beta (None without a beta/OR column) per row."""
    ids = table[columns.snp]
    numeric = {name: parse_float_column(table[name], path, name, ids) for name in
               (columns.zscore, columns.pvalue, columns.beta, columns.odds_ratio, columns.se) if name}
    beta = numeric.get(columns.beta) if columns.beta else None
    if columns.odds_ratio:
        odds = numeric[columns.odds_ratio]
        negative = odds < 0
        if negative.any():
            snp = ids[int(np.argmax(negative))]
            raise EnpactError(f"{path}: column '{columns.odds_ratio}' has a negative odds ratio for {snp}")
        with np.errstate(divide="ignore"):
            beta = np.log(odds)
    source = columns.z_source()
    if source == "zscore":
        z = _capped(numeric[columns.zscore], path)
    elif source == "pvalue":
        z = _z_from_pvalue(numeric[columns.pvalue], beta, table, columns, input_pvalue_fix, path)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = _capped(beta / numeric[columns.se], path)
    return z.astype(np.float32).astype(np.float64), beta


def _capped(z: np.ndarray, path: str | Path) -> np.ndarray:
    """Infinite z-scores set to the largest finite |z| of the rows read, with their sign: an infinite z is usually
    among the strongest signals, and dropping it (SPrediXcan.py's way) would change its genes' z silently; this is
    the rule p = 0 already follows (--input-pvalue-fix)."""
    infinite = np.isinf(z)
    if not infinite.any():
        return z
    finite = np.abs(z[np.isfinite(z)])
    cap = float(finite.max()) if finite.size else float(-ndtri(1e-50 / 2))
    log.warning("%s: %d GWAS z-scores of model SNPs are infinite; they are set to +/-%.4g, the largest finite |z| "
                "read (the rule for p = 0)", path, int(infinite.sum()), cap)
    return np.where(infinite, np.sign(z) * cap, z)


def _z_from_pvalue(
    pvalue: np.ndarray, beta: np.ndarray | None, table: pl.DataFrame, columns: GwasColumns, pvalue_fix: float,
    path: str | Path,
) -> np.ndarray:
    """|z| = -Φ⁻¹(p/2) with the sign of beta (or the sign column); p = 0 gets the z of min(smallest p, fix). A
    p-value outside [0, 1] is refused: its z would be small and of the wrong sign, silently."""
    outside = (pvalue < 0) | (pvalue > 1)   # NaN (missing) compares False: those rows are dropped later, counted
    if outside.any():
        first = int(np.argmax(outside))
        raise EnpactError(f"{path}: {int(outside.sum())} rows have a p-value outside [0, 1] in column "
                          f"'{columns.pvalue}' (e.g. {table[columns.snp][first]}: {pvalue[first]:g}); the column must "
                          "hold p-values, not -log10(p) or z-scores (use gwas_zscore_column for z-scores)")
    sign = np.sign(beta) if beta is not None else _beta_sign(table[columns.beta_sign])
    with np.errstate(invalid="ignore"):
        abs_z = -ndtri(pvalue / 2)
    infinite = np.isinf(abs_z)
    if infinite.any() and pvalue_fix:
        usable = pvalue[np.isfinite(abs_z) & (pvalue != 0)]
        smallest = min(pvalue_fix, usable.min()) if usable.size else pvalue_fix
        abs_z[infinite] = -ndtri(smallest / 2)
        log.warning("%d GWAS p-values are 0; using p = %g for them (--input-pvalue-fix)", int(infinite.sum()), smallest)
    return abs_z * sign


def check_gwas_readable(
    path: str | Path,
    columns: GwasColumns | Sequence[str] | None = None,
    separator: str | None = None,
    block_bytes: int = 1 << 24,
) -> int:
    """Check up front that a GWAS file can be read to its end, so that a truncated or corrupt download fails
    before the expensive steps rather than at the TWAS; returns the number of data lines.

    The header must hold `columns` (a GwasColumns: the columns `read_gwas` will read; or column names). The file
    is then decompressed (or read) to the end as a stream, in blocks of `block_bytes`: memory stays constant and
    nothing is parsed, so it costs about one decompression pass (~1-2 s per GB of text). Every problem is a
    one-line EnpactError naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise EnpactError(f"{path}: GWAS file not found")
    if path.is_dir():
        raise EnpactError(f"{path}: is a folder; give the GWAS summary statistics file")
    needed = columns.needed() if isinstance(columns, GwasColumns) else list(columns or [])
    if needed:
        present = header_columns(path, separator if separator is not None else sniff_separator(path))
        missing = [c for c in needed if c not in present]
        if missing:
            raise EnpactError(f"{path}: no column '{missing[0]}' in the header (columns: {', '.join(present[:12])}); "
                              "check the GWAS column options")
    newlines = 0
    last = b"\n"
    try:
        with (gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")) as handle:
            while block := handle.read(block_bytes):
                newlines += block.count(b"\n")
                last = block[-1:]
    except GZIP_READ_ERRORS as err:
        raise gzip_error(path, err) from err
    except OSError as err:
        raise EnpactError(f"{path}: cannot read the GWAS file ({err.strerror or err}); check the file") from err
    lines = newlines + (last != b"\n")
    return max(lines - 1, 0)


def read_gwas(
    path: str | Path,
    columns: GwasColumns,
    model_keys: np.ndarray,
    separator: str | None = None,
    keep_non_rsid: bool = False,
    input_pvalue_fix: float = 1e-50,
) -> pl.DataFrame:
    """GWAS rows whose SNP is a model key (and contains 'rs' unless keep_non_rsid), in file order, with
    upper-cased alleles, z and beta (NaN when there is no beta/OR column)."""
    keys = model_keys if keep_non_rsid else np.asarray([k for k in model_keys if "rs" in k], dtype=object)
    table = read_text_columns(path, columns.needed(), separator, keep=(columns.snp, keys))
    z, beta = gwas_zscores(table, columns, path, input_pvalue_fix)
    return pl.DataFrame({
        "snp": table[columns.snp],
        "effect_allele": table[columns.effect_allele].str.to_uppercase(),
        "non_effect_allele": table[columns.non_effect_allele].str.to_uppercase(),
        "zscore": z,
        "beta": beta if beta is not None else np.full(len(z), np.nan),
        "row": np.arange(len(z), dtype=np.int64),
    })


def align_gwas(gwas: pl.DataFrame, model: ModelDatabase, has_beta: bool) -> GwasData:
    """Match GWAS rows to model entries by allele set, flip z and beta where the effect alleles differ, drop
    non-finite z; the last usable row of a SNP wins."""
    entries = pl.DataFrame(
        {"snp": model.entry_key, "ref": model.entry_ref, "eff": model.entry_eff,
         "entry": np.arange(len(model.entry_key), dtype=np.int64)},
        schema={"snp": pl.Utf8, "ref": pl.Utf8, "eff": pl.Utf8, "entry": pl.Int64},
    )
    merged = gwas.join(entries, on="snp", how="inner")
    same = (pl.col("effect_allele") == pl.col("eff")) & (pl.col("non_effect_allele") == pl.col("ref"))
    swapped = (pl.col("effect_allele") == pl.col("ref")) & (pl.col("non_effect_allele") == pl.col("eff"))
    matched = merged.filter((same | swapped).fill_null(False))
    flip = pl.when(pl.col("effect_allele") != pl.col("eff")).then(-1.0).otherwise(1.0)
    matched = matched.with_columns(zscore=pl.col("zscore") * flip, beta=pl.col("beta") * flip)
    usable = matched.filter(pl.col("zscore").is_finite()).sort("row").unique("entry", keep="last")
    missing = matched.filter(~pl.col("zscore").is_finite())["snp"]
    if missing.len():
        log.warning("GWAS: %d rows of model SNPs have no usable z-score (missing, not a number, or p = 0 with "
                    "--input-pvalue-fix 0; e.g. %s) and are left out of their genes' tests", missing.len(), missing[0])
    n_entries = len(model.entry_key)
    present = np.zeros(n_entries, dtype=bool)
    z = np.full(n_entries, np.nan)
    beta = np.full(n_entries, np.nan)
    index = usable["entry"].to_numpy()
    present[index] = True
    z[index] = usable["zscore"].to_numpy()
    beta[index] = usable["beta"].to_numpy()
    log.info("GWAS: %d rows for model SNPs, %d allele-matched (%d flipped), %d model entries with a finite z",
             gwas.height, matched.height, int((matched["effect_allele"] != matched["eff"]).sum()), int(present.sum()))
    return GwasData(present=present, zscore=z, beta=beta, has_beta=has_beta)


# ---------------------------------------------------------------------------------------------------------
# association


def _check_complete_pairs(model: ModelDatabase, cov: CovarianceIndex, used: np.ndarray, counts: np.ndarray,
                          n_used: np.ndarray, source: str) -> None:
    """Every pair of used SNPs of a gene needs a covariance value (SPrediXcan.py fails there too)."""
    expected = n_used * (n_used + 1) // 2
    wrong = np.flatnonzero(counts != expected)
    if not len(wrong):
        return
    gene = wrong[0]
    members = np.flatnonzero(used & (model.entry_gene == gene))
    of_gene = model.entry_gene[cov.pair_a] == gene
    listed = set(zip(cov.pair_a[of_gene].tolist(), cov.pair_b[of_gene].tolist()))
    missing = next((a, b) for i, a in enumerate(members.tolist()) for b in members[i:].tolist() if (a, b) not in listed)
    name = model.extra["gene"].iloc[gene]
    raise EnpactError(f"{source}: gene {name} has no covariance for SNP pair {model.entry_key[missing[0]]},"
                      f"{model.entry_key[missing[1]]}; the covariance file must list every pair of the gene's SNPs")


def associate(
    model: ModelDatabase, cov: CovarianceIndex, gwas: GwasData, covariance_source: str = "covariance"
) -> pd.DataFrame:
    """S-PrediXcan results for every gene with at least one model SNP in the harmonised GWAS, in extra order."""
    n_genes = model.n_genes
    gene = model.entry_gene
    used = gwas.present & cov.in_cov
    n_used = np.bincount(gene, weights=used, minlength=n_genes).astype(np.int64)
    pair_used = used[cov.pair_a] & used[cov.pair_b]
    a, b, value = cov.pair_a[pair_used], cov.pair_b[pair_used], cov.value[pair_used]
    counts = np.bincount(gene[a], minlength=n_genes)
    _check_complete_pairs(model, cov, used, counts, n_used, covariance_source)
    w = model.entry_weight
    off_diagonal = np.where(a == b, 1.0, 2.0)
    var_g = np.bincount(gene[a], weights=w[a] * w[b] * value * off_diagonal, minlength=n_genes)
    variance = np.zeros(len(w))
    diagonal = a == b
    variance[a[diagonal]] = value[diagonal]
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(variance)
    # unused entries may hold NaN (no GWAS value), so they are masked out rather than multiplied by zero
    numerator = np.bincount(gene, weights=np.where(used, w * sigma * gwas.zscore, 0.0), minlength=n_genes)
    beta_numerator = np.bincount(gene, weights=np.where(used, w * sigma**2 * gwas.beta, 0.0), minlength=n_genes)
    tested = np.bincount(gene, weights=gwas.present, minlength=n_genes) > 0
    computable = (n_used > 0) & (var_g > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = np.where(computable, numerator / np.sqrt(var_g), np.nan)
        effect = np.where(computable & gwas.has_beta, beta_numerator / var_g, np.nan)
    var_g = np.where(n_used > 0, var_g, np.nan)
    extra = model.extra
    results = pd.DataFrame({
        "gene": extra["gene"].to_numpy(),
        "gene_name": extra["gene_name"].to_numpy(),
        "zscore": zscore,
        "effect_size": effect,
        "pvalue": two_sided_pvalue(zscore),
        "var_g": var_g,
        "pred_perf_r2": extra["pred_perf_r2"].to_numpy(),
        "pred_perf_pval": extra["pred_perf_pval"].to_numpy(),
        "pred_perf_qval": extra["pred_perf_qval"].to_numpy(),
        "n_snps_used": n_used,
        "n_snps_in_cov": pd.array(cov.n_snps_in_cov, dtype="Float64").astype("Int64"),
        "n_snps_in_model": extra["n_snps_in_model"].array,
    })
    return results[tested].reset_index(drop=True)


def two_sided_pvalue(zscore: np.ndarray) -> np.ndarray:
    """2·Φ(-|z|), NaN where z is not finite."""
    z = np.asarray(zscore, dtype=np.float64)
    finite = np.isfinite(z)
    p = np.full(z.shape, np.nan)
    p[finite] = 2 * ndtr(-np.abs(z[finite]))
    return p


def calibrate(results: pd.DataFrame, phi: pd.DataFrame, gwas_n: float, gwas_h2: float) -> pd.DataFrame:
    """Divide z by sqrt(1 + phi·N·h2) (phi < 0 taken as 0), keeping only genes with a phi, as SPrediXcan.py."""
    merged = results.merge(phi, on="gene", how="inner")
    if len(merged) < len(results):
        log.warning("calibration: %d genes without phi in the model database are left out", len(results) - len(merged))
    merged["uncalibrated_pvalue"] = merged["pvalue"]
    merged["uncalibrated_zscore"] = merged["zscore"]
    merged["phi"] = merged["phi"].clip(lower=0)
    merged["zscore"] = merged["zscore"] / np.sqrt(1 + merged["phi"] * gwas_n * gwas_h2)
    merged["pvalue"] = two_sided_pvalue(merged["zscore"].to_numpy())
    return merged.loc[:, list(RESULT_COLUMNS) + list(CALIBRATION_COLUMNS)]


def sort_results(results: pd.DataFrame) -> pd.DataFrame:
    """Sort by p-value ascending, NA last, ties in extra (gene id) order."""
    return results.sort_values("pvalue", kind="stable", na_position="last").reset_index(drop=True)


def write_results(results: pd.DataFrame, path: str | Path) -> None:
    """Write the results CSV atomically, `NA` for missing values."""
    with atomic_path(path) as tmp:
        results.to_csv(tmp, index=False, na_rep="NA")


# ---------------------------------------------------------------------------------------------------------
# gene positions (Manhattan plots)


def read_gene_positions(path: str | Path) -> pd.DataFrame:
    """A gene, chrom, pos table (tab-separated)."""
    path = Path(path)
    if not path.is_file():
        raise EnpactError(f"{path}: gene positions file not found")
    table = pd.read_csv(path, sep="\t", dtype={"gene": str, "chrom": str})
    missing = [c for c in ("gene", "chrom", "pos") if c not in table.columns]
    if missing:
        raise EnpactError(f"{path}: gene positions lack column '{missing[0]}' (need gene, chrom, pos)")
    table["pos"] = pd.to_numeric(table["pos"], errors="coerce")
    return table.dropna(subset=["pos"]).loc[:, ["gene", "chrom", "pos"]]


# ---------------------------------------------------------------------------------------------------------
# driver


def output_paths(gwas_files: Sequence[str | Path], output: str | Path, suffix: str = ".csv") -> list[Path]:
    """One output per GWAS: `{gwas}` in `output` is replaced by the GWAS name; with several GWAS files (or an
    existing directory) and no `{gwas}`, `output` is a directory holding `{gwas}.csv`."""
    output = str(output)
    names = gwas_names(gwas_files, "--gwas-file")
    if "{gwas}" in output:
        return [Path(output.replace("{gwas}", n)) for n in names]
    if len(gwas_files) == 1 and not Path(output).is_dir():
        return [Path(output)]
    return [Path(output) / f"{n}{suffix}" for n in names]


def plot_prefixes(gwas_files: Sequence[str | Path], prefix: str) -> list[str]:
    """Plot prefix per GWAS: `{gwas}` replaced, else PREFIX for one GWAS and PREFIX.{gwas} for several."""
    names = [gwas_name(p) for p in gwas_files]
    if "{gwas}" in prefix:
        return [prefix.replace("{gwas}", n) for n in names]
    if len(gwas_files) == 1:
        return [prefix]
    return [f"{prefix}.{n}" for n in names]


def run_twas(
    model_db_path: str | Path,
    covariance_path: str | Path,
    gwas_files: Sequence[str | Path],
    columns: GwasColumns,
    output: str | Path,
    snp_key: str = "rsid",
    keep_non_rsid: bool = False,
    separator: str | None = None,
    input_pvalue_fix: float = 1e-50,
    gwas_h2: float | None = None,
    gwas_n: float | None = None,
    plots_prefix: str | None = None,
    gene_positions_path: str | Path | None = None,
    allow_empty: bool = False,
) -> list[Path]:
    """Run S-PrediXcan for each GWAS file against one model database and covariance; returns output paths. A GWAS
    that tests no gene is an error (the reason, with numbers) unless allow_empty."""
    if (gwas_h2 is None) != (gwas_n is None):
        raise EnpactError("calibration needs both --gwas-h2 and --gwas-n (or neither)")
    columns.z_source()
    outputs = output_paths(gwas_files, output)
    model = load_model_database(model_db_path, snp_key)
    log.info("%s: %d genes, %d SNP weights", model_db_path, model.n_genes, len(model.entry_key))
    phi = load_phi(model_db_path) if gwas_h2 is not None else None
    prefixes = plot_prefixes(gwas_files, plots_prefix) if plots_prefix else [None] * len(gwas_files)

    def read_one(gwas_path: str | Path) -> pl.DataFrame:
        return read_gwas(gwas_path, columns, model.all_keys, separator, keep_non_rsid, input_pvalue_fix)

    # the covariance loads in a second thread while the first GWAS is read: both are mostly GIL-free I/O and parsing
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="covariance") as pool:
        pending_cov = pool.submit(load_covariance, covariance_path, model)
        first_table = read_one(gwas_files[0]) if gwas_files else None
        cov = pending_cov.result()
    if len(cov.pair_a) == 0 and len(model.entry_key):
        log.warning("no covariance SNP matches a model SNP key (%s); the covariance and --model-db-snp-key must use "
                    "the same ids", snp_key)
    tables = []
    for index, gwas_path in enumerate(gwas_files):
        gwas_table = first_table if index == 0 else read_one(gwas_path)
        gwas = align_gwas(gwas_table, model, has_beta=bool(columns.beta or columns.odds_ratio))
        results = associate(model, cov, gwas, str(covariance_path))
        if phi is not None:
            results = calibrate(results, phi, float(gwas_n), float(gwas_h2))
        n_tested = int(results["zscore"].notna().sum())
        if n_tested == 0:
            reason = _no_genes_reason(model, gwas, gwas_path, snp_key, keep_non_rsid)
            if not allow_empty:
                raise EnpactError(f"{reason}; --allow-empty writes the empty table anyway")
            log.warning("%s", reason)
        tables.append(sort_results(results))
    # every table is computed before any is written: an error leaves no partial output
    for gwas_path, out_path, prefix, results in zip(gwas_files, outputs, prefixes, tables):
        write_results(results, out_path)
        log.info("%s: %d genes tested, %d with a z-score -> %s", gwas_path, len(results),
                 int(results["zscore"].notna().sum()), out_path)
        if prefix:
            _write_plots(results, prefix, model_db_path, snp_key, gene_positions_path, gwas_name(gwas_path))
    return outputs


def _no_genes_reason(model: ModelDatabase, gwas: GwasData, gwas_path: str | Path, snp_key: str,
                     keep_non_rsid: bool) -> str:
    """Why no gene got a z-score, with the numbers that show it."""
    n_keys = len(model.entry_key)
    if model.n_genes == 0:
        return f"{gwas_path}: 0 genes tested: the model database has no models"
    n_found = int(np.asarray(gwas.present).sum())
    if n_found == 0:
        example = str(model.entry_key[0]) if n_keys else "?"
        hint = "; ids without 'rs' are dropped unless --keep-non-rsid" if not keep_non_rsid else ""
        return (f"{gwas_path}: 0 genes tested: none of the model's {n_keys} SNPs (key {snp_key}, e.g. '{example}') "
                f"is in the GWAS; check --model-db-snp-key and --snp-column{hint}")
    return (f"{gwas_path}: 0 genes tested: {n_found} of the model's {n_keys} SNPs are in the GWAS but none has "
            "matching alleles and a finite z-score; check --effect-allele-column and --non-effect-allele-column")


def _write_plots(results: pd.DataFrame, prefix: str, model_db_path: str | Path, snp_key: str,
                 gene_positions_path: str | Path | None, title: str) -> None:
    """QQ and Manhattan plots of one result table."""
    from enpact.plots_twas import manhattan_plot, qq_plot

    qq_plot(results["pvalue"].to_numpy(dtype=np.float64), f"{prefix}.qq.png", title=title)
    positions = (read_gene_positions(gene_positions_path) if gene_positions_path
                 else gene_positions_from_model(model_db_path, snp_key))
    placed = results.merge(positions, on="gene", how="inner")
    if placed.empty:
        log.warning("no gene positions (varIDs chrom_pos_... or --gene-positions); Manhattan plot skipped")
        return
    labels = placed["gene_name"].fillna(placed["gene"]).astype(str).to_numpy()
    manhattan_plot(placed["chrom"].astype(str).to_numpy(), placed["pos"].to_numpy(dtype=np.float64),
                   placed["pvalue"].to_numpy(dtype=np.float64), f"{prefix}.manhattan.png", labels=labels,
                   n_tests=int(results["pvalue"].notna().sum()), title=title)


__all__ = [
    "GwasColumns", "CovarianceIndex", "GwasData", "RESULT_COLUMNS", "CALIBRATION_COLUMNS",
    "load_covariance", "read_gwas", "check_gwas_readable", "gwas_zscores", "align_gwas", "associate",
    "calibrate", "sort_results", "write_results", "run_twas", "output_paths", "read_gene_positions",
]
