"""PredictDB model databases: linearization chunks, SQLite databases and SNP covariance files, written and read.

A linearization chunk is one HDF5 file (`enpact linearize`, internal to the pipeline): the per-locus summary, the
non-zero SNP weights and, per gene, the upper triangle (with diagonal) of the weighted SNPs' dosage covariance as
row numbers into the weights. It is checked when written and read back exactly (binary, no text round trip).
`build_database` merges chunks into the PredictDB SQLite database and covariance file that MetaXcan's
SPrediXcan.py and `enpact twas` read; the functions after it read such databases (`enpact.panel_covariance`
writes the same covariance file for the model SNPs of any databases from any reference panel).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import polars as pl

from enpact import __version__
from enpact.errors import EnpactError
from enpact.genome import natural_chromosome_key
from enpact.io import (
    MISSING_TOKENS,
    atomic_path,
    atomic_paths,
    collect_or_explain,
    header_columns,
    parse_float_column,
    read_text_columns,
    sniff_separator,
    write_gzip_table,
)

from enpact.store import open_hdf5, read_strings, write_array, write_strings

log = logging.getLogger(__name__)

CHUNK_KIND = "linearized"
CHUNK_FORMAT_VERSION = 1

# nested cross-validation statistics (lin_nested_cv); NaN when linearization did not run it
NESTED_SUMMARY_COLUMNS = ("nested_cv_R2_avg", "nested_cv_R2_sd", "nested_cv_rho_avg", "nested_cv_rho_se",
                          "nested_cv_rho_zscore", "nested_cv_zscore_pval", "nested_cv_fisher_pval",
                          "nested_cv_converged")
SUMMARY_COLUMNS = (
    "gene", "genename", "gene_type", "n_samples", "n_snps_in_window", "n_snps_passing_filters", "n_snps_in_model",
    "n_snps_too_missing", "n_missing_calls", "alpha", "lambda_min",
    "cv_mse", "cv_R2_avg", "cv_R2_sd", "rho_avg", "rho_se", "rho_zscore", "rho_avg_squared", "zscore_pval",
    "cv_fisher_pval", "in_sample_R2", *NESTED_SUMMARY_COLUMNS, "status", "reason",
)
SUMMARY_TEXT_COLUMNS = ("gene", "genename", "gene_type", "status", "reason")
WEIGHTS_COLUMNS = ("gene", "rsid", "varID", "ref_allele", "eff_allele", "weight")
COVARIANCE_COLUMNS = ("GENE", "RSID1", "RSID2", "VALUE")
NO_RSID = "."
SNP_KEYS = ("varID", "rsid")

# extra table: (column name in the db, SQL type, summary column it comes from)
EXTRA_SCHEMA = (
    ("gene", "TEXT", "gene"),
    ("genename", "TEXT", "genename"),
    ("gene_type", "TEXT", "gene_type"),
    ("alpha", "DOUBLE", "alpha"),
    ("n_snps_in_window", "INTEGER", "n_snps_in_window"),
    ("n.snps.in.model", "INTEGER", "n_snps_in_model"),
    ("lambda_min", "DOUBLE", "lambda_min"),
    ("cv_R2_avg", "DOUBLE", "cv_R2_avg"),
    ("cv_R2_sd", "DOUBLE", "cv_R2_sd"),
    ("in_sample_R2", "DOUBLE", "in_sample_R2"),
    ("rho_avg", "DOUBLE", "rho_avg"),
    ("rho_se", "DOUBLE", "rho_se"),
    ("rho_zscore", "DOUBLE", "rho_zscore"),
    ("zscore_pval", "DOUBLE", "zscore_pval"),
    ("cv_fisher_pval", "DOUBLE", "cv_fisher_pval"),
    ("pred.perf.R2", "DOUBLE", None),
    ("pred.perf.pval", "DOUBLE", None),
    ("pred.perf.qval", "DOUBLE", None),
)
# extra columns of a database built from a nested cross-validation, before the pred.perf columns
NESTED_EXTRA_SCHEMA = tuple((name, "INTEGER" if name == "nested_cv_converged" else "DOUBLE", name)
                            for name in NESTED_SUMMARY_COLUMNS)
WEIGHTS_SCHEMA = (
    ("gene", "TEXT"), ("rsid", "TEXT"), ("varID", "TEXT"),
    ("ref_allele", "CHARACTER"), ("eff_allele", "CHARACTER"), ("weight", "DOUBLE"),
)
INDEXES = (
    ("weights_gene", "weights", ("gene",)),
    ("weights_rsid", "weights", ("rsid",)),
    ("weights_varID", "weights", ("varID",)),
    ("weights_rsid_gene", "weights", ("rsid", "gene")),
    ("extra_gene", "extra", ("gene",)),
)


@dataclass(frozen=True)
class LinearizedChunk:
    """The three tables of one or more linearization chunks."""

    summary: pd.DataFrame
    weights: pd.DataFrame
    covariance: pl.DataFrame  # first, second: row numbers in `weights`; VALUE
    source: str


@dataclass(frozen=True)
class DatabaseOutputs:
    """Paths written by `build_database` (unfiltered ones are None unless asked for)."""

    db: Path
    covariance: Path
    summary: Path
    unfiltered_db: Path | None
    unfiltered_covariance: Path | None
    n_genes: int
    n_genes_unfiltered: int


# ---------------------------------------------------------------------------------------------------------
# small shared helpers


def quote_identifier(name: str) -> str:
    """An SQL identifier in double quotes (column names such as n.snps.in.model)."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------------------
