"""What the run report reports: significance counts of TWAS and S-MultiXcan results, the model SNPs' overlap with a
GWAS, the database filters' counts and the recovery of a planted truth; `enpact.report` renders them as HTML."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from enpact.errors import EnpactError
from enpact.options import from_params
from enpact.steps.association import GwasOptions
from enpact.predictdb import performance_columns

log = logging.getLogger(__name__)

ALPHA = 0.05  # significance level of the report's counts (permutation p, FDR q)


# ---------------------------------------------------------------------------------------------------------
# linearization


def database_filter_counts(ok: pd.DataFrame, params: dict) -> dict[str, int]:
    """How many fitted loci pass each database filter (as enpact.predictdb.select_models applies them)."""
    rho_column, pval_column = performance_columns(ok)
    with np.errstate(invalid="ignore"):
        pval = ok[pval_column].to_numpy(np.float64) < float(params.get("db_pval_threshold", 0.05))
        rho = ok[rho_column].to_numpy(np.float64) > float(params.get("db_rho_threshold", 0.1))
    snps = pd.to_numeric(ok["n_snps_in_model"], errors="coerce").fillna(0).to_numpy() >= 1
    return {"fitted": int(len(ok)), "zscore_pval": int(pval.sum()), "rho_avg": int(rho.sum()),
            "at_least_one_snp": int(snps.sum()), "all": int((pval & rho & snps).sum())}


def missing_call_counts(summary: pd.DataFrame, params: dict) -> dict[str, Any] | None:
    """Missing genotype calls in the linearization summary, summed over loci (a variant in the windows of two loci
    counts twice): calls mean-imputed among the genotypes given to the elastic nets, and sites left out for a missing
    fraction above lin_max_missing; None for a summary without those columns (an earlier enpact)."""
    if "n_missing_calls" not in summary or "n_snps_too_missing" not in summary:
        return None

    def total(column: str) -> int:
        return int(pd.to_numeric(summary[column], errors="coerce").fillna(0).sum())

    given = pd.to_numeric(summary["n_samples"], errors="coerce") * pd.to_numeric(summary["n_snps_passing_filters"],
                                                                                errors="coerce")
    genotypes = int(given.fillna(0).sum())
    imputed = total("n_missing_calls")
    return {"imputed_calls": imputed, "genotypes": genotypes,
            "imputed_fraction": imputed / genotypes if genotypes else None,
            "sites_left_out": total("n_snps_too_missing"), "max_missing": float(params.get("lin_max_missing", 0.1))}


# ---------------------------------------------------------------------------------------------------------
# TWAS and S-MultiXcan


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg FDR q-values over the finite p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    n = int(finite.sum())
    if not n:
        return q
    values = p[finite]
    order = np.argsort(values, kind="stable")
    scaled = values[order] * n / np.arange(1, n + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    result = np.empty(n)
    result[order] = np.minimum(monotone, 1.0)
    q[finite] = result
    return q


def significance(pvalues: pd.Series, alpha: float = ALPHA) -> dict[str, Any]:
    """Genes tested (p-value not missing), Bonferroni threshold and hits, BH q-values and FDR hits of p-values."""
    n_tests = int(pvalues.notna().sum())
    threshold = alpha / max(n_tests, 1)
    qvalues = benjamini_hochberg(pvalues.to_numpy(np.float64))
    return {"genes": n_tests, "bonferroni_threshold": threshold, "bonferroni_hits": int((pvalues < threshold).sum()),
            "qvalues": qvalues, "fdr_hits": int((qvalues < alpha).sum())}


def _first_data_line(path: str | Path, column: str) -> str | None:
    """The `column` value of a table's first data row (for showing what its ids look like), best effort."""
    from enpact.io import open_text, sniff_separator

    try:
        separator = sniff_separator(path)
        with open_text(path) as handle:
            header = handle.readline().rstrip("\n").split(separator)
            first = handle.readline().rstrip("\n").split(separator)
        return first[header.index(column)] if column in header and len(first) == len(header) else None
    except (OSError, ValueError, EnpactError):
        return None


