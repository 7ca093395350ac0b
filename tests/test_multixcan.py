"""S-MultiXcan (`enpact multixcan`) against a plain per-gene numpy implementation of SMulTiXcan.py's method, end to
end on databases built by the pipeline's own steps, and (optionally) against SMulTiXcan.py itself."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from enpact.cli import build_parser, main
from enpact.options import from_arguments
from enpact.errors import EnpactError
from enpact.multixcan import Cutoff, as_pandas_2_reads, joint_test, model_name, results_name
from test_covariance import CENTERS, build_study

COLUMNS = ["gene", "gene_name", "pvalue", "n", "n_indep", "p_i_best", "t_i_best", "p_i_worst", "t_i_worst",
           "eigen_max", "eigen_min", "eigen_min_kept", "z_min", "z_max", "z_mean", "z_sd", "tmi", "status"]
NUMERIC = ["pvalue", "n", "n_indep", "p_i_best", "p_i_worst", "eigen_max", "eigen_min", "eigen_min_kept", "z_min",
           "z_max", "z_mean", "z_sd", "tmi", "status"]
BASES = "ACGT"


# ---------------------------------------------------------------------------------------------------------
# synthetic inputs with every case, written as databases, a covariance, S-PrediXcan results and a GWAS


@dataclass
class Synthetic:
    root: Path
    snps: dict[str, tuple[str, str]]  # id -> (ref, effect)
    models: dict[str, dict[str, dict[str, float]]]  # context -> gene -> snp -> weight
    sigma: dict[str, tuple[list[str], np.ndarray]]  # gene -> (snps, covariance), in file order
    results: dict[str, dict[str, float]]  # context -> gene -> z (NaN: an NA row)
    cleared: set[str]
    dbs: dict[str, Path] = field(default_factory=dict)
    result_files: dict[str, Path] = field(default_factory=dict)
    covariance: Path | None = None
    gwas: Path | None = None


def twelve_digits(values: np.ndarray) -> np.ndarray:
    """Values rounded to 12 significant digits (as in MetaXcan's files), which pandas < 2.2 also reads exactly."""
    return np.vectorize(lambda value: float(f"{value:.12g}"))(values)


def build_synthetic(root: Path, seed: int = 5) -> Synthetic:
    """Contexts T1..T4 (T4 duplicates T1's G1 model: a singular correlation) and genes that exercise each status."""
    rng = np.random.default_rng(seed)
    snps = {}
    for i in range(1, 61):
        ref = BASES[rng.integers(4)]
        snps[f"rs{i}"] = (ref, BASES[(BASES.index(ref) + 1 + rng.integers(3)) % 4])
    genes = {  # gene: its covariance SNPs
        "G7": list(range(1, 9)), "G1": list(range(10, 17)), "G2": [18, 19, 20], "G3": [21, 22, 23, 24],
        "G4": [25, 26], "G5": [27, 28, 29], "G5b": [30, 31], "G6": [32, 33, 34], "G8": [35, 36],
        "G9": list(range(37, 45)),
    }
    models = {
        "T1": {"G7": [1, 2, 3, 5], "G1": [10, 11, 12, 13], "G3": [21, 22], "G4": [25], "G5": [27, 28],
               "G5b": [30], "G6": [32, 33], "G9": [37, 38, 39, 40]},
        "T2": {"G7": [2, 3, 4, 6, 7], "G1": [12, 14, 15], "G2": [18, 19, 20, 29], "G4": [26], "G6": [34],
               "G9": [39, 40, 41, 42, 43]},
        "T3": {"G7": [1, 6, 8], "G1": [10, 15, 16], "G3": [23, 24], "G9": []},
        "T4": {},
    }
    weights = {c: {g: {f"rs{s}": float(rng.normal(0, 0.5)) for s in members} for g, members in genes_of.items()}
               for c, genes_of in models.items()}
    weights["T4"]["G1"] = dict(weights["T1"]["G1"])  # a duplicated context: correlation 1 with T1
    # T3's G9 model nearly proportional to T1's: a correlation near 1 whose small component is cut
    weights["T3"]["G9"] = {snp: 2 * w + float(rng.normal(0, 0.05)) for snp, w in weights["T1"]["G9"].items()}
    sigma = {}
    for gene, members in genes.items():
        dose = rng.binomial(2, rng.uniform(0.1, 0.5, len(members)), size=(80, len(members))).astype(float)
        if gene == "G9":  # strongly correlated SNPs: near-collinear contexts, components are cut
            dose[:, 1:] = np.where(rng.random((80, len(members) - 1)) < 0.9, dose[:, [0]], dose[:, 1:])
        matrix = twelve_digits(np.cov(dose, rowvar=False))  # as MetaXcan's files: SMulTiXcan.py reads them exactly
        if gene == "G6":  # rs34, T2's only SNP for G6, is monomorphic: T2 has zero variance and is left out
            matrix[2, :] = matrix[:, 2] = 0.0
        sigma[gene] = ([f"rs{s}" for s in members], matrix)
    uncleared = {"rs4", "rs11", "rs16", "rs27", "rs28", "rs30", "rs31", "rs38"}  # G5/G5b models: nothing cleared
    # G5 keeps rs29 cleared (it is in T2's G2 model, not in a G5 model): cleared covariance rows but no usable
    # model (status -3). As in SMulTiXcan.py, a SNP is cleared when the GWAS has it with some model's alleles.
    results = {c: {} for c in models}
    for context, genes_of in weights.items():
        for gene in genes_of:
            if gene == "G4" or (context, gene) == ("T3", "G3"):
                continue  # G4: no results anywhere (status -2); T3 has no result for G3
            results[context][gene] = float(rng.normal(0, 3))
    results["T2"]["G6"] = float(rng.normal(0, 3))
    results["T1"]["G7"] = 9.5  # strong signal
    results["T2"]["G2"] = float("nan")  # an NA row: G2 has no finite z anywhere -> status -2
    cleared = {s for genes_of in weights.values() for model in genes_of.values() for s in model} - uncleared
    synthetic = Synthetic(root, snps, weights, sigma, results, cleared)
    write_synthetic(synthetic)
    return synthetic


def uncleared_by_gwas(fx: Synthetic) -> set[str]:
    """Model SNPs the GWAS lists with other alleles."""
    in_models = {s for genes_of in fx.models.values() for model in genes_of.values() for s in model}
    return in_models - fx.cleared


def write_synthetic(fx: Synthetic) -> None:
    """Databases (models/T?.db), S-PrediXcan-style results (results/study__PM__T?.csv), the covariance (genes in a
    scrambled order, a pair listed transposed) and a GWAS whose alleles clear exactly `fx.cleared`."""
    (fx.root / "models").mkdir()
    (fx.root / "results").mkdir()
    for context, genes in fx.models.items():
        db = fx.root / "models" / f"{context}.db"
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE weights (rsid TEXT, gene TEXT, weight DOUBLE, ref_allele CHARACTER, "
                               "eff_allele CHARACTER, varID TEXT)")
            connection.execute("CREATE TABLE extra (gene TEXT, genename TEXT, `n.snps.in.model` INTEGER, "
                               "`pred.perf.R2` DOUBLE, `pred.perf.pval` DOUBLE, `pred.perf.qval` DOUBLE)")
            for gene, model in genes.items():
                for snp, weight in model.items():
                    ref, eff = fx.snps[snp]
                    connection.execute("INSERT INTO weights VALUES (?, ?, ?, ?, ?, ?)",
                                       (snp, gene, weight, ref, eff, f"chr1_{snp[2:]}_{ref}_{eff}_b38"))
                connection.execute("INSERT INTO extra VALUES (?, ?, ?, 0.1, 0.01, NULL)",
                                   (gene, f"NAME_{gene}", len(model)))
            if context == "T1":  # a gene only in the weights, with covariance rows: not analysed
                connection.execute("INSERT INTO weights VALUES ('rs35', 'G8', 0.3, ?, ?, 'x')", fx.snps["rs35"])
        fx.dbs[context] = db
        path = fx.root / "results" / f"study__PM__{context}.csv"
        rows = [f"{gene},NAME_{gene},{'NA' if np.isnan(z) else repr(z)},NA,{2 * stats.norm.sf(abs(z))}"
                for gene, z in fx.results[context].items()]
        path.write_text("gene,gene_name,zscore,effect_size,pvalue\n" + "".join(r + "\n" for r in rows))
        fx.result_files[context] = path
    fx.covariance = fx.root / "covariance.txt"
    lines = ["GENE RSID1 RSID2 VALUE"]
    for gene in ["G7", "G2", "G5", "G1", "G8", "G3", "G5b", "G6", "G4", "G9"]:
        members, matrix = fx.sigma[gene]
        for i in range(len(members)):
            for j in range(i, len(members)):
                a, b = (members[j], members[i]) if (gene, i, j) == ("G7", 0, 3) else (members[i], members[j])
                lines.append(f"{gene} {a} {b} {float(matrix[i, j])!r}")
    fx.covariance.write_text("\n".join(lines) + "\n")
    fx.gwas = fx.root / "gwas.txt"
    gwas = ["SNP A1 A2 Z"]
    for snp, (ref, eff) in fx.snps.items():
        if snp not in uncleared_by_gwas(fx):
            effect, other = (ref, eff) if int(snp[2:]) % 3 == 0 else (eff, ref)  # some listed the other way round
        else:
            effect, other = eff, next(b for b in BASES if b not in (ref, eff))  # other alleles: not cleared
        gwas.append(f"{snp} {effect} {other} {'NA' if snp == 'rs5' else '1.5'}")  # an NA z still clears
    fx.gwas.write_text("\n".join(gwas) + "\n")


# ---------------------------------------------------------------------------------------------------------
# the reference: SMulTiXcan.py's method written plainly, one gene at a time, with an eigendecomposition


def plain_limit(eigen: np.ndarray, cutoff: tuple[str, float]) -> float:
    """The smallest eigenvalue kept, from the eigenvalues (descending) of the unregularised correlation."""
    kind, value = cutoff
    if value == 0:
        return 0.0
    if kind == "condition_number":
        return eigen[0] / value
    if kind == "eigen_ratio":
        return value * eigen[0]
    if kind == "trace_ratio":
        return value * eigen.sum()
    total, running, last = eigen.sum(), 0.0, eigen[0]
    for e in eigen:  # threshold: stop before the component that takes the explained variance past 1 - value
        running += e
        if running > total * (1 - value):
            break
        last = e
    return last


def reference(fx: Synthetic, cutoff: tuple[str, float] = ("condition_number", 30.0),
              regularization: float | None = None) -> pd.DataFrame:
    """Expected results, in covariance-file gene order (unsorted)."""
    extra_genes = {g for genes in fx.models.values() for g in genes}
    rows = []
    order = pd.read_csv(fx.covariance, sep=" ")["GENE"].drop_duplicates()
    for gene in order:
        members, matrix = fx.sigma[gene]
        keep = [i for i, s in enumerate(members) if s in fx.cleared]
        if gene not in extra_genes or not keep:
            continue
        snps, sigma = [members[i] for i in keep], matrix[np.ix_(keep, keep)]
        z = {c: fx.results[c][gene] for c in sorted(fx.results)
             if gene in fx.results[c] and np.isfinite(fx.results[c][gene])}
        row = dict(gene=gene, gene_name=f"NAME_{gene}", status=-2)
        if z:
            values = np.array(list(z.values()))
            row.update(n=len(z), z_min=values.min(), z_max=values.max(), z_mean=values.mean(),
                       z_sd=values.std(ddof=1) if len(z) > 1 else np.nan, status=-3)
        labels, used = [], {}
        for context in z:
            model = fx.models[context].get(gene, {})
            w = np.array([model.get(s, 0.0) for s in snps])
            if not any(s in model for s in snps) or w @ sigma @ w == 0:
                continue
            labels.append(context)
            used[context] = {s: model[s] for s in snps if s in model}
        if labels:
            correlation = smultixcan_correlation(used, snps, sigma)
            eigen, vecs = np.linalg.eigh(correlation)
            eigen, vecs = eigen[::-1], vecs[:, ::-1]
            shifted = eigen + (regularization or 0.0)  # --regularization adds to the diagonal: shifts eigenvalues
            # the cut-off comes from the unregularised eigenvalues and applies to the regularised matrix's singular
            # values, compared as SMulTiXcan.py compares them (no tolerance)
            singular = np.linalg.svd(correlation + (regularization or 0.0) * np.eye(len(labels)))[1]
            kept = singular >= plain_limit(eigen, cutoff)
            kept[0] = True
            inverse = sum(np.outer(vecs[:, i], vecs[:, i]) / shifted[i] for i in np.flatnonzero(kept))
            zz = np.array([z[c] for c in labels])
            statistic = zz @ inverse @ zz
            best, worst = np.argmax(np.abs(zz)), np.argmin(np.abs(zz))
            row.update(pvalue=stats.chi2.sf(statistic, kept.sum()), n_indep=int(kept.sum()),
                       p_i_best=2 * stats.norm.sf(abs(zz[best])), t_i_best=labels[best],
                       p_i_worst=2 * stats.norm.sf(abs(zz[worst])), t_i_worst=labels[worst],
                       eigen_max=np.abs(shifted).max(), eigen_min=np.abs(shifted).min(),
                       eigen_min_kept=shifted[kept].min(), tmi=np.trace(correlation @ inverse), status=0)
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def read_output(path: Path) -> pd.DataFrame:
    """A results table as written (tab-separated, NA as missing)."""
    return pd.read_csv(path, sep="\t", na_values=["NA"], keep_default_na=False)


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, rtol: float = 1e-9,
                atol: float = 1e-12) -> dict[str, float]:
    """Same genes, labels and statuses; numbers within tolerance, NA in the same places; returns the largest
    absolute difference per numeric column (and the largest relative one of the p-values)."""
    assert sorted(actual["gene"]) == sorted(expected["gene"])
    merged = actual.merge(expected, on="gene", suffixes=("", "_ref"))
    for column in ("gene_name", "t_i_best", "t_i_worst"):
        assert (merged[column].fillna("NA") == merged[f"{column}_ref"].fillna("NA")).all(), column
    largest = {}
    for column in NUMERIC:
        got = merged[column].to_numpy(dtype=float)
        want = merged[f"{column}_ref"].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), (column, merged.loc[np.isnan(got) != np.isnan(want)])
        both = ~np.isnan(got)
        np.testing.assert_allclose(got[both], want[both], rtol=rtol, atol=atol, err_msg=column)
        largest[column] = float(np.abs(got[both] - want[both]).max()) if both.any() else 0.0
        if column == "pvalue" and both.any():
            positive = both & (want > 0)
            largest["pvalue_relative"] = float((np.abs(got - want)[positive] / want[positive]).max())
    return largest