# chunk files


def write_linearized_chunk(
    path: str | Path,
    summary_df: pd.DataFrame,
    weights_df: pd.DataFrame,
    covariances: Mapping[str, np.ndarray],
) -> Path:
    """Check and write a linearization chunk (one HDF5 file) atomically.

    `covariances[gene]` is the (k, k) dosage covariance over that gene's rows of `weights_df`, in that order.
    Zero weights are dropped (with their covariance rows and columns), and `n_snps_in_model` of `ok` loci is
    set to the number of weights written, so the three tables always agree.
    """
    missing = [c for c in SUMMARY_COLUMNS if c not in summary_df.columns]
    missing += [c for c in WEIGHTS_COLUMNS if c not in weights_df.columns]
    if missing:
        raise ValueError(f"write_linearized_chunk: missing column {missing[0]}")
    summary = summary_df.loc[:, list(SUMMARY_COLUMNS)].copy()
    weights = weights_df.loc[:, list(WEIGHTS_COLUMNS)].reset_index(drop=True)
    weights["rsid"] = weights["rsid"].fillna(NO_RSID).astype(str).replace("", NO_RSID)
    weights["weight"] = weights["weight"].astype(np.float64)
    unknown = set(weights["gene"]) - set(summary.loc[summary["status"] == "ok", "gene"])
    if unknown:
        raise ValueError(f"write_linearized_chunk: weights for gene {sorted(unknown)[0]} that is not an ok locus")
    if summary["gene"].duplicated().any():
        raise ValueError(f"write_linearized_chunk: gene {summary['gene'][summary['gene'].duplicated()].iloc[0]} twice")
    for values, what in ((summary["gene"], "gene id"), (weights["varID"], "varID"), (weights["rsid"], "rsid")):
        _check_identifiers(values.astype(str), Path(path), what)
    if not np.isfinite(weights["weight"].to_numpy()).all():
        raise ValueError("write_linearized_chunk: a weight is not a finite number")
    keep = np.ones(len(weights), dtype=bool)
    first_rows, second_rows, values = [], [], []
    nonzero_all = weights["weight"].to_numpy() != 0
    for gene, rows in weights.groupby("gene", sort=False).indices.items():
        matrix = np.asarray(covariances[gene], dtype=np.float64) if gene in covariances else np.empty(0)
        if matrix.shape != (len(rows), len(rows)):
            raise ValueError(f"write_linearized_chunk: covariance of {gene} must be {len(rows)}x{len(rows)}")
        nonzero = nonzero_all[rows]
        keep[rows[~nonzero]] = False
        i, j = np.triu_indices(int(nonzero.sum()))
        kept_rows = rows[nonzero]
        first_rows.append(kept_rows[i])
        second_rows.append(kept_rows[j])
        values.append(matrix[np.ix_(nonzero, nonzero)][i, j])
    first = np.concatenate(first_rows) if first_rows else np.zeros(0, dtype=np.int64)
    second = np.concatenate(second_rows) if second_rows else np.zeros(0, dtype=np.int64)
    value = np.concatenate(values) if values else np.zeros(0)
    if not np.isfinite(value).all():
        raise ValueError("write_linearized_chunk: a covariance is not a finite number")
    new_row = np.cumsum(keep) - 1   # rows of the kept weights
    weights = weights[keep].reset_index(drop=True)
    counts = weights.groupby("gene", sort=False).size()
    ok = summary["status"] == "ok"
    summary.loc[ok, "n_snps_in_model"] = summary.loc[ok, "gene"].map(counts).fillna(0).astype(int).to_numpy()
    with atomic_path(path, ".h5") as tmp, h5py.File(tmp, "w", track_order=False) as handle:
        handle.attrs["kind"] = CHUNK_KIND
        handle.attrs["format_version"] = CHUNK_FORMAT_VERSION
        handle.attrs["enpact_version"] = __version__
        _write_table(handle.create_group("summary"), summary, SUMMARY_TEXT_COLUMNS)
        _write_table(handle.create_group("weights"), weights, ("gene", "rsid", "varID", "ref_allele", "eff_allele"))
        group = handle.create_group("covariance")
        write_array(group, "first", new_row[first].astype(np.int64))
        write_array(group, "second", new_row[second].astype(np.int64))
        write_array(group, "value", value.astype(np.float64))
    return Path(path)


