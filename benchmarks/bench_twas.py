"""Benchmark `enpact twas`: a synthetic model database (G genes x 20 SNPs), its covariance, and a gzipped GWAS
with R rows (the model SNPs among them); runs `enpact twas` (and optionally MetaXcan's SPrediXcan.py) on them as
child processes started the same way, and reports wall time, CPU time and peak RSS of each (imports included).

    python benchmarks/bench_twas.py                 # 20,000 genes, 10,000,000 GWAS rows
    python benchmarks/bench_twas.py --quick         # 2,000 genes, 200,000 rows
    python benchmarks/bench_twas.py --spredixcan /path/SPrediXcan.py --spredixcan-python /venv/bin/python

Prints one Markdown table row.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from measure import ChildRun, run_child

BASES = np.array(list("ACGT"))


def generate(directory: Path, genes: int, rows: int, snps_per_gene: int, seed: int) -> None:
    """Write model.db, covariance.txt.gz and gwas.txt.gz into `directory`."""
    import pandas as pd
    import polars as pl

    from enpact.predictdb import write_covariance, write_predictdb

    rng = np.random.default_rng(seed)
    n_model = genes * snps_per_gene
    if n_model > rows:
        raise SystemExit("--rows must be at least genes x SNPs per gene")
    # GWAS ids rs1..rsR; 90% of the model SNPs are in the GWAS, the rest have ids beyond R
    in_gwas = rng.random(n_model) < 0.9
    model_ids = np.where(in_gwas, rng.choice(rows, n_model, replace=False) + 1, rows + 1 + np.arange(n_model))
    ref_index = rng.integers(0, 4, rows + n_model + 1)
    alt_index = (ref_index + rng.integers(1, 4, ref_index.size)) % 4
    chrom = (np.arange(rows + n_model + 1) * 22 // (rows + n_model + 1)) + 1
    position = (np.arange(rows + n_model + 1) % 5_000_000) * 40 + 1
    gene_ids = np.array([f"ENSG{g:011d}" for g in range(genes)], dtype=object)
    gene_of = np.repeat(gene_ids, snps_per_gene)
    rsids = np.char.add("rs", model_ids.astype(str)).astype(object)
    var_ids = np.array([f"chr{c}_{p}_{BASES[r]}_{BASES[a]}_b38" for c, p, r, a in zip(
        chrom[model_ids], position[model_ids], ref_index[model_ids], alt_index[model_ids])], dtype=object)
    weights = pd.DataFrame({"gene": gene_of, "rsid": rsids, "varID": var_ids, "ref_allele": BASES[ref_index[model_ids]],
                            "eff_allele": BASES[alt_index[model_ids]], "weight": rng.normal(0, 0.2, n_model)})
    extra = pd.DataFrame({"gene": gene_ids, "genename": gene_ids, "gene_type": "protein_coding", "alpha": 0.5,
                          "n_snps_in_window": 500, "n.snps.in.model": snps_per_gene, "lambda_min": 0.01,
                          "cv_R2_avg": 0.1, "cv_R2_sd": 0.01, "in_sample_R2": 0.2, "rho_avg": 0.4, "rho_se": 0.02,
                          "rho_zscore": 5.0, "zscore_pval": 1e-6, "cv_fisher_pval": 1e-6, "pred.perf.R2": 0.16,
                          "pred.perf.pval": 1e-6, "pred.perf.qval": np.nan})
    write_predictdb(directory / "model.db", extra, weights, 500, "synthetic", [f"chr{c}" for c in range(1, 23)], 1)
    # covariance: per gene a random positive semi-definite 20 x 20 block, upper triangle in weights order
    factors = rng.normal(0, 0.3, (genes, snps_per_gene, snps_per_gene + 10))
    blocks = factors @ factors.transpose(0, 2, 1) / (snps_per_gene + 10)
    i, j = np.triu_indices(snps_per_gene)
    rsid_block = rsids.reshape(genes, snps_per_gene)
    covariance = pl.DataFrame({
        "GENE": np.repeat(gene_ids, len(i)), "RSID1": rsid_block[:, i].ravel(), "RSID2": rsid_block[:, j].ravel(),
        "VALUE": pl.Series(blocks[:, i, j].ravel()).cast(pl.Utf8),
    }, schema={"GENE": pl.Utf8, "RSID1": pl.Utf8, "RSID2": pl.Utf8, "VALUE": pl.Utf8})
    write_covariance(directory / "covariance.txt.gz", covariance)
    # GWAS: every id rs1..rsR; a tenth of the model SNPs have swapped alleles
    ids = np.arange(1, rows + 1)
    a1, a2 = alt_index[ids].copy(), ref_index[ids].copy()
    swap = np.zeros(rows + 1, dtype=bool)
    swap[model_ids[in_gwas][rng.random(in_gwas.sum()) < 0.1]] = True
    a1[swap[ids]], a2[swap[ids]] = ref_index[ids][swap[ids]], alt_index[ids][swap[ids]]
    beta = rng.normal(0, 0.02, rows)
    se = rng.uniform(0.005, 0.03, rows)
    gwas = pl.DataFrame({
        "SNP": "rs" + pl.Series(ids).cast(pl.Utf8),
        "CHR": chrom[ids], "BP": position[ids], "A1": BASES[a1], "A2": BASES[a2], "BETA": beta, "SE": se,
        "P": 2 * _normal_cdf(-np.abs(beta / se)),
    })
    gwas.write_csv(directory / "gwas.txt.gz", separator="\t", compression="gzip", compression_level=6,
                   float_scientific=True, float_precision=5)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF."""
    from scipy.special import ndtr

    return ndtr(x)


