"""TWAS fine-mapping (`enpact finemap`, FOCUS's model): PIPs and credible sets against pyfocus 0.802 itself on the
same z-scores, weights and LD, and a planted causal gene among correlated significant neighbours."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_vcf
from enpact.cli import main
from enpact.finemap import (FINEMAP_COLUMNS, fine_map_region, predicted_expression_correlation, twas_regions)

RIDGE = 0.1


@pytest.fixture(scope="module")
def focus() -> types.ModuleType:
    """pyfocus 0.802's finemap.py (its fine-mapping core), loaded without the package's plotting and PLINK imports
    (cv2, seaborn, pandas_plink), which `import pyfocus` would pull in."""
    spec = importlib.util.find_spec("pyfocus")
    assert spec is not None and spec.submodule_search_locations, \
        "pyfocus is missing: pip install --no-deps -r requirements-test-nodeps.txt (scripts/setup.sh --dev does)"
    path = Path(spec.submodule_search_locations[0]) / "finemap.py"
    stub = types.ModuleType("pyfocus")
    stub.LOG = "MAIN"
    saved = sys.modules.get("pyfocus")
    sys.modules["pyfocus"] = stub
    try:
        module_spec = importlib.util.spec_from_file_location("pyfocus_finemap_reference", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["pyfocus"]
        else:
            sys.modules["pyfocus"] = saved
    return module


def ld_genotypes(rng: np.random.Generator, n: int, p: int, founders: int = 4, switch: float = 0.15) -> np.ndarray:
    """n x p dosages from a mosaic of a few founder haplotypes: neighbouring SNPs in strong LD."""
    alleles = (rng.random((founders, p)) < rng.uniform(0.15, 0.5, p)).astype(np.float64)
    doses = np.zeros((n, p))
    for _ in range(2):
        origin = rng.integers(founders, size=n)
        copies = np.empty((n, p))
        for j in range(p):
            switching = rng.random(n) < switch
            origin = np.where(switching, rng.integers(founders, size=n), origin)
            copies[:, j] = alleles[origin, j]
        flips = rng.random((n, p)) < 0.03   # mutations on the mosaic: no two SNPs identical
        doses += np.abs(copies - flips)
    return doses


def focus_reference(focus: types.ModuleType, zscores: np.ndarray, weights: np.ndarray, ldmat: np.ndarray,
                    max_genes: int, prior_prob: float, level: float) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """pyfocus's PIPs (calculate_pips, which fine_map calls after its TWAS) and credible set (add_credible_set on
    the genes and the null model, as fine_map builds its output)."""
    meta = [pd.DataFrame({"ens_gene_id": [f"g{i}" for i in range(len(zscores))], "twas_z": zscores})]
    meta, null_res, _ = focus.calculate_pips(meta, [weights], [ldmat], max_genes, prior_prob, False)
    pips = meta[0]["pips"].to_numpy()
    table = pd.DataFrame({"ens_gene_id": [*meta[0]["ens_gene_id"], "NULL.MODEL"],
                          "pips_pop1": [*pips, null_res[0]]})
    marked = focus.add_credible_set(table, credible_set=level).set_index("ens_gene_id")["in_cred_set_pop1"]
    in_set = marked.reindex(meta[0]["ens_gene_id"]).to_numpy().astype(bool)
    return pips, float(null_res[0]), in_set, bool(marked["NULL.MODEL"])


REGIONS = [  # (seed, genes, SNPs, max_genes, prior_prob, credible level, signal)
    (1, 2, 8, 3, 1e-3, 0.9, 5.0), (2, 3, 12, 3, 0.2, 0.9, 6.0), (3, 4, 15, 3, 1e-3, 0.9, 4.5),
    (4, 5, 18, 2, 0.1, 0.95, 7.0), (5, 6, 20, 3, 1 / 6, 0.9, 5.5), (6, 6, 14, 4, 0.05, 0.8, 3.0),
    (7, 4, 10, 1, 0.25, 0.9, 6.0),
]


@pytest.mark.parametrize("seed,m,p,max_genes,prior_prob,level,signal", REGIONS)
def test_pips_and_credible_sets_equal_pyfocus(focus, seed, m, p, max_genes, prior_prob, level, signal):
    rng = np.random.default_rng(seed)
    genotypes = ld_genotypes(rng, 120, p)
    weights = np.zeros((p, m))
    for g in range(m):   # overlapping SNP sets: neighbouring genes strongly correlated
        start = int(rng.integers(0, p - 3))
        snps = rng.choice(np.arange(start, min(p, start + 6)), 3, replace=False)
        weights[snps, g] = rng.normal(0, 1, 3)
    weights[:, -1] = weights[:, 0] + rng.normal(0, 0.05, p) * (weights[:, 0] != 0)   # a near-duplicate pair

    ours = predicted_expression_correlation(genotypes.T, weights, RIDGE)
    # FOCUS: LD = correlation of the genotypes + ridge I (LDRefPanel.estimate_ld), weights on standardised genotypes
    ldmat = np.corrcoef(genotypes.T) + np.eye(p) * RIDGE
    standardised = weights * genotypes.std(axis=0)[:, None]
    theirs, _ = focus.estimate_cor(standardised, ldmat)
    assert np.abs(ours - theirs).max() < 1e-12
    assert np.abs(ours[0, -1]) > 0.95   # the strongly correlated pair is there

    causal = int(rng.integers(m))
    zscores = signal * ours[:, causal] + np.linalg.cholesky(ours) @ rng.normal(size=m)
    fit = fine_map_region(zscores, ours, max_genes, prior_prob, level)
    pips, null_pip, in_set, null_in_set = focus_reference(focus, zscores, standardised, ldmat, max_genes,
                                                          prior_prob, level)
    largest = max(np.abs(fit.pips - pips).max(), abs(fit.null_pip - null_pip))
    assert largest < 1e-12, f"largest PIP difference {largest:.2e}"
    np.testing.assert_array_equal(fit.in_credible_set, in_set)
    assert fit.null_in_credible_set == null_in_set


def test_largest_pip_difference_over_many_regions(focus):
    """Over 60 random regions of 2-6 genes the PIPs agree with pyfocus's to 1e-12 (the figure docs/twas.md gives)."""
    rng = np.random.default_rng(2024)
    largest = 0.0
    for _ in range(60):
        m = int(rng.integers(2, 7))
        vectors = rng.normal(size=(m, m + 2))
        vectors[1] = vectors[0] + rng.normal(0, 0.1, m + 2)   # correlation about 0.99
        covariance = vectors @ vectors.T
        scale = 1 / np.sqrt(np.diag(covariance))
        correlation = covariance * scale[:, None] * scale[None, :]
        zscores = rng.normal(0, 3, m)
        fit = fine_map_region(zscores, correlation, 3, 1e-3, 0.9)
        pips, null_pip, in_set, null_in_set = focus_reference(focus, zscores, np.eye(m), correlation, 3, 1e-3, 0.9)
        largest = max(largest, np.abs(fit.pips - pips).max(), abs(fit.null_pip - null_pip))
        np.testing.assert_array_equal(fit.in_credible_set, in_set)
        assert fit.null_in_credible_set == null_in_set
    assert largest < 1e-12, f"largest PIP difference {largest:.2e}"