def gwas_overlap(db: Path, gwas: str | Path, params: dict) -> dict[str, Any]:
    """Model SNPs (distinct keys of the database's genes), how many the GWAS has, how many of those the TWAS
    step reads (ids with 'rs' unless gwas_keep_non_rsid), how many match the model's alleles, of which flipped
    (GWAS effect allele = model ref allele), how many of those have a usable (finite) z-score, and how many match
    neither way."""
    from enpact.twas import read_gwas
    from enpact.predictdb import load_model_database

    snp_key = str(params.get("snp_key", "rsid"))
    model = load_model_database(db, snp_key)
    entries = pl.DataFrame({"snp": model.entry_key, "ref": model.entry_ref, "eff": model.entry_eff},
                           schema={"snp": pl.Utf8, "ref": pl.Utf8, "eff": pl.Utf8}).unique("snp", keep="first",
                                                                                   maintain_order=True)
    counts: dict[str, Any] = {"genes_in_database": int(model.n_genes), "model_snps": int(entries.height),
                              "example_model_snp": entries["snp"][0] if entries.height else None}
    options = from_params(GwasOptions, params)
    snp = options.snp_column
    with _quiet(logging.getLogger("enpact.twas")):  # the TWAS step has warned about these rows already
        table = read_gwas(gwas, options.columns(), entries["snp"].to_numpy(), options.separator, True,
                          options.input_pvalue_fix)
    rows = (table.rename({"effect_allele": "a1", "non_effect_allele": "a2"}).drop("row").with_row_index("row")
            .join(entries, on="snp", how="inner"))
    found = rows["snp"].unique()
    keep_non_rsid = bool(params.get("gwas_keep_non_rsid"))
    read = found if keep_non_rsid else found.filter(found.str.contains("rs", literal=True))
    same = (pl.col("a1") == pl.col("eff")) & (pl.col("a2") == pl.col("ref"))
    swapped = (pl.col("a1") == pl.col("ref")) & (pl.col("a2") == pl.col("eff"))
    matched = (rows.filter(pl.col("snp").is_in(read.implode()) & (same | swapped).fill_null(False))
               .sort("row").unique("snp", keep="last"))  # the last matching row of a SNP is the one used
    flipped = int(matched.filter(swapped)["snp"].len())
    usable = (rows.filter(pl.col("snp").is_in(read.implode()) & (same | swapped).fill_null(False)
                          & pl.col("zscore").is_finite())["snp"].n_unique())
    counts.update({"snp_column": snp, "found_in_gwas": int(found.len()), "read_by_twas": int(read.len()),
                   "allele_matched": int(matched.height), "usable_z": int(usable), "flipped": flipped,
                   "allele_mismatch": int(read.len()) - int(matched.height),
                   "example_gwas_snp": _first_data_line(gwas, snp)})
    return counts


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Hold back a logger's warnings for the duration (what another step has already said)."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def twas_findings(db: Path, gwas: str | Path, csv: Path, params: dict) -> dict[str, Any]:
    """One GWAS's SNP overlap with the database, TWAS table with q-values (None when absent) and significance."""
    try:
        overlap = gwas_overlap(db, gwas, params) if db.exists() else {}
    except (EnpactError, OSError, sqlite3.DatabaseError, ValueError, pl.exceptions.PolarsError) as err:
        log.warning("report: SNP overlap of %s not computed (%s)", gwas, err)
        overlap = {"error": str(err)}
    results = pd.read_csv(csv, na_values=["NA"]) if csv.exists() else None
    tests = significance(results["pvalue"] if results is not None else pd.Series(dtype=np.float64))
    if results is not None:
        results["qvalue"] = tests["qvalues"]
    return {**tests, "overlap": overlap, "results": results}


def inflation_findings(results: pd.DataFrame, finemap_table: Path | None) -> dict[str, Any]:
    """λGC of all tested genes, and apart for the genes inside and outside the fine-mapping regions (the windows
    around the significant genes): where λGC comes from."""
    from enpact.plots_twas import genomic_inflation

    pvalues = results["pvalue"].to_numpy(np.float64)
    found: dict[str, Any] = {"lambda_gc": genomic_inflation(pvalues), "genes": int(np.isfinite(pvalues).sum())}
    if finemap_table is None or not finemap_table.exists():
        return found
    regions = pd.read_csv(finemap_table, sep="\t", dtype={"gene": str})
    inside = results["gene"].astype(str).isin(set(regions["gene"])).to_numpy()
    found.update({
        "regions": int(regions["region"].nunique()), "genes_in_regions": int((inside & np.isfinite(pvalues)).sum()),
        "lambda_in_regions": genomic_inflation(pvalues[inside]),
        "genes_outside": int((~inside & np.isfinite(pvalues)).sum()),
        "lambda_outside": genomic_inflation(pvalues[~inside]),
    })
    return found