def _write_table(group: h5py.Group, table: pd.DataFrame, text_columns: Sequence[str]) -> None:
    """One dataset per column, in order: text as UTF-8 strings (missing as "NA"), the others as numbers."""
    group.attrs["columns"] = json.dumps(list(table.columns))
    for column in table.columns:
        if column in text_columns:
            write_strings(group, column, table[column].fillna("NA").astype(str).tolist())
        else:
            write_array(group, column, pd.to_numeric(table[column]).to_numpy())


def _read_table(group: h5py.Group, text_columns: Sequence[str]) -> pd.DataFrame:
    """Inverse of `_write_table`."""
    columns = json.loads(group.attrs["columns"])
    return pd.DataFrame({c: read_strings(group, c) if c in text_columns else group[c][()] for c in columns},
                        columns=columns)


def _check_identifiers(values: pd.Series, path: Path, what: str) -> None:
    """Identifiers must be non-empty and free of whitespace (the covariance file is whitespace-separated)."""
    bad = values.isna() | (values == "") | values.str.contains(r"\s", regex=True, na=True)
    if bad.any():
        raise EnpactError(f"{path}: {what} '{values[bad.idxmax()]}' is empty or contains whitespace")


def read_covariance_coded(path: str | Path, identifiers: pl.Categorical | None = None) -> pl.DataFrame:
    """Read a covariance file compactly: GENE, RSID1, RSID2 as Categorical (of `identifiers`, so that callers
    can compare physical codes), VALUE as Float64 (NA as NaN).

    Well-formed files go through the fast reader; anything it rejects is re-read as text so that the error,
    if any, names the offending value.
    """
    path = Path(path)
    if not path.exists():
        raise EnpactError(f"{path}: file not found")
    separator = sniff_separator(path)
    present = header_columns(path, separator)
    missing = [c for c in COVARIANCE_COLUMNS if c not in present]
    if missing:
        raise EnpactError(f"{path}: no column '{missing[0]}' in the header; "
                          "a covariance file has GENE RSID1 RSID2 VALUE")
    identifiers = identifiers or pl.Categorical(pl.Categories.random())
    ids = {c: identifiers for c in COVARIANCE_COLUMNS[:3]}
    if separator is not None:
        try:
            table = pl.scan_csv(path, separator=separator, infer_schema=False, quote_char=None,
                                schema_overrides={**ids, "VALUE": pl.Float64}, null_values=MISSING_TOKENS,
                                ).select(list(COVARIANCE_COLUMNS))
            table = collect_or_explain(table, path)
            return table.with_columns(pl.col("VALUE").fill_null(float("nan")))
        except pl.exceptions.PolarsError as err:
            log.info("%s: fast reader failed (%s); reading as text", path, str(err).splitlines()[0][:80])
    text = read_text_columns(path, COVARIANCE_COLUMNS)
    values = parse_float_column(text["VALUE"], path, "VALUE")
    return text.with_columns([pl.col(c).cast(identifiers) for c in ids] + [pl.Series("VALUE", values)])


def read_linearized_chunk(path: str | Path) -> LinearizedChunk:
    """Read a linearization chunk written by `write_linearized_chunk` (checked then)."""
    if not Path(path).is_file():
        raise EnpactError(f"{path}: file not found; finish `enpact linearize` for this chunk or leave it out")
    with open_hdf5(path, CHUNK_KIND) as handle:
        version = int(handle.attrs.get("format_version", 0))
        if version != CHUNK_FORMAT_VERSION:
            raise EnpactError(f"{path}: linearization chunk format {version}, this enpact reads "
                              f"{CHUNK_FORMAT_VERSION}; re-run `enpact linearize` with this version")
        summary = _read_table(handle["summary"], SUMMARY_TEXT_COLUMNS)
        weights = _read_table(handle["weights"], ("gene", "rsid", "varID", "ref_allele", "eff_allele"))
        group = handle["covariance"]
        covariance = pl.DataFrame({"first": group["first"][()], "second": group["second"][()],
                                   "VALUE": group["value"][()]},
                                  schema={"first": pl.Int64, "second": pl.Int64, "VALUE": pl.Float64})
    return LinearizedChunk(summary=summary, weights=weights, covariance=covariance, source=str(path))


