#!/usr/bin/env python
"""Benchmark: per-locus cross-validated elastic net, enpact.glmnet against R glmnet (cv.glmnet).

Problems are 500 individuals x 200 / 1,000 / 2,000 variants of msprime genotypes (constant Ne 10^4,
mu 1.25e-8, r 1e-8; variants with MAF >= 0.01); y cycles over three kinds of locus (sparse causal variants
plus noise, dense small effects as a sequence model's predictions have, pure noise); 10 folds, alpha 0.5. Both sides get the same X, y and fold ids; glmnet builds its own lambda sequence, ours must equal
it. glmnet is timed inside R around cv.glmnet only; ours around fit_elastic_net_cv after a warm-up call
(the numba compile cost is measured separately, in fresh processes, cold and from the on-disk cache).

    python benchmarks/bench_linearize.py            # 500 x {200, 1000, 2000}, 5 loci each
    python benchmarks/bench_linearize.py --quick    # 200 x {100, 400}, 2 loci each
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enpact.glmnet import assign_folds, fit_elastic_net_cv

logger = logging.getLogger("bench_linearize")

GLMNET_SCRIPT = Path(__file__).resolve().parent / "glmnet_fit.R"


# --------------------------------------------------------------------------------------------- R glmnet side


@dataclass(frozen=True)
class GlmnetJob:
    """One cv.glmnet call for glmnet_fit.R."""

    name: str
    X: np.ndarray
    y: np.ndarray
    fold_ids: np.ndarray  # 0-based, as enpact uses them
    alpha: float = 0.5
    thresh: float = 1e-7
    reps: int = 1


def glmnet_available() -> str | None:
    """None when Rscript and the glmnet package are usable, else why not."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH (install r-base-core)"
    probe = subprocess.run(["Rscript", "-e", "suppressMessages(library(glmnet))"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"R package glmnet is not installed (r-cran-glmnet): {probe.stderr.strip()[:200]}"
    return None


def run_glmnet(jobs: list[GlmnetJob], workdir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Run glmnet_fit.R on the jobs; per job name, each output key mapped to its values."""
    workdir.mkdir(parents=True, exist_ok=True)
    rows = ["name\tn\tp\talpha\tthresh\treps\tprefix"]
    for job in jobs:
        prefix = workdir / job.name
        np.asfortranarray(job.X, dtype="<f8").ravel(order="F").tofile(f"{prefix}.x.f64")
        np.asarray(job.y, dtype="<f8").tofile(f"{prefix}.y.f64")
        (np.asarray(job.fold_ids) + 1).astype("<i4").tofile(f"{prefix}.fold.i32")
        rows.append(f"{job.name}\t{job.X.shape[0]}\t{job.X.shape[1]}\t{job.alpha!r}\t{job.thresh!r}\t"
                    f"{job.reps}\t{prefix}")
    manifest = workdir / "manifest.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    done = subprocess.run(["Rscript", str(GLMNET_SCRIPT), str(manifest), str(workdir)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"glmnet_fit.R failed: {done.stderr.strip()}")
    return {job.name: read_glmnet_result(workdir / f"{job.name}.txt") for job in jobs}


def read_glmnet_result(path: Path) -> dict[str, np.ndarray]:
    """Parse glmnet_fit.R's 'key v1 v2 ...' lines."""
    result = {}
    for line in path.read_text().splitlines():
        key, *values = line.split(" ")
        result[key] = np.array([float(v) if v != "NA" else np.nan for v in values])
    return result


# --------------------------------------------------------------------------------------------- problems


def simulate_genotypes(n_individuals: int, n_variants: int, seed: int) -> np.ndarray:
    """Alt-allele dosages (n, p) of msprime diploids, the first p variants with MAF >= 0.01."""
    import msprime

    # about 1.2 variants with MAF >= 0.01 per kb at 1,000 haplotypes; simulate enough sequence
    length = max(50_000, int(n_variants * 1_600 * (1_000 / (2 * n_individuals)) ** 0.2))
    while True:
        ts = msprime.sim_ancestry(samples=n_individuals, ploidy=2, population_size=10_000,
                                  sequence_length=length, recombination_rate=1e-8, random_seed=seed)
        ts = msprime.sim_mutations(ts, rate=1.25e-8, random_seed=seed, discrete_genome=True)
        haplotypes = ts.genotype_matrix()  # (sites, 2n) allele indices
        haplotypes = np.minimum(haplotypes, 1)  # multi-allelic sites: any non-ancestral allele counts as alt
        dosages = (haplotypes[:, 0::2] + haplotypes[:, 1::2]).T.astype(np.float64)
        frequency = dosages.mean(axis=0) / 2
        keep = (frequency >= 0.01) & (frequency <= 0.99)
        if keep.sum() >= n_variants:
            return np.ascontiguousarray(dosages[:, keep][:, :n_variants])
        length = int(length * 1.5)


TRAIT_KINDS = ("sparse", "dense", "null")


def simulate_trait(X: np.ndarray, seed: int, kind: str = "sparse") -> np.ndarray:
    """A y for one locus.

    sparse: 1-5 causal variants explaining 2-40 % of the variance, plus noise (expression-like).
    dense: every variant has a small effect that decays away from the window centre, plus one pairwise
    interaction and 5 % noise: what a sequence model's personalized prediction looks like.
    null: noise only.
    """
    rng = np.random.default_rng(seed)
    n, p = X.shape
    if kind == "null":
        return rng.normal(size=n)
    if kind == "dense":
        distance = np.abs(np.arange(p) - p / 2) / (p / 6)
        genetic = X @ (rng.normal(size=p) * np.exp(-distance))
        a, b = rng.choice(p, 2, replace=False)
        genetic = genetic + 0.3 * genetic.std() * (X[:, a] * X[:, b] - np.mean(X[:, a] * X[:, b]))
        return genetic + rng.normal(scale=np.sqrt(0.05 / 0.95) * genetic.std(), size=n)
    n_causal = int(rng.integers(1, 6))
    causal = rng.choice(p, n_causal, replace=False)
    genetic = X[:, causal] @ rng.normal(size=n_causal)
    heritability = rng.uniform(0.02, 0.4)
    noise_sd = np.sqrt(np.var(genetic) * (1 - heritability) / heritability) if np.var(genetic) > 0 else 1.0
    return genetic + rng.normal(scale=noise_sd, size=n)


# --------------------------------------------------------------------------------------------- measures


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index of two selected-variant index sets (1 when both are empty)."""
    sa, sb = set(np.flatnonzero(a).tolist()), set(np.flatnonzero(b).tolist())
    return 1.0 if not sa and not sb else len(sa & sb) / len(sa | sb)


def log10_gap(a: float, b: float) -> float:
    """|log10 a - log10 b| of two p-values, floored at 1e-300; 0 when both are NaN, inf when one is."""
    if np.isnan(a) or np.isnan(b):
        return 0.0 if np.isnan(a) and np.isnan(b) else float("inf")
    return abs(np.log10(max(a, 1e-300)) - np.log10(max(b, 1e-300)))


def one_sided_zscore_pval(ref: dict[str, np.ndarray]) -> float:
    """R's PredictDB zscore_pval (two-sided) as EnPACT reports it: one-sided, Phi(-Z), and at least 0.5 unless
    rho_avg > 0 (docs/linearization-stats.md); NaN when glmnet selected no SNP."""
    if "zscore_pval" not in ref:
        return float("nan")
    stouffer, two_sided = float(ref["rho_zscore"][0]), float(ref["zscore_pval"][0])
    one_sided = two_sided / 2 if stouffer > 0 else 1 - two_sided / 2
    return one_sided if ref["rho_avg"][0] > 0 else max(one_sided, 0.5)


def measure_start_up() -> tuple[float, float, float]:
    """Fresh-process seconds: importing enpact.glmnet, first tiny fit compiling cold, first fit from cache."""
    code = ("import time; t0 = time.perf_counter(); import numpy as np; "
            "from enpact.glmnet import fit_elastic_net_cv; t1 = time.perf_counter(); "
            "r = np.random.default_rng(0); X = r.integers(0, 3, (60, 8)).astype(float); "
            "fit_elastic_net_cv(X, X[:, 0] + r.normal(size=60)); print(t1 - t0, time.perf_counter() - t1)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
                for _ in range(2)]
    (import_s, cold_s), (_, cached_s) = (map(float, run.stdout.split()) for run in runs)
    return import_s, cold_s, cached_s


def compare(fit, ref: dict[str, np.ndarray]) -> dict[str, float]:
    """Agreement of one locus: same lambda_min, |d rho_avg|, |d log10 zscore_pval|, Jaccard, lambda_min gap."""
    ref_rho = ref["rho_avg"][0] if "rho_avg" in ref else np.nan  # absent: glmnet selected no SNP
    rho_gap = abs(fit.rho_avg - ref_rho) if not (np.isnan(fit.rho_avg) or np.isnan(ref_rho)) else (
        0.0 if np.isnan(fit.rho_avg) and np.isnan(ref_rho) else float("inf"))
    return dict(
        same_lambda_min=int(ref["index_min"][0]) - 1 == fit.lambda_index,
        rho=rho_gap,
        logp=log10_gap(fit.zscore_pval, one_sided_zscore_pval(ref)),
        jaccard=jaccard(fit.weights, ref["beta_min"]),
        lambda_gap=abs(fit.lambda_min / ref["lambda_min"][0] - 1),
    )


def time_ours(X: np.ndarray, y: np.ndarray, folds: np.ndarray, reps: int):
    """Best-of-reps seconds of fit_elastic_net_cv, and its result."""
    best, fit = np.inf, None
    for _ in range(reps):
        started = time.perf_counter()
        fit = fit_elastic_net_cv(X, y, alpha=0.5, fold_ids=folds)
        best = min(best, time.perf_counter() - started)
    return best, fit


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small run: 200 x {100, 400}, 2 loci each")
    parser.add_argument("--loci", type=int, default=None, help="loci per size (default 5, quick 2)")
    parser.add_argument("--reps", type=int, default=3, help="timing repetitions per locus, best kept")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("msprime").setLevel(logging.WARNING)
    reason = glmnet_available()
    if reason:
        print(f"cannot run the glmnet side: {reason}", file=sys.stderr)
        return 1
    n, sizes = (200, (100, 400)) if args.quick else (500, (200, 1_000, 2_000))
    n_loci = args.loci or (2 if args.quick else 5)

    import_s, cold_s, cached_s = measure_start_up()
    warm_X = np.random.default_rng(0).integers(0, 3, (60, 8)).astype(float)
    fit_elastic_net_cv(warm_X, warm_X[:, 0] + np.arange(60) % 3)  # compile (or load) before timing

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in sizes:
            ours_s, r_s, agreement = [], [], []
            for locus in range(n_loci):  # side by side, locus by locus: the machine's load hits both alike
                seed = args.seed * 1_000 + p + locus
                X = simulate_genotypes(n, p, seed)
                kind = TRAIT_KINDS[locus % len(TRAIT_KINDS)]
                y = simulate_trait(X, seed, kind)
                folds = assign_folds(n, 10, seed)
                seconds, fit = time_ours(X, y, folds, args.reps)
                job = GlmnetJob(f"p{p}_l{locus}", X, y, folds, reps=args.reps)
                ref = run_glmnet([job], Path(tmp))[job.name]
                ours_s.append(seconds)
                r_s.append(float(ref["elapsed"].min()))
                agreement.append(compare(fit, ref))
                logger.info("p=%d locus %d (%s): enpact %.3f s, glmnet %.3f s, %d SNPs in model", p, locus, kind,
                            seconds, r_s[-1], fit.n_snps_in_model)
            rows.append((p, np.mean(ours_s), np.mean(r_s), agreement))

    print(f"\nElastic-net CV per locus: n = {n}, 10 folds, alpha 0.5, {n_loci} msprime loci per row "
          f"(y kinds cycling {', '.join(TRAIT_KINDS)}), "
          f"best of {args.reps} timings. Start-up in a fresh process: import {import_s:.1f} s, first fit "
          f"{cold_s:.1f} s with a cold numba cache, {cached_s:.1f} s from the cache\n")
    print("| variants | enpact s/locus | glmnet s/locus | ratio | same lambda_min | max abs d rho_avg "
          "| max abs d log10 zscore_pval | min Jaccard | max rel d lambda_min |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p, ours, theirs, agreement in rows:
        same = sum(a["same_lambda_min"] for a in agreement)
        print(f"| {p} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.2f} | {same}/{len(agreement)} "
              f"| {max(a['rho'] for a in agreement):.2e} | {max(a['logp'] for a in agreement):.2e} "
              f"| {min(a['jaccard'] for a in agreement):.3f} | {max(a['lambda_gap'] for a in agreement):.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
