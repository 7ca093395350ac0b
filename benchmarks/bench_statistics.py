"""What issue 25's exact statistics cost: S-MultiXcan under --cutoff-threshold, where every gene's boundary
component is a tie that is decided again in SMulTiXcan.py's order of operations, against the condition-number
cut-off (vectorised only); and the elastic net with nested cross-validation (lin_nested_cv) against without.

    python benchmarks/bench_statistics.py [--genes 2000] [--contexts 20] [--loci 20] [--outdir benchmarks/out]

Prints markdown tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import numpy as np

from enpact.cli import main as enpact
from enpact.glmnet import fit_elastic_net_cv


def write_multixcan_inputs(folder: Path, n_genes: int, n_contexts: int, seed: int = 0) -> list[str]:
    """Databases, S-PrediXcan-style results, a joint SNP covariance and a GWAS; returns the --context arguments."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines, gwas, models = ["GENE RSID1 RSID2 VALUE"], ["SNP A1 A2 Z"], {}
    for g in range(n_genes):
        gene, snps = f"G{g:05d}", [f"rs{g}_{j}" for j in range(int(rng.integers(10, 31)))]
        dose = rng.binomial(2, rng.uniform(0.1, 0.5, len(snps)), size=(200, len(snps))).astype(float)
        sigma = np.cov(dose, rowvar=False)
        lines += [f"{gene} {snps[i]} {snps[j]} {float(sigma[i, j])!r}" for i in range(len(snps))
                  for j in range(i, len(snps))]
        gwas += [f"{snp} G A {rng.normal():.4f}" for snp in snps]
        models[gene] = snps
    (folder / "covariance.txt").write_text("\n".join(lines) + "\n")
    (folder / "gwas.txt").write_text("\n".join(gwas) + "\n")
    arguments = []
    for c in range(n_contexts):
        db, results = folder / f"C{c:02d}.db", folder / f"study__PM__C{c:02d}.csv"
        db.unlink(missing_ok=True)
        with sqlite3.connect(db) as connection:
            connection.execute("CREATE TABLE weights (rsid TEXT, gene TEXT, weight DOUBLE, ref_allele CHARACTER, "
                               "eff_allele CHARACTER, varID TEXT)")
            connection.execute("CREATE TABLE extra (gene TEXT, genename TEXT, `n.snps.in.model` INTEGER, "
                               "`pred.perf.R2` DOUBLE, `pred.perf.pval` DOUBLE, `pred.perf.qval` DOUBLE)")
            for gene, snps in models.items():
                chosen = rng.choice(snps, int(rng.integers(2, 8)), replace=False)
                connection.executemany("INSERT INTO weights VALUES (?, ?, ?, 'A', 'G', ?)",
                                       [(s, gene, float(rng.normal()), s) for s in chosen])
                connection.execute("INSERT INTO extra VALUES (?, ?, ?, 0.1, 0.01, NULL)", (gene, gene, len(chosen)))
        results.write_text("gene,gene_name,zscore,effect_size,pvalue\n" + "".join(
            f"{gene},{gene},{rng.normal(0, 2)!r},NA,0.5\n" for gene in models))
        arguments += ["--context", f"C{c:02d}", str(db), str(results)]
    return arguments


def time_multixcan(folder: Path, contexts: list[str], cutoff: list[str]) -> float:
    """Wall seconds of one `enpact multixcan` call."""
    started = time.perf_counter()
    assert enpact(["-q", "multixcan", *contexts, "--snp-covariance", str(folder / "covariance.txt"), "--gwas-file",
                   str(folder / "gwas.txt"), "--zscore-column", "Z", *cutoff, "--output",
                   str(folder / "out.tsv")]) == 0
    return time.perf_counter() - started


def time_nested_cv(n_loci: int, n_samples: int, n_snps: int, seed: int = 0) -> tuple[float, float]:
    """Seconds per locus of the elastic-net CV without and with nested cross-validation (sparse planted effects)."""
    rng = np.random.default_rng(seed)
    fit_elastic_net_cv(rng.normal(size=(n_samples, 3)), rng.normal(size=n_samples), nested_cv=True)  # compile
    plain = nested = 0.0
    for _ in range(n_loci):
        X = rng.binomial(2, rng.uniform(0.05, 0.5, n_snps), size=(n_samples, n_snps)).astype(float)
        y = X[:, :5] @ rng.normal(size=5) + rng.normal(size=n_samples)
        started = time.perf_counter()
        fit_elastic_net_cv(X, y)
        plain += time.perf_counter() - started
        started = time.perf_counter()
        fit_elastic_net_cv(X, y, nested_cv=True)
        nested += time.perf_counter() - started
    return plain / n_loci, nested / n_loci


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--contexts", type=int, default=20)
    parser.add_argument("--loci", type=int, default=20)
    parser.add_argument("--outdir", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    folder = args.outdir / "statistics_multixcan"
    contexts = write_multixcan_inputs(folder, args.genes, args.contexts)
    time_multixcan(folder, contexts, [])  # warm: imports, numba, page cache
    condition = time_multixcan(folder, contexts, ["--cutoff-condition-number", "30"])
    threshold = time_multixcan(folder, contexts, ["--cutoff-threshold", "0.05"])
    print(f"`enpact multixcan`, {args.genes:,} genes x {args.contexts} contexts (10-30 SNPs per gene, 2-7 per "
          "model), wall seconds:\n")
    print("| cut-off | seconds | genes decided again in SMulTiXcan.py's order |")
    print("|---|---:|---|")
    print(f"| condition number 30 (vectorised) | {condition:.1f} | only those with a singular value within 1e-9 of "
          "the cut-off |")
    print(f"| threshold 0.05 | {threshold:.1f} | every gene with 2 or more contexts (the cut-off is an eigenvalue) |")
    print()
    for n_samples, n_snps in ((80, 100), (500, 300)):
        plain, nested = time_nested_cv(args.loci, n_samples, n_snps)
        if n_samples == 80:
            print("Elastic-net CV per locus (10 folds, alpha 0.5; nested: 5 outer folds, each with the 10-fold inner "
                  f"CV), mean of {args.loci} loci:\n")
            print("| individuals x variants | seconds per locus | with nested CV | ratio |")
            print("|---|---:|---:|---:|")
        print(f"| {n_samples} x {n_snps} | {plain:.3f} | {nested:.3f} | {nested / plain:.1f}x |")


if __name__ == "__main__":
    main()