def test_regions_merge_windows_of_significant_genes():
    genes = pd.DataFrame({"gene": list("ABCDEFG"), "chrom": ["chr1"] * 5 + ["chr2"] * 2,
                          "position": [100, 900, 2_500, 2_700, 9_000, 100, 50_000],
                          "pvalue": [0.5, 1e-9, 0.5, 1e-8, 0.5, 0.5, 0.5]})
    regions = twas_regions(genes, 1e-6, 1_000).set_index("gene")["region"]
    assert regions["A"] == regions["B"] == regions["C"] == regions["D"] == "chr1:0-3700"   # windows overlap: one
    assert regions[["E", "F", "G"]].isna().all()   # outside every window, or no significant gene nearby


# ---------------------------------------------------------------------------------------------------------
# planted: a causal gene among significant, correlated neighbours, through `enpact finemap`

N_PANEL = 200
GENES = {"GA": (0, 10), "GB": (4, 14), "GC": (8, 18), "GD": (12, 22), "GFAR": (40, 48)}   # SNP ranges
CAUSAL = "GB"


def write_database(path: Path, positions: list[int], refs: list[str], alts: list[str],
                   weights: dict[str, np.ndarray]) -> Path:
    """A PredictDB database: weights (rsid and varID keys) and extra."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE weights (rsid TEXT, gene TEXT, weight DOUBLE, ref_allele CHARACTER, "
                       "eff_allele CHARACTER, varID TEXT)")
    connection.execute('CREATE TABLE extra (gene TEXT, genename TEXT, "n.snps.in.model" INTEGER, '
                       '"pred.perf.R2" DOUBLE, "pred.perf.pval" DOUBLE, "pred.perf.qval" DOUBLE)')
    for gene, w in weights.items():
        used = np.flatnonzero(w)
        connection.executemany("INSERT INTO weights VALUES (?, ?, ?, ?, ?, ?)", [
            (f"rs{positions[j]}", gene, float(w[j]), refs[j], alts[j], f"chr7_{positions[j]}_{refs[j]}_{alts[j]}_b38")
            for j in used])
        connection.execute("INSERT INTO extra VALUES (?, ?, ?, 0.5, 1e-5, 1e-4)", (gene, f"name_{gene}", len(used)))
    connection.commit()
    connection.close()
    return path


def test_planted_causal_gene_tops_its_region(tmp_path):
    rng = np.random.default_rng(12)
    n_snps = 50
    positions = [1000 + 400 * j for j in range(n_snps)]
    refs = ["ACGT"[j % 4] for j in range(n_snps)]
    alts = ["GTAC"[j % 4] for j in range(n_snps)]
    # phased haplotypes of a founder mosaic, written to the panel VCF; their sums are the dosages
    haplotypes = ld_genotypes(rng, N_PANEL, n_snps, founders=3, switch=0.03)
    first = np.minimum(haplotypes, 1).astype(int)
    second = (haplotypes - first).astype(int)
    samples = [f"S{i:03d}" for i in range(N_PANEL)]
    records = ["\t".join(["chr7", str(positions[j]), f"rs{positions[j]}", refs[j], alts[j], ".", "PASS", ".", "GT",
                          *[f"{a}|{b}" for a, b in zip(first[:, j], second[:, j])]]) for j in range(n_snps)]
    vcf = write_vcf(tmp_path / "panel.vcf", {"chr7": 30_000}, samples, records)
    weights = {}
    for gene, (start, end) in GENES.items():
        w = np.zeros(n_snps)
        w[rng.choice(np.arange(start, end), 5, replace=False)] = rng.normal(0, 1, 5)
        weights[gene] = w
    db = write_database(tmp_path / "models.db", positions, refs, alts, weights)

    # the TWAS z-scores of a trait caused by GB's expression alone: z ~ N(signal R[:, GB], R)
    names = list(GENES)
    correlation = predicted_expression_correlation(haplotypes.T, np.stack([weights[g] for g in names], axis=1), 0.0)
    c = names.index(CAUSAL)
    zscores = 7.0 * correlation[:, c] + np.linalg.cholesky(correlation + 1e-9 * np.eye(len(names))) @ rng.normal(
        size=len(names))
    from scipy.stats import norm
    pvalues = 2 * norm.sf(np.abs(zscores))
    twas = tmp_path / "trait.csv"
    pd.DataFrame({"gene": names, "gene_name": [f"name_{g}" for g in names], "zscore": zscores,
                  "pvalue": pvalues}).to_csv(twas, index=False)
    significant = [g for g, p in zip(names, pvalues) if p < 0.05 / len(names)]
    assert CAUSAL in significant and len(significant) >= 3   # neighbours in LD are hits too: which one is causal?

    out = tmp_path / "finemap.tsv"
    assert main(["finemap", "--twas", str(twas), "--model-db-path", str(db), "--vcf", str(vcf),
                 "--out", str(out)]) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == FINEMAP_COLUMNS
    region = table[table["region"] == table.loc[table["gene"] == CAUSAL, "region"].iloc[0]]
    assert set(significant) <= set(region["gene"])
    assert region.iloc[0]["gene"] == CAUSAL   # sorted by PIP: the planted causal gene first
    assert region.iloc[0]["pip"] > 0.5 and bool(region.iloc[0]["in_credible_set"])
    assert region["pip"].iloc[1:].max() < 0.5 * region.iloc[0]["pip"]


def test_report_findings_say_whether_the_planted_gene_tops_its_region():
    from enpact.findings import finemap_findings

    table = pd.DataFrame({
        "region": ["r1", "r1", "r1", "r2", "r2"], "gene": ["G1.1", "G2.1", "G3.2", "G4.1", "G5.1"],
        "gene_name": ["A", "B", "C", "D", "E"], "pip": [0.9, 0.2, 0.05, 0.6, 0.4],
        "in_credible_set": [True, True, False, True, True], "null_pip": [1e-6] * 3 + [1e-3] * 2,
        "null_in_credible_set": [False] * 5})
    truth = pd.Series([1.0, 0.0, 2.0], index=pd.Index(["G1", "G2", "G5"], name="gene_id"))   # ids without version
    found = finemap_findings(table, truth)
    assert [r["top_label"] for r in found["regions"]] == ["A", "D"]
    assert [r["top_is_causal"] for r in found["regions"]] == [True, False]
    assert found["top_is_causal"] == 1 and found["regions_with_causal"] == 2 and found["causal_in_credible_set"] == 2
    assert found["regions"][0]["credible_set"] == ["A", "B"] and found["median_credible_set_size"] == 2