def resolve_chunk_files(inputs: Iterable[str | Path]) -> list[Path]:
    """Chunk files from files or directories (every `*.h5` inside, by name)."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.h5"))
            if not found:
                raise EnpactError(f"{path}: directory has no *.h5 linearization chunks")
            files += found
        elif not path.is_file():
            raise EnpactError(f"{path}: file not found; finish `enpact linearize` for this chunk or leave it out")
        else:
            files.append(path)
    if not files:
        raise EnpactError("no linearization chunks given; pass --linearized CHUNK.h5 ... or a directory")
    return files


def merge_chunks(chunks: Sequence[LinearizedChunk]) -> LinearizedChunk:
    """Merge chunks into one: genes sorted by id, each gene's SNPs and covariance rows in their given order."""
    owner: dict[str, str] = {}
    for chunk in chunks:
        for gene in chunk.summary["gene"]:
            if gene in owner:
                raise EnpactError(f"{chunk.source}: gene {gene} is also in {owner[gene]}; give each chunk once")
            owner[gene] = chunk.source
    summary = pd.concat([c.summary for c in chunks], ignore_index=True)
    summary = summary.sort_values("gene", kind="stable").reset_index(drop=True)
    rank = pd.Series(np.arange(len(summary)), index=summary["gene"].to_numpy())
    offsets = np.cumsum([0] + [len(c.weights) for c in chunks])
    weights = pd.concat([c.weights for c in chunks], ignore_index=True)
    weight_rank = rank.loc[weights["gene"]].to_numpy() if len(weights) else np.zeros(0, dtype=np.int64)
    order = np.argsort(weight_rank, kind="stable")
    new_row = np.empty(len(order), dtype=np.int64)
    new_row[order] = np.arange(len(order))
    weights = weights.iloc[order].reset_index(drop=True)
    covariance = pl.concat([c.covariance.with_columns(pl.col("first") + int(offset), pl.col("second") + int(offset))
                            for c, offset in zip(chunks, offsets)])
    first = new_row[covariance["first"].to_numpy()]
    cov_order = np.argsort(first, kind="stable")  # genes in rank order, each gene's rows as written
    covariance = pl.DataFrame({"first": first[cov_order], "second": new_row[covariance["second"].to_numpy()][cov_order],
                               "VALUE": covariance["VALUE"].gather(cov_order)})
    return LinearizedChunk(summary=summary, weights=weights, covariance=covariance, source="merged")


# ---------------------------------------------------------------------------------------------------------
# database


def uses_nested_cv(summary: pd.DataFrame) -> bool:
    """Whether linearization ran the nested cross-validation (lin_nested_cv): some locus has its statistics."""
    return "nested_cv_rho_avg" in summary and bool(pd.to_numeric(summary["nested_cv_rho_avg"]).notna().any())


def performance_columns(summary: pd.DataFrame) -> tuple[str, str]:
    """The (rho, p) columns that filter models and become pred.perf.R2 (rho squared) and pred.perf.pval: the nested
    cross-validation's when linearization ran it (as PredictDB's GTEx v8 models), else rho_avg and zscore_pval."""
    return ("nested_cv_rho_avg", "nested_cv_zscore_pval") if uses_nested_cv(summary) else ("rho_avg", "zscore_pval")


def select_models(summary: pd.DataFrame, n_snps: pd.Series, pval_threshold: float, rho_threshold: float) -> np.ndarray:
    """Loci that pass the PredictDB filter: ok, p < pval_threshold, rho > rho_threshold (`performance_columns`) and
    at least one SNP."""
    ok = (summary["status"] == "ok").to_numpy()
    rho_column, pval_column = performance_columns(summary)
    with np.errstate(invalid="ignore"):
        pval = summary[pval_column].to_numpy(dtype=np.float64) < pval_threshold
        rho = summary[rho_column].to_numpy(dtype=np.float64) > rho_threshold
    return ok & pval & rho & (n_snps.to_numpy() >= 1)