def describe(largest: dict[str, float]) -> str:
    """The largest differences, for the log of an optional comparison."""
    return ", ".join(f"{column} {value:.2g}" for column, value in largest.items())


def explicit_args(fx: Synthetic) -> list[str]:
    """--context options for every context of the synthetic inputs."""
    return [a for c in sorted(fx.dbs) for a in ("--context", c, str(fx.dbs[c]), str(fx.result_files[c]))]


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Synthetic:
    return build_synthetic(tmp_path_factory.mktemp("multixcan"))


# ---------------------------------------------------------------------------------------------------------
# against the reference


CUTOFFS = {
    "default": ([], ("condition_number", 30.0), None),
    "condition_number": (["--cutoff-condition-number", "5"], ("condition_number", 5.0), None),
    "eigen_ratio": (["--cutoff_eigen_ratio", "0.1"], ("eigen_ratio", 0.1), None),
    "trace_ratio": (["--cutoff-trace-ratio", "0.05"], ("trace_ratio", 0.05), None),
    "threshold": (["--cutoff-threshold", "0.05"], ("threshold", 0.05), None),
    "regularization": (["--regularization", "0.1", "--cutoff-condition-number", "30"], ("condition_number", 30.0),
                       0.1),
}


@pytest.mark.parametrize("option", list(CUTOFFS))
def test_matches_plain_reference(fx, tmp_path, option):
    flags, cutoff, regularization = CUTOFFS[option]
    out = tmp_path / "out.tsv"
    assert main(["-q", "multixcan", *explicit_args(fx), "--snp-covariance", str(fx.covariance), "--gwas-file",
                 str(fx.gwas), "--zscore-column", "Z", *flags, "--output", str(out)]) == 0
    results = read_output(out)
    assert list(results.columns) == COLUMNS
    expected = reference(fx, cutoff, regularization)
    assert_same(results, expected)
    by_gene = results.set_index("gene")
    # the cases really happened
    assert "G5b" not in by_gene.index and "G8" not in by_gene.index  # no cleared row / not in any extra table
    assert by_gene.loc["G4", "status"] == -2 and by_gene.loc["G2", "status"] == -2
    assert by_gene.loc["G5", "status"] == -3 and by_gene.loc["G5", "n"] == 1
    assert by_gene.loc["G6", "n"] == 2 and by_gene.loc["G6", "n_indep"] == 1  # T2: zero variance
    assert by_gene.loc["G3", "n"] == 1 and by_gene.loc["G3", "n_indep"] == 1  # one context
    assert by_gene.loc["G1", "n"] == 4
    if regularization is None:
        assert by_gene.loc["G1", "n_indep"] < 4  # T4 = T1: singular
    if option == "default":
        assert by_gene.loc["G9", "n_indep"] < by_gene.loc["G9", "n"]  # near-collinear contexts cut
        assert by_gene.loc["G7", "n_indep"] == 3 and by_gene.loc["G7", "t_i_best"] == "T1"
    # sorted by p-value, then status; NA last
    p = results["pvalue"].to_numpy()
    finite = p[~np.isnan(p)]
    assert np.all(np.diff(finite) >= 0) and np.isnan(p[len(finite):]).all()
    assert list(results["gene"][len(finite):]) == ["G5", "G2", "G4"]  # status -3, then -2 in file order


