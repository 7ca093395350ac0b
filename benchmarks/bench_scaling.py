"""End-to-end scaling of `enpact run`: wall time and peak memory as loci double and as individuals double.

Subsets of the bundled demo (src/enpact/data/demo: tiny Enformer, 240 autosomal genes, 80 phased individuals):
a smaller annotation (every k-th row of genes.tsv, so the subsets are nested and spread over all six
chromosomes, chrX left out) and a `samples` file with the first N individuals; every other parameter is the
demo's (`enpact.params.demo_params()`). Each configuration runs `enpact run --params FILE` in a fresh child
process with an empty output directory and one OMP/torch thread by default (--threads); wall time is measured
around the child, peak memory is the child's ru_maxrss (from os.wait4, i.e. RUSAGE_CHILDREN of that one child).
The predictor's share comes from `pipeline_info/timings.tsv` (its `predictor` row: seconds spent inside the
predictor during the reference and personalize steps), the number of windows from `report/summary.json`
(personalized.windows_predicted; plus one reference window per locus for the reference step).

The fits (least squares, R^2 and largest relative residual): the personalize step's time on W = windows predicted
(the sum over loci of each locus's distinct windows, i.e. loci x unique windows per locus); the predictor's time on
its passes; and the whole run's wall and CPU time on W and loci (`t = a + b W + c L`; a is the fixed start-up:
imports, loading the predictor, plots).

    python benchmarks/bench_scaling.py --size quick   # loci 30/60/120 x 20 individuals; 20/40/80 individuals x 60 loci
    python benchmarks/bench_scaling.py --size full    # loci 60/120/240 x 80 individuals; 20/40/80 x 240 loci
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from measure import run_enpact, write_json

SIZES = {
    "quick": {"loci": [30, 60, 120], "loci_at_individuals": 20, "individuals": [20, 40, 80], "individuals_at_loci": 60},
    "full": {"loci": [60, 120, 240], "loci_at_individuals": 80, "individuals": [20, 40, 80],
             "individuals_at_loci": 240},
}


def demo_inputs() -> tuple[dict, list[str], list[str]]:
    """Demo parameters, the autosomal genes.tsv rows (header first) and the VCF's samples."""
    from enpact.params import demo_dir, demo_params
    from enpact.variants import VcfReader

    params = demo_params()
    rows = (demo_dir() / "genes.tsv").read_text().splitlines()
    header, genes = rows[0], [r for r in rows[1:] if r.split("\t")[3] != "chrX"]
    samples = VcfReader(params["vcf"]).samples
    return params, [header] + genes, samples


def write_config(workdir: Path, params: dict, gene_rows: list[str], samples: list[str], n_loci: int,
                 n_individuals: int) -> Path:
    """Annotation subset, samples file and parameter file of one configuration; returns the parameter file."""
    header, genes = gene_rows[0], gene_rows[1:]
    if n_loci > len(genes) or n_individuals > len(samples):
        raise SystemExit(f"the demo has {len(genes)} autosomal genes and {len(samples)} individuals")
    step = len(genes) / n_loci
    chosen = [genes[int(i * step)] for i in range(n_loci)]
    tag = f"L{n_loci}_N{n_individuals}"
    directory = workdir / tag
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    (directory / "genes.tsv").write_text("\n".join([header] + chosen) + "\n")
    (directory / "samples.txt").write_text("\n".join(samples[:n_individuals]) + "\n")
    config = dict(params, annotation=str(directory / "genes.tsv"), annotation_format="tsv",
                  samples=str(directory / "samples.txt"), outdir=str(directory / "results"),
                  # the benchmark measures cost: small panels may leave no model past the filters
                  allow_empty_results=True)
    path = directory / "params.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def run_config(params_file: Path, threads: int) -> dict:
    """`enpact run` in a child process: wall seconds, peak RSS, timings and windows predicted."""
    outdir = Path(json.loads(params_file.read_text())["outdir"])
    run, groups = run_enpact(params_file, threads)
    summary = json.loads((outdir / "report" / "summary.json").read_text())
    personalized = summary["personalized"]
    return {"wall_seconds": run.wall_seconds, "peak_rss_mb": run.peak_rss_mb, "cpu_seconds": run.cpu_seconds,
            "groups": groups,
            "predictor_seconds": groups.get("predictor", float("nan")),
            "pipeline_seconds": groups.get("total", float("nan")),
            "loci": personalized["loci"], "individuals": personalized["samples"],
            "windows_predicted": personalized["windows_predicted"],
            "haplotype_windows": personalized["haplotype_windows"],
            "reference_windows": personalized["loci"]}