def key_weights(weights: pd.DataFrame, snp_key: str) -> pd.DataFrame:
    """Weights with `key` (varID or rsid) and `usable` columns; with rsid keys, SNPs lacking an rsid or sharing
    one with another SNP of the gene are not usable. Without an rsid, `rsid` falls back to the varID."""
    if snp_key not in SNP_KEYS:
        raise EnpactError(f"--snp-key must be varID or rsid, not '{snp_key}'")
    no_rsid = (weights["rsid"] == NO_RSID).to_numpy()
    if snp_key == "varID":
        return weights.assign(rsid=weights["rsid"].where(~no_rsid, weights["varID"]), key=weights["varID"], usable=True)
    shared = weights.duplicated(["gene", "rsid"], keep=False).to_numpy() & ~no_rsid
    if no_rsid.any():
        log.warning("dropped %d SNP weights without an rsid (--snp-key rsid)", int(no_rsid.sum()))
    if shared.any():
        log.warning("dropped %d SNP weights whose rsid is shared by another SNP of the same gene", int(shared.sum()))
    return weights.assign(key=weights["rsid"], usable=~no_rsid & ~shared)


def extra_schema(nested: bool) -> tuple[tuple[str, str, str | None], ...]:
    """The `extra` table's columns: with the nested cross-validation's before the pred.perf ones when it ran."""
    return EXTRA_SCHEMA[:-3] + NESTED_EXTRA_SCHEMA + EXTRA_SCHEMA[-3:] if nested else EXTRA_SCHEMA


def _extra_table(summary: pd.DataFrame, n_snps: pd.Series, nested: bool) -> pd.DataFrame:
    """The PredictDB `extra` table from summary rows, with the pred.perf columns (`performance_columns`)."""
    extra = pd.DataFrame(index=summary.index)
    for column, _, source in extra_schema(nested):
        if source is not None:
            extra[column] = summary[source]
    extra["n.snps.in.model"] = n_snps.loc[summary.index]
    rho_column, pval_column = ("nested_cv_rho_avg", "nested_cv_zscore_pval") if nested else ("rho_avg", "zscore_pval")
    extra["pred.perf.R2"] = summary[rho_column].astype(np.float64) ** 2
    extra["pred.perf.pval"] = summary[pval_column].astype(np.float64)
    extra["pred.perf.qval"] = np.nan
    return extra.reset_index(drop=True)


def _sql_values(frame: pd.DataFrame, kinds: Sequence[str]) -> list[tuple]:
    """Rows as Python tuples with NaN/NA turned into NULL and integers as int."""
    columns = []
    for name, kind in zip(frame.columns, kinds):
        series = frame[name]
        if kind in ("INTEGER", "DOUBLE"):
            numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            missing = np.isnan(numbers)
            if kind == "INTEGER":
                values = np.where(missing, 0, numbers).astype(np.int64).astype(object)
            else:
                values = numbers.astype(object)
            values[missing] = None
        else:
            values = series.to_numpy(dtype=object, copy=True)
            values[pd.isna(values)] = None
        columns.append(values.tolist())
    return list(zip(*columns))


def write_predictdb(
    path: str | Path,
    extra: pd.DataFrame,
    weights: pd.DataFrame,
    n_samples: int | None,
    population: str | None,
    chromosomes: Sequence[str],
    cv_seed: int | None,
) -> None:
    """Write a PredictDB SQLite file (weights, extra, sample_info, construction and their indexes)."""
    path = Path(path)
    schema = extra_schema(all(name in extra for name in NESTED_SUMMARY_COLUMNS))
    if path.exists() and path.stat().st_size:
        path.unlink()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        columns = ", ".join(f"{quote_identifier(n)} {t}" for n, t in WEIGHTS_SCHEMA)
        connection.execute(f"CREATE TABLE weights ({columns})")
        columns = ", ".join(f"{quote_identifier(n)} {t}" for n, t, _ in schema)
        connection.execute(f"CREATE TABLE extra ({columns})")
        connection.execute("CREATE TABLE sample_info (n_samples INTEGER, population TEXT)")
        connection.execute("CREATE TABLE construction (chromosome TEXT, cv_seed INTEGER)")
        weight_rows = _sql_values(weights.loc[:, [n for n, _ in WEIGHTS_SCHEMA]], [t for _, t in WEIGHTS_SCHEMA])
        connection.executemany("INSERT INTO weights VALUES (?, ?, ?, ?, ?, ?)", weight_rows)
        extra_rows = _sql_values(extra.loc[:, [n for n, _, _ in schema]], [t for _, t, _ in schema])
        connection.executemany(f"INSERT INTO extra VALUES ({', '.join('?' * len(schema))})", extra_rows)
        connection.execute("INSERT INTO sample_info VALUES (?, ?)", (n_samples, population))
        connection.executemany("INSERT INTO construction VALUES (?, ?)", [(c, cv_seed) for c in chromosomes])
        for name, table, cols in INDEXES:
            connection.execute(f"CREATE INDEX {name} ON {table} ({', '.join(quote_identifier(c) for c in cols)})")
        connection.execute("COMMIT")
    finally:
        connection.close()