def smultixcan_correlation(weights: dict[str, dict[str, float]], snps: list[str], sigma: np.ndarray) -> np.ndarray:
    """A gene's correlation of predicted expression across contexts (sorted), in SMulTiXcan.py's order of operations:
    per pair, the sorted SNPs of each model, w1 . (M12 . w2) over numpy.dot, over sqrt(var1 var2)."""
    index = {snp: i for i, snp in enumerate(snps)}
    contexts = sorted(weights)

    def product(c: str, d: str) -> float:
        a, b = sorted(weights[c]), sorted(weights[d])
        block = np.array([[sigma[index[x], index[y]] for y in b] for x in a])
        return float(np.dot(np.dot(np.array([weights[c][x] for x in a]), block), np.array([weights[d][y] for y in b])))

    variance = {c: product(c, c) for c in contexts}
    matrix = np.array([[product(c, d) / np.sqrt(variance[c] * variance[d]) if i <= j else np.nan
                        for j, d in enumerate(contexts)] for i, c in enumerate(contexts)])
    return np.where(np.isnan(matrix), matrix.T, matrix)


def smultixcan_decision(weights: dict[str, dict[str, float]], snps: list[str], sigma: np.ndarray,
                        threshold: float) -> tuple[int, int]:
    """n_indep and the statistic's chi2 p of one gene, in SMulTiXcan.py's order of operations: contexts sorted, per
    pair the sorted SNPs of each model, w1 . (M12 . w2) over numpy.dot, then the cut-off from eigh and the keep
    decision on the SVD's values, with no tolerance. Also the count of eigenvalues at or above the cut-off."""
    matrix = smultixcan_correlation(weights, snps, sigma)
    eigen = sorted(np.linalg.eigh(matrix)[0], reverse=True)
    cumulative, objective, limit = np.cumsum(eigen), np.sum(eigen) * (1 - threshold), eigen[0]
    for i in range(len(eigen)):
        if cumulative[i] > objective:
            break
        limit = eigen[i]
    kept = sum(1 for i, s in enumerate(np.linalg.svd(matrix)[1]) if s >= limit or i == 0)
    return kept, sum(1 for e in eigen if e >= limit)