def linear_fit(x: np.ndarray, y: np.ndarray) -> dict:
    """Least squares y = a + b x: coefficients, R^2 and the largest |residual| / y."""
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    fitted = a + b * x
    ss_res, ss_tot = float(((y - fitted) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return {"intercept": float(a), "slope": float(b), "r2": 1 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "max_rel_residual": float(np.max(np.abs(y - fitted) / y)), "points": int(len(x))}


def multi_fit(columns: list[np.ndarray], y: np.ndarray) -> dict:
    """Least squares y = a + sum_k b_k x_k: coefficients, R^2 and the largest |residual| / y."""
    design = np.column_stack([np.ones_like(y)] + columns)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    fitted = design @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"coefficients": [float(c) for c in coef],
            "r2": float(1 - ((y - fitted) ** 2).sum() / ss_tot) if ss_tot > 0 else float("nan"),
            "max_rel_residual": float(np.max(np.abs(y - fitted) / y)), "points": int(len(y))}


def analyse(runs: list[dict]) -> dict:
    """Fits: wall and CPU time on windows predicted and loci; personalize step on windows; predictor on passes."""
    windows = np.array([r["windows_predicted"] for r in runs], float)
    passes = windows + np.array([r["reference_windows"] for r in runs], float)
    loci = np.array([r["loci"] for r in runs], float)
    wall = np.array([r["wall_seconds"] for r in runs])
    return {"wall_vs_windows_and_loci": multi_fit([windows, loci], wall),
            "cpu_vs_windows_and_loci": multi_fit([windows, loci], np.array([r["cpu_seconds"] for r in runs])),
            "wall_vs_windows": linear_fit(windows, wall),
            "personalize_vs_windows": linear_fit(windows, np.array([r["groups"].get("personalize", np.nan)
                                                                     for r in runs])),
            "predictor_vs_passes": linear_fit(passes, np.array([r["predictor_seconds"] for r in runs]))}


def verdict(fits: dict) -> str:
    """How linear the cost is, in words."""
    w, c = fits["wall_vs_windows_and_loci"], fits["cpu_vs_windows_and_loci"]
    s, p = fits["personalize_vs_windows"], fits["predictor_vs_passes"]
    return (f"personalize step = {s['intercept']:.2f} s + {1000 * s['slope']:.2f} ms x windows predicted "
            f"(R^2 {s['r2']:.4f}, largest residual {100 * s['max_rel_residual']:.0f} %); predictor = "
            f"{p['intercept']:.2f} s + {1000 * p['slope']:.2f} ms x passes (R^2 {p['r2']:.4f}); whole run: wall = "
            f"{w['coefficients'][0]:.1f} s + {1000 * w['coefficients'][1]:.2f} ms x windows + "
            f"{1000 * w['coefficients'][2]:.1f} ms x loci (R^2 {w['r2']:.3f}, largest residual "
            f"{100 * w['max_rel_residual']:.0f} %), CPU time = {c['coefficients'][0]:.1f} s + "
            f"{1000 * c['coefficients'][1]:.2f} ms x windows + {1000 * c['coefficients'][2]:.1f} ms x loci "
            f"(R^2 {c['r2']:.3f}, largest residual {100 * c['max_rel_residual']:.0f} %)")


def markdown(result: dict) -> str:
    """Table of runs and the fits."""
    lines = ["| series | loci | individuals | windows predicted (+ reference) | haplotype windows | wall s | CPU s | "
             "predictor s (share of wall) | personalize step s | reference step s (incl. model load) | "
             "peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:
        lines.append(f"| {r['series']} | {r['loci']} | {r['individuals']} | {r['windows_predicted']:,} "
                     f"(+{r['reference_windows']}) | {r['haplotype_windows']:,} | {r['wall_seconds']:.1f} | "
                     f"{r['cpu_seconds']:.1f} | "
                     f"{r['predictor_seconds']:.1f} ({100 * r['predictor_seconds'] / r['wall_seconds']:.0f} %) | "
                     f"{r['groups'].get('personalize', 0):.1f} | {r['groups'].get('reference', 0):.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    lines += ["", f"Fits (least squares over the {len(result['runs'])} runs): {result['verdict']}."]
    if result.get("repeats", 1) > 1:
        lines += ["", f"Each configuration ran {result['repeats']} times; the fastest run is shown."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every configuration, fit, print Markdown, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("quick", "full"), default="full")
    parser.add_argument("--quick", action="store_true", help="same as --size quick")
    parser.add_argument("--outdir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP/torch threads of each run (default 1: on a shared machine, many short "
                             "multi-threaded passes of the tiny model mostly wait on thread barriers when another "
                             "process holds a core)")
    parser.add_argument("--repeats", type=int, help="runs per configuration, fastest kept (default 1 quick, 2 full)")
    parser.add_argument("--keep", action="store_true", help="keep every run's results directory")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    size = "quick" if args.quick else args.size
    plan = SIZES[size]
    workdir = args.outdir / f"scaling_{size}"
    workdir.mkdir(parents=True, exist_ok=True)
    params, gene_rows, samples = demo_inputs()
    configs = [("loci", n, plan["loci_at_individuals"]) for n in plan["loci"]]
    configs += [("individuals", plan["individuals_at_loci"], n) for n in plan["individuals"]
                if (plan["individuals_at_loci"], n) not in {(c[1], c[2]) for c in configs}]
    # warm-up: a first run pays one-off costs (numba compiling into its on-disk cache, cold file caches)
    warm = run_config(write_config(workdir, params, gene_rows, samples, min(plan["loci"]),
                                   min(plan["individuals"])), args.threads)
    print(f"  warm-up run (not counted): {warm['wall_seconds']:.1f} s", file=sys.stderr, flush=True)
    runs = []
    repeats = args.repeats or (1 if size == "quick" else 2)
    for series, n_loci, n_individuals in configs:
        tries = [run_config(write_config(workdir, params, gene_rows, samples, n_loci, n_individuals), args.threads)
                 for _ in range(repeats)]
        result = min(tries, key=lambda r: r["wall_seconds"])
        result["all_wall_seconds"] = [t["wall_seconds"] for t in tries]
        result["series"] = series
        if (n_loci, n_individuals) == (plan["individuals_at_loci"], plan["loci_at_individuals"]):
            result["series"] = "both"
        runs.append(result)
        print(f"  {n_loci} loci x {n_individuals} individuals: {result['wall_seconds']:.1f} s, "
              f"{result['windows_predicted']} windows", file=sys.stderr, flush=True)
    if not args.keep:
        for series, n_loci, n_individuals in configs:
            shutil.rmtree(workdir / f"L{n_loci}_N{n_individuals}" / "results", ignore_errors=True)
    fits = analyse(runs)
    result = {"size": size, "threads": args.threads, "repeats": repeats, "runs": runs, "fits": fits,
              "verdict": verdict(fits),
              "peak_memory_method": "ru_maxrss of each `enpact run` child process (os.wait4)"}
    print(f"`enpact run` on demo subsets (size {size}, tiny Enformer on CPU, {args.threads} thread(s)):\n")
    print(markdown(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