def write_covariance(path: str | Path, covariance: pl.DataFrame) -> None:
    """Write `GENE RSID1 RSID2 VALUE` rows space-separated into a reproducible gzip."""
    write_gzip_table(path, covariance.select(list(COVARIANCE_COLUMNS)), level=4)


def database_covariance(covariance: pl.DataFrame, weights: pd.DataFrame, in_db: np.ndarray) -> pl.DataFrame:
    """Covariance rows whose two SNPs are both in the database, keyed like it, in the merged order."""
    first, second = covariance["first"].to_numpy(), covariance["second"].to_numpy()
    rows = np.flatnonzero(in_db[first] & in_db[second])
    keys = weights["key"].to_numpy(dtype=object)
    return pl.DataFrame(
        {"GENE": weights["gene"].to_numpy(dtype=object)[first[rows]], "RSID1": keys[first[rows]],
         "RSID2": keys[second[rows]], "VALUE": covariance["VALUE"].gather(rows)},
        schema={"GENE": pl.Utf8, "RSID1": pl.Utf8, "RSID2": pl.Utf8, "VALUE": pl.Float64},
    )


def _chromosomes(var_ids: pd.Series) -> list[str]:
    """Distinct chromosomes of varIDs (`chrom_pos_ref_alt_build`), in natural order."""
    ids = pl.Series("varID", var_ids.to_numpy(dtype=object), dtype=pl.Utf8)
    chroms = ids.str.split_exact("_", 1).struct.field("field_0").unique().drop_nulls().to_list()
    return sorted(chroms, key=natural_chromosome_key)


def _n_samples(summary: pd.DataFrame) -> int | None:
    """The linearization sample size (largest over ok loci, with a warning if loci disagree)."""
    values = summary.loc[summary["status"] == "ok", "n_samples"].dropna().unique()
    if len(values) == 0:
        return None
    if len(values) > 1:
        log.warning("loci were fitted on different numbers of samples (%s); sample_info keeps the largest",
                    ", ".join(str(int(v)) for v in sorted(values)[:5]))
    return int(max(values))


def build_database(
    linearized: Iterable[str | Path],
    name: str,
    outdir: str | Path,
    snp_key: str = "varID",
    pval_threshold: float = 0.05,
    rho_threshold: float = 0.1,
    keep_unfiltered: bool = False,
    population: str | None = None,
    cv_seed: int | None = None,
    allow_empty: bool = False,
) -> DatabaseOutputs:
    """Merge linearization chunks into PredictDB database(s), covariance file(s) and a merged summary. No model
    passing the filters is an error (the reason, with numbers) unless allow_empty."""
    if not name or "/" in name or name.startswith("."):
        raise EnpactError(f"database name '{name}' must be a plain file name stem")
    outdir = Path(outdir)
    chunks = [read_linearized_chunk(path) for path in resolve_chunk_files(linearized)]
    merged = merge_chunks(chunks)
    summary = merged.summary
    weights = key_weights(merged.weights, snp_key)
    usable = weights["usable"].to_numpy()
    n_snps = weights[usable].groupby("gene").size().reindex(summary["gene"], fill_value=0)
    n_snps.index = summary.index
    kept = select_models(summary, n_snps, pval_threshold, rho_threshold)
    ok = (summary["status"] == "ok").to_numpy()
    nested = uses_nested_cv(summary)
    rho_column, pval_column = performance_columns(summary)
    log.info("%d loci, %d fitted, %d pass %s < %g and %s > %g", len(summary), int(ok.sum()),
             int(kept.sum()), pval_column, pval_threshold, rho_column, rho_threshold)
    if not kept.any():
        reason = _empty_database_reason(summary, n_snps, ok, pval_threshold, rho_threshold)
        if not allow_empty:
            raise EnpactError(f"{reason}; --allow-empty writes the empty database anyway")
        log.warning("%s", reason)
    targets = [outdir / f"{name}.db", outdir / f"{name}.txt.gz", outdir / f"{name}.summary.tsv"]
    if keep_unfiltered:
        targets += [outdir / f"{name}.unfiltered.db", outdir / f"{name}.unfiltered.txt.gz"]
    n_samples = _n_samples(summary)
    with atomic_paths(targets) as staged:
        databases = [(kept, staged[0], staged[1])]
        if keep_unfiltered:
            databases.append((ok, staged[3], staged[4]))
        for selection, db_path, cov_path in databases:
            loci = summary[selection]
            in_db = usable & weights["gene"].isin(set(loci["gene"])).to_numpy()
            db_weights = weights[in_db]
            extra = _extra_table(loci, n_snps, nested)
            chromosomes = _chromosomes(db_weights["varID"])
            write_predictdb(db_path, extra, db_weights, n_samples, population, chromosomes, cv_seed)
            write_covariance(cov_path, database_covariance(merged.covariance, weights, in_db))
        published = summary if nested else summary.drop(columns=list(NESTED_SUMMARY_COLUMNS), errors="ignore")
        published.assign(kept=kept).to_csv(staged[2], sep="\t", index=False, na_rep="NA")
    return DatabaseOutputs(
        db=targets[0], covariance=targets[1], summary=targets[2],
        unfiltered_db=targets[3] if keep_unfiltered else None,
        unfiltered_covariance=targets[4] if keep_unfiltered else None,
        n_genes=int(kept.sum()), n_genes_unfiltered=int(ok.sum()),
    )