def test_threshold_ties_are_decided_as_smultixcan_decides_them(tmp_path):
    """The --cutoff-threshold cut-off is an eigenvalue itself, so whether its component is kept is decided by rounding:
    n_indep must be SMulTiXcan.py's in every gene, also where the SVD's value rounds below eigh's."""
    rng = np.random.default_rng(11)
    contexts = [f"C{c}" for c in range(5)]
    (tmp_path / "models").mkdir()
    genes: dict[str, tuple[list[str], np.ndarray, dict[str, dict[str, float]]]] = {}
    for g in range(150):
        snps = [f"rs{g}_{j}" for j in range(int(rng.integers(4, 9)))]
        dose = rng.binomial(2, rng.uniform(0.1, 0.5, len(snps)), size=(60, len(snps))).astype(float)
        models = {c: {s: float(rng.normal()) for s in rng.choice(snps, int(rng.integers(2, len(snps) + 1)),
                                                                replace=False)} for c in contexts}
        genes[f"G{g:03d}"] = (snps, twelve_digits(np.cov(dose, rowvar=False)), models)
    lines, gwas = ["GENE RSID1 RSID2 VALUE"], ["SNP A1 A2 Z"]
    for gene, (snps, sigma, _) in genes.items():
        lines += [f"{gene} {snps[i]} {snps[j]} {float(sigma[i, j])!r}"
                  for i in range(len(snps)) for j in range(i, len(snps))]
        gwas += [f"{snp} G A 1.0" for snp in snps]
    (tmp_path / "covariance.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "gwas.txt").write_text("\n".join(gwas) + "\n")
    context_args = []
    for c in contexts:
        db = tmp_path / "models" / f"{c}.db"
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE weights (rsid TEXT, gene TEXT, weight DOUBLE, ref_allele CHARACTER, "
                               "eff_allele CHARACTER, varID TEXT)")
            connection.execute("CREATE TABLE extra (gene TEXT, genename TEXT, `n.snps.in.model` INTEGER, "
                               "`pred.perf.R2` DOUBLE, `pred.perf.pval` DOUBLE, `pred.perf.qval` DOUBLE)")
            for gene, (_, _, models) in genes.items():
                connection.executemany("INSERT INTO weights VALUES (?, ?, ?, 'A', 'G', ?)",
                                       [(s, gene, w, s) for s, w in models[c].items()])
                connection.execute("INSERT INTO extra VALUES (?, ?, ?, 0.1, 0.01, NULL)", (gene, gene, len(models[c])))
        results = tmp_path / f"study__PM__{c}.csv"
        results.write_text("gene,gene_name,zscore,effect_size,pvalue\n" + "".join(
            f"{gene},{gene},{rng.normal(0, 2)!r},NA,0.5\n" for gene in genes))
        context_args += ["--context", c, str(db), str(results)]
    out = tmp_path / "out.tsv"
    assert main(["-q", "multixcan", *context_args, "--snp-covariance", str(tmp_path / "covariance.txt"),
                 "--gwas-file", str(tmp_path / "gwas.txt"), "--zscore-column", "Z", "--cutoff-threshold", "0.05",
                 "--output", str(out)]) == 0
    got = read_output(out).set_index("gene")["n_indep"]
    decisions = {gene: smultixcan_decision(models, snps, sigma, 0.05) for gene, (snps, sigma, models) in genes.items()}
    differ = {gene: (int(got[gene]), n) for gene, (n, _) in decisions.items() if got[gene] != n}
    assert not differ, f"n_indep (enpact, SMulTiXcan.py's rule) differ: {differ}"
    # the case happened: genes whose boundary component SMulTiXcan.py drops because the SVD rounds it under eigh's
    assert sum(kept < at_or_above for kept, at_or_above in decisions.values()) >= 3


# values as written in shortest form, and what pandas 2.1.4's read_csv (sep="\\s+", SMulTiXcan.py's reader) made of
# them: recorded from pandas 2.1.4, which reads 114,080 of 225,005 random 17-digit values a few ulps off
PANDAS_2_READS = [
    ("0.017279209603239302", "0x1.1b1a42096294dp-6"), ("0.04108090717505792", "0x1.5088e819d2016p-5"),
    ("0.016521853809169356", "0x1.0eb1ad71e632bp-6"), ("-3.7929641164272186e-06", "-0x1.fd154132af863p-19"),
    ("6.0804613607139675e-06", "0x1.980d87df96894p-18"), ("12.373981367074295", "0x1.8bf7a7c59cb82p+3"),
    ("-15.867855529519199", "-0x1.fbc578f59e01ep+3"), ("0.0147066248327763", "0x1.e1e81c587d084p-7"),
]


def test_covariance_values_are_read_as_smultixcans_pandas_reads_them():
    written = np.array([float(text) for text, _ in PANDAS_2_READS])
    expected = np.array([float.fromhex(read) for _, read in PANDAS_2_READS])
    assert (as_pandas_2_reads(written) == expected).all()
    assert (written[:-1] != expected[:-1]).all()  # the cases happened: each differs from the exact value
    short = np.array([0.0764081255771, -1.5e-07, 3.0, 0.0])  # 15 or fewer significant digits: exact
    assert (as_pandas_2_reads(short) == short).all()


def test_one_context_gene_is_the_s_predixcan_test():
    zscore = np.array([[2.5]])
    test = joint_test(np.ones((1, 1, 1)), zscore, Cutoff.from_options())
    assert test.n_indep[0] == 1 and test.status[0] == 0
    np.testing.assert_allclose(test.pvalue, 2 * stats.norm.sf(2.5), rtol=1e-12)
    np.testing.assert_allclose(test.tmi, 1.0)


def test_joint_test_on_a_duplicated_context():
    correlation = np.array([[[1.0, 1.0, 0.2], [1.0, 1.0, 0.2], [0.2, 0.2, 1.0]]])
    zscores = np.array([[2.0, 2.0, -1.0]])
    test = joint_test(correlation, zscores, Cutoff.from_options())
    assert test.n_indep[0] == 2 and test.eigen_min[0] < 1e-12
    # the duplicate carries no new information: the statistic is that of the two distinct contexts
    two = np.array([[1.0, 0.2], [0.2, 1.0]])
    expected = np.array([2.0, -1.0]) @ np.linalg.inv(two) @ np.array([2.0, -1.0])
    np.testing.assert_allclose(test.statistic, expected, rtol=1e-10)
    np.testing.assert_allclose(test.tmi, 2.0, rtol=1e-10)
    tiny = joint_test(np.array([[[1.0]]]), np.array([[40.0]]), Cutoff.from_options())
    assert tiny.pvalue[0] == 0 and tiny.status[0] == -4  # below the numerical resolution of chi2


def test_folder_form_gives_the_same_results(fx, tmp_path):
    explicit, folder = tmp_path / "explicit.tsv", tmp_path / "folder.tsv"
    common = ["--snp_covariance", str(fx.covariance), "--gwas_file", str(fx.gwas), "--zscore_column", "Z"]
    assert main(["-q", "multixcan", *explicit_args(fx), *common, "--output", str(explicit)]) == 0
    assert main(["-q", "multixcan", "--models_folder", str(fx.root / "models"), "--models_name_pattern", "(.*).db",
                 "--metaxcan_folder", str(fx.root / "results"), "--metaxcan_filter", ".*csv",
                 "--metaxcan_file_name_parse_pattern", "(.*)__PM__(.*).csv", *common, "--output", str(folder)]) == 0
    assert explicit.read_bytes() == folder.read_bytes()
    default_names = tmp_path / "default_names.tsv"  # default naming: models by file name, results by their ending
    assert main(["-q", "multixcan", "--models-folder", str(fx.root / "models"), "--metaxcan-folder",
                 str(fx.root / "results"), *common, "--output", str(default_names)]) == 0
    assert default_names.read_bytes() == explicit.read_bytes()


def test_cleared_snps_gwas_folder_and_max_m(fx, tmp_path):
    cleared = tmp_path / "cleared.txt"
    cleared.write_text("rsid\n" + "\n".join(sorted(fx.cleared)) + "\n")
    by_gwas, by_list = tmp_path / "gwas.tsv", tmp_path / "list.tsv"
    assert main(["-q", "multixcan", *explicit_args(fx), "--snp-covariance", str(fx.covariance), "--gwas-file",
                 str(fx.gwas), "--zscore-column", "Z", "--output", str(by_gwas)]) == 0
    assert main(["-q", "multixcan", *explicit_args(fx), "--snp-covariance", str(fx.covariance), "--cleared-snps",
                 str(cleared), "--output", str(by_list)]) == 0
    assert by_gwas.read_bytes() == by_list.read_bytes()
    folder = tmp_path / "gwas"  # a study split into files (e.g. by chromosome), with a file to leave out
    folder.mkdir()
    lines = fx.gwas.read_text().splitlines(keepends=True)
    (folder / "part1.txt").write_text("".join(lines[:30]))
    (folder / "part2.txt").write_text(lines[0] + "".join(lines[30:]))
    (folder / "README").write_text("not a GWAS file\n")
    by_folder = tmp_path / "folder.tsv"
    assert main(["-q", "multixcan", *explicit_args(fx), "--snp-covariance", str(fx.covariance), "--gwas_folder",
                 str(folder), "--gwas_file_pattern", "part.*", "--zscore-column", "Z", "--output", str(by_folder)]) == 0
    assert by_folder.read_bytes() == by_gwas.read_bytes()
    first = tmp_path / "first.tsv"
    assert main(["-q", "multixcan", *explicit_args(fx), "--snp-covariance", str(fx.covariance), "--cleared-snps",
                 str(cleared), "--MAX_M", "2", "--output", str(first)]) == 0
    assert sorted(read_output(first)["gene"]) == ["G2", "G7"]  # the first two analysable genes of the file


def test_trimmed_ensembl_ids(fx, tmp_path):
    versioned = tmp_path / "versioned"
    shutil.copytree(fx.root, versioned)
    for db in (versioned / "models").glob("*.db"):
        with sqlite3.connect(db) as connection:
            connection.execute("UPDATE weights SET gene = gene || '.3'")
            connection.execute("UPDATE extra SET gene = gene || '.3'")
    plain, trimmed = tmp_path / "plain.tsv", tmp_path / "trimmed.tsv"
    common = ["--models-folder", str(versioned / "models"), "--metaxcan-folder", str(versioned / "results"),
              "--cleared-snps", str(tmp_path / "cleared.txt")]
    (tmp_path / "cleared.txt").write_text("rsid\n" + "\n".join(sorted(fx.cleared)) + "\n")
    assert main(["-q", "multixcan", *common, "--snp-covariance", str(fx.covariance), "--trimmed-ensemble-id",
                 "--output", str(trimmed)]) == 0
    assert main(["-q", "multixcan", "--models-folder", str(fx.root / "models"), "--metaxcan-folder",
                 str(fx.root / "results"), "--cleared-snps", str(tmp_path / "cleared.txt"), "--snp-covariance",
                 str(fx.covariance), "--output", str(plain)]) == 0
    assert trimmed.read_bytes() == plain.read_bytes()


# ---------------------------------------------------------------------------------------------------------
# user errors: one line each


def error_of(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit status 1, return the one-line error."""
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("enpact multixcan: error:")
    return lines[-1]


def test_user_errors_are_one_line(fx, tmp_path, capsys):
    out = tmp_path / "out.tsv"
    base = ["multixcan", "--snp-covariance", str(fx.covariance), "--gwas-file", str(fx.gwas), "--zscore-column", "Z",
            "--output", str(out)]
    twice = ["--context", "T1", str(fx.dbs["T1"]), str(fx.result_files["T1"])] * 2
    assert "T1 is given twice" in error_of(capsys, [*base, *twice])
    wrong = ["--context", "T1", str(fx.dbs["T3"]), str(fx.result_files["T1"])]
    assert "has results but is not in" in error_of(capsys, [*base, *wrong])
    assert "no GWAS SNP is in the models" in error_of(capsys, [*base, *explicit_args(fx), "--snp-column", "A2"])
    assert "give one cut-off option" in error_of(capsys, [*base, *explicit_args(fx), "--cutoff-eigen-ratio", "0.1",
                                                          "--cutoff-threshold", "0.1"])
    assert "give the contexts" in error_of(capsys, base)
    broken = tmp_path / "broken.txt"
    broken.write_text("\n".join(line for line in fx.covariance.read_text().splitlines()
                                if line != "G1 rs10 rs12 " + line.split()[-1]) + "\n")
    assert "G1 has no covariance for SNP pair rs10,rs12" in error_of(
        capsys, ["multixcan", *explicit_args(fx), "--snp-covariance", str(broken), "--gwas-file", str(fx.gwas),
                 "--zscore-column", "Z", "--output", str(out)])
    assert not out.exists()


def test_underscore_spellings_parse_like_hyphenated_ones():
    parser = build_parser()
    hyphen = parser.parse_args(["multixcan", "--models-folder", "m", "--metaxcan-folder", "r", "--snp-covariance", "c",
                                "--gwas-file", "g", "--cutoff-condition-number", "10", "--trimmed-ensemble-id",
                                "--MAX-M", "3", "--output", "o"])
    underscore = parser.parse_args(["multixcan", "--models_folder", "m", "--metaxcan_folder", "r", "--snp_covariance",
                                    "c", "--gwas_file", "g", "--cutoff_condition_number", "10",
                                    "--trimmed_ensemble_id", "--MAX_M", "3", "--output", "o"])
    assert from_arguments(hyphen.step.config, hyphen) == from_arguments(underscore.step.config, underscore)


def test_context_names_from_file_names(tmp_path):
    assert model_name(Path("TW_Adipose_0.5.db"), None) == "Adipose"
    assert model_name(Path("mashr_Liver.db"), "mashr_(.*).db") == "Liver"
    assert results_name(Path("height_Liver.csv"), None, ["Liver", "Brain_Liver"]) == "Liver"
    assert results_name(Path("height_Brain_Liver.csv"), None, ["Liver", "Brain_Liver"]) == "Brain_Liver"
    assert results_name(Path("h__PM__Liver.csv"), "(.*)__PM__(.*).csv", []) == "Liver"
    with pytest.raises(EnpactError, match="no model name ends"):
        results_name(Path("height.csv"), None, ["Liver"])


# ---------------------------------------------------------------------------------------------------------
# end to end on databases built by the pipeline's own steps


@dataclass
class Pipeline:
    study: object
    covariance: Path
    gwas: Path
    results: dict[str, Path]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    """Three contexts' databases from `enpact linearize` + `enpact database`, their joint covariance from `enpact
    covariance`, a GWAS keyed by varID and each context's `enpact twas` results."""
    root = tmp_path_factory.mktemp("multixcan_e2e")
    study = build_study(root)
    joint = root / "joint.txt.gz"
    assert main(["-q", "covariance", "--model-db-path", *map(str, study.dbs.values()), "--vcf", str(study.vcf),
                 "--samples-file", str(study.samples_file), "--out", str(joint)]) == 0
    rng = np.random.default_rng(8)
    lines = ["variant_id\teffect_allele\tnon_effect_allele\tzscore"]
    for record in study.records:
        chrom, pos, _, ref, alt = record[:5]
        lines.append(f"{chrom}_{pos}_{ref}_{alt}_b38\t{alt}\t{ref}\t{rng.normal(0, 2):.5f}")
    gwas = root / "gwas.tsv"
    gwas.write_text("\n".join(lines) + "\n")
    results = {}
    for context, db in study.dbs.items():
        results[context] = root / f"twas_{context}.csv"
        assert main(["-q", "twas", "--model-db-path", str(db), "--covariance", str(db.with_suffix(".txt.gz")),
                     "--gwas-file", str(gwas), "--snp-column", "variant_id", "--effect-allele-column",
                     "effect_allele", "--non-effect-allele-column", "non_effect_allele", "--zscore-column",
                     "zscore", "--model-db-snp-key", "varID", "--keep-non-rsid", "--output-file",
                     str(results[context])]) == 0
    return Pipeline(study, joint, gwas, results)


def pipeline_args(p: Pipeline, contexts: list[str] | None = None) -> list[str]:
    """The command line the pipeline runs: explicit contexts (all, or those named), varID keys."""
    contexts = [a for c in (contexts or sorted(p.results))
                for a in ("--context", c, str(p.study.dbs[c]), str(p.results[c]))]
    return ["multixcan", *contexts, "--snp-covariance", str(p.covariance), "--gwas-file", str(p.gwas),
            "--snp-column", "variant_id", "--effect-allele-column", "effect_allele", "--non-effect-allele-column",
            "non_effect_allele", "--zscore-column", "zscore", "--model-db-snp-key", "varID", "--keep-non-rsid"]


def test_end_to_end_on_pipeline_databases(pipeline, tmp_path):
    out, plot = tmp_path / "multixcan.tsv", tmp_path / "multixcan.qq.png"
    assert main(["-q", *pipeline_args(pipeline), "--output", str(out), "--qq-plot", str(plot)]) == 0
    assert plot.stat().st_size > 0
    results = read_output(out)
    assert list(results.columns) == COLUMNS
    assert sorted(results["gene"]) == sorted(CENTERS)
    assert (results["status"] == 0).all() and (results["n"] == 3).all()
    # against the plain reference on the same files
    twas = {c: pd.read_csv(path, na_values=["NA"], keep_default_na=False) for c, path in pipeline.results.items()}
    cov = pd.read_csv(pipeline.covariance, sep=" ")
    snps, models, sigma = {}, {}, {}
    for context, db in pipeline.study.dbs.items():
        with sqlite3.connect(db) as connection:
            rows = connection.execute("SELECT gene, varID, ref_allele, eff_allele, weight FROM weights").fetchall()
        models[context] = {}
        for gene, var_id, ref, eff, weight in rows:
            models[context].setdefault(gene, {})[var_id] = weight
            snps[var_id] = (ref, eff)
    for gene, block in cov.groupby("GENE", sort=False):
        members = list(dict.fromkeys([*block["RSID1"], *block["RSID2"]]))
        index = {s: i for i, s in enumerate(members)}
        matrix = np.zeros((len(members), len(members)))
        for a, b, v in zip(block["RSID1"], block["RSID2"], block["VALUE"]):
            matrix[index[a], index[b]] = matrix[index[b], index[a]] = v
        sigma[gene] = (members, matrix)
    synthetic = Synthetic(tmp_path, snps, models, sigma,
                          {c: dict(zip(t["gene"], t["zscore"])) for c, t in twas.items()}, set(snps))
    synthetic.covariance = pipeline.covariance
    expected = reference(synthetic)
    expected["gene_name"] = expected["gene"].map(lambda g: f"NAME_{g}")
    assert_same(results, expected)


def test_one_context_gives_the_s_predixcan_p_values(pipeline, tmp_path):
    """With one context, S-MultiXcan is S-PrediXcan: its p-values are the twas p-values."""
    out = tmp_path / "single.tsv"
    context = sorted(pipeline.results)[0]
    assert main(["-q", *pipeline_args(pipeline, [context]), "--output", str(out)]) == 0
    results = read_output(out).set_index("gene")
    twas = pd.read_csv(pipeline.results[context]).set_index("gene")
    np.testing.assert_allclose(results["pvalue"], twas.loc[results.index, "pvalue"], rtol=1e-9)
    assert (results["n_indep"] == 1).all() and results["z_sd"].isna().all()


# ---------------------------------------------------------------------------------------------------------
# optional: MetaXcan's own SMulTiXcan.py (point ENPACT_SMULTIXCAN at it; ENPACT_SMULTIXCAN_PYTHON at a Python with
# numpy < 2 and pandas < 2.2)


def smultixcan(models: Path, results: Path, covariance: Path, gwas_flags: list[str], out: Path,
               extra: list[str] = ()) -> pd.DataFrame:
    """Run SMulTiXcan.py on a models folder and a results folder (results named {study}__PM__{context}.csv)."""
    python = os.environ.get("ENPACT_SMULTIXCAN_PYTHON", sys.executable)
    subprocess.run([python, os.environ["ENPACT_SMULTIXCAN"], "--models_folder", str(models), "--models_name_pattern",
                    "(.*).db", "--snp_covariance", str(covariance), "--metaxcan_folder", str(results),
                    "--metaxcan_filter", ".*csv", "--metaxcan_file_name_parse_pattern", "(.*)__PM__(.*).csv",
                    *gwas_flags, *extra, "--output", str(out), "--throw", "--verbosity", "100"],
                   check=True, capture_output=True)
    return read_output(out)


@pytest.mark.skipif(not os.environ.get("ENPACT_SMULTIXCAN"), reason="ENPACT_SMULTIXCAN not set")
@pytest.mark.parametrize("option", list(CUTOFFS))
def test_agrees_with_smultixcan_on_synthetic_inputs(fx, tmp_path, option):
    flags = CUTOFFS[option][0] or ["--cutoff-condition-number", "30"]
    underscore = ["--" + f[2:].replace("-", "_") if f.startswith("--") else f for f in flags]
    theirs = smultixcan(fx.root / "models", fx.root / "results", fx.covariance,
                        ["--gwas_file", str(fx.gwas), "--zscore_column", "Z"], tmp_path / "theirs.tsv", underscore)
    ours = tmp_path / "ours.tsv"
    assert main(["-q", "multixcan", "--models_folder", str(fx.root / "models"), "--models_name_pattern", "(.*).db",
                 "--metaxcan_folder", str(fx.root / "results"), "--metaxcan_file_name_parse_pattern",
                 "(.*)__PM__(.*).csv", "--snp_covariance", str(fx.covariance), "--gwas_file", str(fx.gwas),
                 "--zscore_column", "Z", *flags, "--output", str(ours)]) == 0
    mine = read_output(ours)
    assert list(mine.columns) == list(theirs.columns)
    assert list(mine["gene"]) == list(theirs["gene"])  # same genes, same order
    largest = assert_same(mine, theirs, rtol=1e-9, atol=1e-12)
    print(f"{option}: largest |difference|: {describe(largest)}")


@pytest.mark.skipif(not os.environ.get("ENPACT_SMULTIXCAN"), reason="ENPACT_SMULTIXCAN not set")
@pytest.mark.parametrize("option", list(CUTOFFS))
def test_agrees_with_smultixcan_on_pipeline_databases(pipeline, tmp_path, option):
    """Our own covariance files hold shortest-form (up to 17-digit) values, which SMulTiXcan.py's pandas reads a few
    ulps off: the threshold ties must still be decided as there."""
    models, results = tmp_path / "models", tmp_path / "results"
    models.mkdir()
    results.mkdir()
    for context, db in pipeline.study.dbs.items():
        shutil.copy(db, models / f"{context}.db")
        shutil.copy(pipeline.results[context], results / f"gwas__PM__{context}.csv")
    gwas = ["--gwas_file", str(pipeline.gwas), "--snp_column", "variant_id", "--effect_allele_column", "effect_allele",
            "--non_effect_allele_column", "non_effect_allele", "--zscore_column", "zscore", "--keep_non_rsid",
            "--model_db_snp_key", "varID"]
    flags = CUTOFFS[option][0] or ["--cutoff-condition-number", "30"]
    underscore = ["--" + f[2:].replace("-", "_") if f.startswith("--") else f for f in flags]
    theirs = smultixcan(models, results, pipeline.covariance, gwas, tmp_path / "theirs.tsv", underscore)
    ours = tmp_path / "ours.tsv"
    assert main(["-q", *pipeline_args(pipeline), *flags, "--output", str(ours)]) == 0
    mine = read_output(ours)
    assert list(mine["gene"]) == list(theirs["gene"])
    largest = assert_same(mine, theirs, rtol=1e-9, atol=1e-12)
    print(f"pipeline databases, {option}: largest |difference|: {describe(largest)}")