def ld_reference(db: Path, params: dict) -> dict[str, Any]:
    """Where the SNP covariance (LD) comes from and from how many individuals: the reference panel covariance_vcf
    (its samples, when readable here) or the linearization individuals (the database's sample_info)."""
    import pysam

    if params.get("covariance_vcf"):
        n = None
        try:
            if params.get("covariance_samples"):
                n = sum(1 for line in Path(params["covariance_samples"]).read_text().splitlines() if line.strip())
            else:
                with pysam.VariantFile(str(params["covariance_vcf"])) as vcf:
                    n = len(vcf.header.samples)
        except (OSError, ValueError):
            pass
        return {"source": "covariance_vcf", "individuals": n}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT n_samples FROM sample_info").fetchone()
        n = int(row[0]) if row and row[0] is not None else None
    except sqlite3.Error:
        n = None
    return {"source": "vcf", "individuals": n}


def multixcan_findings(csv: Path) -> dict[str, Any]:
    """An S-MultiXcan result table, its significance and how many of its genes have a model in several contexts."""
    results = pd.read_csv(csv, sep="\t", na_values=["NA"], dtype={"gene": str})
    several = int((pd.to_numeric(results.get("n"), errors="coerce") > 1).sum()) if "n" in results else 0
    return {**significance(results["pvalue"]), "genes_in_several_contexts": several, "results": results}


# ---------------------------------------------------------------------------------------------------------
# planted truth (simulated data such as the demo: parameter truth_causal_genes)