def twas_arguments(directory: Path, output: Path) -> list[str]:
    """SPrediXcan.py-compatible flags for the generated inputs."""
    return ["--model_db_path", str(directory / "model.db"), "--covariance", str(directory / "covariance.txt.gz"),
            "--gwas_file", str(directory / "gwas.txt.gz"), "--snp_column", "SNP", "--effect_allele_column", "A1",
            "--non_effect_allele_column", "A2", "--beta_column", "BETA", "--se_column", "SE", "--pvalue_column", "P",
            "--output_file", str(output)]


def time_spredixcan(python: str, script: str, directory: Path) -> ChildRun:
    """SPrediXcan.py on the generated inputs."""
    command = [python, script, *twas_arguments(directory, directory / "spx.csv"), "--throw", "--overwrite"]
    return run_child(command, directory / "spredixcan.log", "SPrediXcan.py")


def time_enpact(directory: Path) -> ChildRun:
    """`enpact twas` on the generated inputs, started the same way as SPrediXcan.py."""
    command = [sys.executable, "-m", "enpact", "-q", "twas", *twas_arguments(directory, directory / "enpact.csv")]
    return run_child(command, directory / "enpact.log", "enpact twas")


def z_difference(directory: Path) -> float:
    """Largest |z(enpact) - z(SPrediXcan.py)| over genes (NaN-aware)."""
    import pandas as pd

    ours = pd.read_csv(directory / "enpact.csv").set_index("gene")
    theirs = pd.read_csv(directory / "spx.csv").set_index("gene")
    if sorted(ours.index) != sorted(theirs.index):
        raise SystemExit("enpact and SPrediXcan.py tested different genes")
    return float((ours["zscore"] - theirs.loc[ours.index, "zscore"]).abs().max())


def main() -> int:
    """Generate, time, print a Markdown table row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--snps-per-gene", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2,000 genes x 200,000 GWAS rows")
    parser.add_argument("--outdir", type=Path, help="keep inputs here (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="reuse inputs already in --outdir (same sizes)")
    parser.add_argument("--spredixcan", help="also time MetaXcan's SPrediXcan.py at this path")
    parser.add_argument("--spredixcan-python", default=sys.executable,
                        help="Python for SPrediXcan.py (numpy<2.4, pandas<3)")
    args = parser.parse_args()
    if args.quick:
        args.genes, args.rows = 2_000, 200_000
    with tempfile.TemporaryDirectory(prefix="bench_twas_") as scratch:
        directory = args.outdir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        inputs = [directory / n for n in ("model.db", "covariance.txt.gz", "gwas.txt.gz")]
        if not (args.reuse and all(p.exists() for p in inputs)):
            # in a child, so that this process stays small: a child's peak RSS includes its parent's at fork
            child = multiprocessing.get_context("spawn").Process(
                target=generate, args=(directory, args.genes, args.rows, args.snps_per_gene, args.seed))
            child.start()
            child.join()
            if child.exitcode:
                return child.exitcode
        generated = time.perf_counter() - start
        gwas_mb = (directory / "gwas.txt.gz").stat().st_size / 2**20

        ours = time_enpact(directory)
        other = ""
        if args.spredixcan:
            theirs = time_spredixcan(args.spredixcan_python, args.spredixcan, directory)
            other = (f" {theirs.wall_seconds:.1f} s, {theirs.peak_rss_mb:.0f} MB "
                     f"({theirs.wall_seconds / ours.wall_seconds:.1f}x), max abs z diff {z_difference(directory):.1e} |")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = f"{platform.machine()}, {cores} usable CPUs, Python {platform.python_version()}"
    print(f"inputs generated in {generated:.1f} s", file=sys.stderr)
    print("| genes x SNPs | GWAS rows | GWAS .gz MB | enpact twas wall s | CPU s | peak RSS MB |"
          + (" SPrediXcan.py (same inputs) |" if other else "")
          + " machine |")
    print("|---|---|---|---|---|---|" + ("---|" if other else "") + "---|")
    print(f"| {args.genes:,} x {args.snps_per_gene} | {args.rows:,} | {gwas_mb:.0f} | {ours.wall_seconds:.1f} | "
          f"{ours.cpu_seconds:.1f} | {ours.peak_rss_mb:.0f} |{other} "
          f"{machine} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