def _smallest(values: pd.Series) -> str:
    """The smallest defined value, or 'none defined' when every value is missing."""
    defined = values.dropna()
    return f"{defined.min():.3g}" if len(defined) else "none defined"


def _empty_database_reason(summary: pd.DataFrame, n_snps: pd.Series, ok: np.ndarray, pval_threshold: float,
                           rho_threshold: float) -> str:
    """Why no locus passed the filters, with the numbers that show it."""
    fitted = summary[ok]
    if fitted.empty:
        reasons = summary.get("reason", summary["status"]).fillna(summary["status"]).value_counts().head(3)
        return (f"no locus could be linearized ({len(summary)} loci: "
                f"{', '.join(f'{k} {v}' for k, v in reasons.items())})")
    rho_column, pval_column = performance_columns(summary)
    pvals = pd.to_numeric(fitted[pval_column], errors="coerce")
    rhos = pd.to_numeric(fitted[rho_column], errors="coerce")
    n_samples = _n_samples(summary)
    return (f"no model passed the filters: of {len(fitted)} fitted loci, {int((pvals < pval_threshold).sum())} have "
            f"{pval_column} < {pval_threshold:g} (smallest {_smallest(pvals)}), {int((rhos > rho_threshold).sum())} "
            f"{rho_column} > {rho_threshold:g}, {int((n_snps[ok] > 0).sum())} at least one SNP; with {n_samples} "
            "individuals the cross-validated statistics are weak: add individuals, or relax the filters (raise "
            "--pval-threshold, lower --rho-threshold)")


# ---------------------------------------------------------------------------------------------------------
# reading a database (what S-PrediXcan reads; `enpact twas` and the report read it here)

VARID_POSITION = re.compile(r"^([^_]+)_(\d+)_")


@dataclass(frozen=True)
class ModelDatabase:
    """A PredictDB model: genes in `extra` order and one entry per (gene, SNP) weight, grouped by gene."""

    path: Path
    extra: pd.DataFrame  # gene, gene_name, n_snps_in_model, pred_perf_r2, pred_perf_pval, pred_perf_qval
    entry_gene: np.ndarray  # index into extra rows, non-decreasing
    entry_key: np.ndarray
    entry_weight: np.ndarray
    entry_ref: np.ndarray
    entry_eff: np.ndarray
    all_keys: np.ndarray  # every SNP key of the weights table (also of genes missing from extra)
    snp_key: str

    @property
    def n_genes(self) -> int:
        """Number of genes in `extra`."""
        return len(self.extra)

def _query(path: Path, connection: sqlite3.Connection, sql: str, table: str) -> list[tuple]:
    """Run a query, turning SQLite errors into one-line user errors."""
    try:
        return connection.execute(sql).fetchall()
    except sqlite3.DatabaseError as err:
        message = str(err)
        if message.startswith("no such column"):
            column = message.split(":", 1)[1].strip()
            raise EnpactError(f"{path}: table '{table}' has no column {column}; "
                              "is this a PredictDB model database?") from err
        raise EnpactError(f"{path}: cannot read table '{table}' ({message}); "
                          "is this a PredictDB model database?") from err


def _connect(path: str | Path) -> sqlite3.Connection:
    """Open an existing database read-only."""
    path = Path(path)
    if not path.is_file():
        raise EnpactError(f"{path}: model database not found")
    return sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)