def read_truth_table(path: str | Path) -> pd.Series:
    """The planted effect per gene id of a truth table (tab-separated, header `gene_id effect`; 0 = not causal)."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={"gene_id": str}, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise EnpactError(f"{path}: cannot read the truth table ({err})")
    missing = [c for c in ("gene_id", "effect") if c not in table.columns]
    if missing:
        raise EnpactError(f"{path}: the truth table needs the tab-separated columns gene_id and effect; it has "
                          f"{', '.join(map(str, table.columns)) or 'none'}")
    effect = pd.to_numeric(table["effect"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(effect.to_numpy(np.float64)))
    if len(bad):
        raise EnpactError(f"{path}: line {bad[0] + 2}: effect '{table['effect'].iloc[bad[0]]}' is not a number "
                          f"(0 for a gene that is not causal)")
    ids = table["gene_id"].astype(str)
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise EnpactError(f"{path}: gene '{duplicated.iloc[0]}' is listed twice")
    return pd.Series(effect.to_numpy(np.float64), index=pd.Index(ids, name="gene_id"), name="effect")


def _without_version(ids: pd.Index | pd.Series) -> pd.Index:
    """Gene ids without a trailing version (ENSG00000123.4 -> ENSG00000123)."""
    return pd.Index(pd.Series(ids, dtype=str).str.replace(r"\.\d+$", "", regex=True))


def _fraction(numerator: int, denominator: int) -> float | None:
    """numerator / denominator, None when the denominator is 0."""
    return numerator / denominator if denominator else None


def truth_recovery(results: pd.DataFrame, truth: pd.Series, alpha: float = ALPHA) -> dict[str, Any]:
    """Recall and precision of the causal genes (effect != 0) among TWAS hits (Bonferroni, BH FDR), and whether
    the TWAS z-score signs agree with the planted effects of the causal genes that are hits.

    `results`: the TWAS table (gene, zscore, pvalue; gene_name optional). Genes match on their id, or on the id
    without version when no id matches as it is. Tested genes the table does not list count as not causal (and
    are counted). Recall is over all causal genes of the table: a causal gene that was not tested is missed.
    """
    tested = results[results["pvalue"].notna()].reset_index(drop=True)
    genes = pd.Index(tested["gene"].astype(str))
    keys, table, matched_by = genes, truth, "gene id"
    stripped = _without_version(truth.index)
    if not genes.isin(truth.index).any() and stripped.is_unique and _without_version(genes).isin(stripped).any():
        keys, matched_by = _without_version(genes), "gene id without version"
        table = pd.Series(truth.to_numpy(), index=stripped)
    in_table = keys.isin(table.index)
    effect = np.where(in_table, table.reindex(keys).to_numpy(np.float64), 0.0)
    causal_total = int((table != 0).sum())
    n_tests = len(tested)
    pvalues = tested["pvalue"].to_numpy(np.float64)
    zscores = tested["zscore"].to_numpy(np.float64)
    qvalues = benjamini_hochberg(pvalues)
    is_causal = effect != 0
    sign_agrees = np.sign(zscores) == np.sign(effect)
    rules = {"bonferroni": pvalues < alpha / max(n_tests, 1), "fdr": qvalues < alpha}
    summary: dict[str, Any] = {
        "matched_by": matched_by, "genes_tested": n_tests, "tested_in_table": int(in_table.sum()),
        "tested_not_in_table": int((~in_table).sum()), "causal_genes": causal_total,
        "causal_tested": int(is_causal.sum()), "bonferroni_threshold": alpha / max(n_tests, 1), "fdr_level": alpha,
    }
    for rule, hits in rules.items():
        causal_hits = hits & is_causal
        agree = int((causal_hits & sign_agrees).sum())
        summary[rule] = {
            "hits": int(hits.sum()), "causal_hits": int(causal_hits.sum()),
            "recall": _fraction(int(causal_hits.sum()), causal_total),
            "precision": _fraction(int(causal_hits.sum()), int(hits.sum())),
            "signs_agree": agree, "signs_disagree": int(causal_hits.sum()) - agree,
            "all_signs_agree": bool(agree == causal_hits.sum()) if causal_hits.any() else None,
        }
    rows = []
    tested_at = {key: i for i, key in enumerate(keys)}
    listed = pd.Index(results["gene"].astype(str))  # genes of the TWAS table, tested or not: their names
    listed_keys = _without_version(listed) if matched_by != "gene id" else listed
    names = results["gene_name"] if "gene_name" in results else pd.Series([None] * len(results))
    name_of = {k: (str(n) if pd.notna(n) else None) for k, n in zip(listed_keys, names)}
    id_of = dict(zip(listed_keys, listed))
    for gene, planted in table[table != 0].items():
        i = tested_at.get(gene)
        rows.append({
            "gene": id_of.get(gene, str(gene)), "gene_name": name_of.get(gene),
            "effect": float(planted), "tested": i is not None,
            "zscore": float(zscores[i]) if i is not None else None,
            "pvalue": float(pvalues[i]) if i is not None else None,
            "qvalue": float(qvalues[i]) if i is not None else None,
            "bonferroni_hit": bool(rules["bonferroni"][i]) if i is not None else False,
            "fdr_hit": bool(rules["fdr"][i]) if i is not None else False,
            "sign_agrees": bool(sign_agrees[i]) if i is not None else None,
        })
    summary["causal"] = sorted(rows, key=lambda r: (r["pvalue"] is None, r["pvalue"] or 0.0))
    return summary


# ---------------------------------------------------------------------------------------------------------
# fine-mapping of TWAS regions (enpact finemap)


def finemap_findings(table: pd.DataFrame, truth: pd.Series | None = None) -> dict[str, Any]:
    """Per region of a fine-mapping table: its genes, the gene with the highest PIP, the credible set and the null
    model's PIP; with a planted truth, whether the region's causal genes top it and are in its credible set."""
    causal_ids: set[str] = set()
    if truth is not None:
        planted = truth[truth != 0]
        genes = pd.Index(table["gene"].astype(str))
        stripped = not genes.isin(planted.index).any()
        causal_ids = set(_without_version(planted.index) if stripped else planted.index)
        key = _without_version(genes) if stripped else genes
        table = table.assign(causal=key.isin(causal_ids))
    label = lambda row: str(row["gene_name"]) if pd.notna(row.get("gene_name")) else str(row["gene"])  # noqa: E731
    regions = []
    for region, rows in table.groupby("region", sort=False):
        rows = rows.sort_values("pip", ascending=False, kind="stable")
        top = rows.iloc[0]
        in_set = rows[rows["in_credible_set"].astype(bool)]
        entry: dict[str, Any] = {
            "region": str(region), "genes": int(len(rows)), "top_gene": str(top["gene"]), "top_label": label(top),
            "top_pip": float(top["pip"]), "credible_set": [label(r) for _, r in in_set.iterrows()],
            "credible_set_size": int(len(in_set)), "null_pip": float(top["null_pip"]),
            "null_in_credible_set": bool(top["null_in_credible_set"]),
        }
        if truth is not None:
            causal = rows[rows["causal"]]
            entry.update({"causal_genes": [label(r) for _, r in causal.iterrows()],
                          "top_is_causal": bool(top["causal"]),
                          "causal_in_credible_set": int(causal["in_credible_set"].astype(bool).sum())})
        regions.append(entry)
    summary: dict[str, Any] = {"regions": regions, "n_regions": len(regions),
                               "genes_fine_mapped": int(len(table)),
                               "median_credible_set_size": float(np.median([r["credible_set_size"] for r in regions]))
                               if regions else None}
    if truth is not None:
        with_causal = [r for r in regions if r["causal_genes"]]
        summary.update({
            "causal_genes": len(causal_ids), "regions_with_causal": len(with_causal),
            "causal_in_regions": int(sum(len(r["causal_genes"]) for r in with_causal)),
            "top_is_causal": int(sum(r["top_is_causal"] for r in with_causal)),
            "causal_in_credible_set": int(sum(r["causal_in_credible_set"] for r in with_causal)),
        })
    return summary