def load_model_database(path: str | Path, snp_key: str = "rsid") -> ModelDatabase:
    """Read the weights and extra tables the way SPrediXcan.py does (SNP key column chosen by `snp_key`)."""
    path = Path(path)
    connection = _connect(path)
    try:
        extra_rows = _query(path, connection, 'SELECT gene, genename, "n.snps.in.model", "pred.perf.R2", '
                            '"pred.perf.pval", "pred.perf.qval" FROM extra ORDER BY gene', "extra")
        weight_rows = _query(path, connection, f"SELECT {quote_identifier(snp_key)}, gene, weight, ref_allele, "
                             "eff_allele FROM weights", "weights")
    finally:
        connection.close()
    extra = pd.DataFrame(extra_rows, columns=["gene", "gene_name", "n_snps_in_model", "pred_perf_r2",
                                              "pred_perf_pval", "pred_perf_qval"])
    extra = extra[extra["gene"].notna()].reset_index(drop=True)
    repeated = extra["gene"].duplicated()
    if repeated.any():
        raise EnpactError(f"{path}: gene {extra['gene'][repeated.idxmax()]} appears twice in table 'extra'")
    for column in ("pred_perf_r2", "pred_perf_pval", "pred_perf_qval"):
        extra[column] = pd.to_numeric(extra[column], errors="coerce").astype(np.float64)
    extra["n_snps_in_model"] = pd.to_numeric(extra["n_snps_in_model"], errors="coerce").round().astype("Int64")
    weights = pd.DataFrame(weight_rows, columns=["key", "gene", "weight", "ref", "eff"])
    weights = weights[weights["key"].notna() & weights["gene"].notna()]
    weights["key"] = weights["key"].astype(str)
    all_keys = pd.unique(weights["key"].to_numpy(dtype=object))
    gene_index = pd.Index(extra["gene"]).get_indexer(weights["gene"])
    weights = weights.assign(gene_index=gene_index)[gene_index >= 0]
    before = len(weights)
    weights = weights.drop_duplicates(["gene_index", "key"], keep="last")
    if len(weights) < before:
        log.warning("%s: %d repeated (gene, SNP) weights; the last one of each is used", path, before - len(weights))
    weights = weights.iloc[np.argsort(weights["gene_index"].to_numpy(), kind="stable")]
    return ModelDatabase(
        path=path,
        extra=extra,
        entry_gene=weights["gene_index"].to_numpy(dtype=np.int64),
        entry_key=weights["key"].to_numpy(dtype=object),
        entry_weight=pd.to_numeric(weights["weight"], errors="coerce").to_numpy(dtype=np.float64),
        entry_ref=weights["ref"].to_numpy(dtype=object),
        entry_eff=weights["eff"].to_numpy(dtype=object),
        all_keys=np.asarray(all_keys, dtype=object),
        snp_key=snp_key,
    )


def load_phi(path: str | Path) -> pd.DataFrame:
    """Per-gene calibration factor phi from `extra.phi` (genes with NULL phi left out)."""
    connection = _connect(path)
    try:
        rows = _query(Path(path), connection, "SELECT gene, phi FROM extra", "extra")
    finally:
        connection.close()
    phi = pd.DataFrame(rows, columns=["gene", "phi"])
    phi["phi"] = pd.to_numeric(phi["phi"], errors="coerce")
    return phi.dropna(subset=["phi"]).drop_duplicates("gene")


def gene_positions_from_model(path: str | Path, snp_key: str) -> pd.DataFrame:
    """Median position of each gene's model SNPs, parsed from varIDs (`chrom_pos_...`) of the weights table."""
    connection = _connect(path)
    try:
        try:
            rows = connection.execute("SELECT gene, varID FROM weights").fetchall()
        except sqlite3.DatabaseError:
            rows = connection.execute(f"SELECT gene, {quote_identifier(snp_key)} FROM weights").fetchall()
    finally:
        connection.close()
    table = pd.DataFrame(rows, columns=["gene", "id"]).dropna()
    parts = table["id"].astype(str).str.extract(VARID_POSITION)
    table = table.assign(chrom=parts[0], pos=pd.to_numeric(parts[1])).dropna(subset=["chrom", "pos"])
    return table.groupby(["gene"], sort=False).agg(chrom=("chrom", "first"), pos=("pos", "median")).reset_index()


def count_weights(path: str | Path) -> int:
    """Rows of the weights table."""
    connection = _connect(path)
    try:
        return int(_query(Path(path), connection, "SELECT COUNT(*) FROM weights", "weights")[0][0])
    finally:
        connection.close()
