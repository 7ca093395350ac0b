"""Predictor passes saved: personalizing with the variants linearization uses (parameter personalize_variants) and
only the loci near a trait's signal (lin_gwas_pvalue); linearization fit, genes kept, truth recovered.

1. The demo: `enpact run` (bundled demo parameters) with personalize_variants all and linearizable, and with
   lin_gwas_pvalue 5e-8 (the demo GWAS's genome-wide significant signals select the loci to personalize); from each run,
   windows predicted (`report/summary.json` personalized.windows_predicted), the median personalized r against the
   observed values, the median cross-validated R2 of the fitted loci and the genes kept by the database filters
   (linearized/<name>.summary.tsv), S-PrediXcan's Bonferroni hits and the planted causal genes among them.
2. An msprime panel with recent growth (`bench_windows.simulate_panel`: 500 individuals, rare variants as common as
   in human samples) on a random 400 kb reference: loci every 12 kb; the demo run's EnPACT model (tiny Enformer,
   4,096 bp windows) personalized with both settings as both engines do it (`enpact plan`, `enpact personalize --plan
   --part` per part, `enpact merge --plan`), linearized (`enpact linearize`) and filtered (`enpact database
   --allow-empty`): the same three numbers.

    python benchmarks/bench_variants.py --outdir benchmarks/out --json benchmarks/out/variants.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_windows import simulate_panel  # noqa: E402
from measure import run_child, write_json  # noqa: E402

SETTINGS = ("all", "linearizable")
PANEL_INDIVIDUALS, PANEL_LENGTH, PANEL_SPACING, PANEL_SEED = 500, 400_000, 12_000, 7


def fit_summary(summary_tsv: Path) -> dict:
    """Median cross-validated R2 of the fitted loci and genes kept, from a linearization summary."""
    table = pd.read_csv(summary_tsv, sep="\t")
    fitted = table[table["status"] == "ok"]
    kept = table["kept"].astype(str).str.lower().isin(["true", "1"]).sum() if "kept" in table else 0
    return {"loci": int(len(table)), "fitted": int(len(fitted)), "kept": int(kept),
            "median_cv_R2": float(pd.to_numeric(fitted["cv_R2_avg"], errors="coerce").median()),
            "median_rho_avg": float(pd.to_numeric(fitted["rho_avg"], errors="coerce").median())}


def enpact(argv: list[str], log: Path) -> float:
    """One enpact command in a child process (one thread); its wall seconds."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return run_child([sys.executable, "-m", "enpact", *argv], log, f"enpact {argv[0]}", env=env).wall_seconds


def personalize_planned(fasta: Path, vcf: Path, loci: Path, model: Path, options: list[str], out: Path) -> float:
    """Personalize as both engines do: `enpact plan` (distinct windows over every individual), `enpact personalize
    --plan --part` per part, `enpact merge --plan` into OUT; the wall seconds of all of them (logs next to OUT)."""
    from enpact.plan import read_plan

    window_bp = json.loads((model / "model.json").read_text())["feature_spec"]["window_bp"]
    common = ["--fasta", str(fasta), "--loci", str(loci), "--vcf", str(vcf), *options]
    plan = out.with_name(f"{out.stem}.plan.h5")
    wall = enpact(["plan", *common, "--window-bp", str(window_bp), "--out", str(plan)],
                  out.with_name(f"{out.stem}.plan.log"))
    parts = [out.with_name(f"{out.stem}.part{k}.h5") for k in range(read_plan(plan).n_parts)]
    for k, part in enumerate(parts):
        wall += enpact(["personalize", *common, "--plan", str(plan), "--part", str(k), "--model", str(model),
                        "--device", "cpu", "--batch-size", "32", "--no-progress", "--out", str(part)],
                       out.with_name(f"{out.stem}.personalize{k}.log"))
    return wall + enpact(["merge", "--plan", str(plan), "--inputs", *map(str, parts), "--out", str(out)],
                         out.with_name(f"{out.stem}.merge.log"))


DEMO_RUNS = {"all": {}, "linearizable": {"personalize_variants": "linearizable"},
             "GWAS-selected (p < 5e-8)": {"lin_gwas_pvalue": 5e-8}}


def demo_runs(workdir: Path) -> dict:
    """The demo run with each setting."""
    from enpact.params import demo_params

    results = {}
    for setting, changes in DEMO_RUNS.items():
        folder = workdir / f"demo_{setting.split()[0]}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        params = {**demo_params(), **changes, "outdir": str(folder / "results")}
        (folder / "params.json").write_text(json.dumps(params))
        wall = enpact(["run", "--params", str(folder / "params.json"), "--no-progress"], folder / "run.log")
        summary = json.loads((folder / "results" / "report" / "summary.json").read_text())
        truth = summary["truth"]["gwas"]["gwas"]["bonferroni"]
        results[setting] = {"wall_seconds": wall, "windows_predicted": summary["personalized"]["windows_predicted"],
                            "loci_personalized": summary["personalized"]["loci"],
                            "bonferroni_hits": summary["twas"]["gwas"]["bonferroni_hits"],
                            "causal_hits": truth["causal_hits"], "causal_genes": summary["truth"]["causal_genes"],
                            "median_personalized_r": summary["personalized"]["accuracy"]["median_r"],
                            **fit_summary(folder / "results" / "linearized" / "enpact_demo.summary.tsv")}
    return results


def panel_runs(workdir: Path, model: Path) -> dict:
    """The growth panel with each setting, through personalize, linearize and database."""
    from enpact.store import read_personalized_store

    folder = workdir / "growth_panel"
    folder.mkdir(parents=True, exist_ok=True)
    fasta, vcf = simulate_panel(folder, PANEL_INDIVIDUALS, PANEL_LENGTH, PANEL_SEED, growth=True)
    centers = np.arange(PANEL_SPACING, PANEL_LENGTH - PANEL_SPACING + 1, PANEL_SPACING)
    loci = pd.DataFrame({"locus_id": [f"L{i:03d}" for i in range(len(centers))], "chrom": "chr1", "center": centers,
                         "name": [f"L{i:03d}" for i in range(len(centers))], "split": "none"})
    loci.to_csv(folder / "loci.tsv", sep="\t", index=False)
    results = {}
    for setting in SETTINGS:
        store, chunk = folder / f"{setting}.h5", folder / f"{setting}.lin.h5"
        wall = personalize_planned(fasta, vcf, folder / "loci.tsv", model, ["--variants", setting], store)
        enpact(["linearize", "--personalized", str(store), "--vcf", str(vcf), "--loci", str(folder / "loci.tsv"),
                "--no-progress", "--out", str(chunk)], folder / f"{setting}.linearize.log")
        enpact(["database", "--linearized", str(chunk), "--name", setting, "--outdir", str(folder), "--allow-empty"],
               folder / f"{setting}.database.log")
        personalized = read_personalized_store(store, with_features=False)
        results[setting] = {"personalize_seconds": wall, "windows_predicted": int(personalized.n_unique_windows.sum()),
                            "haplotype_windows": len(personalized.locus_ids) * (2 * len(personalized.samples) + 1),
                            **fit_summary(folder / f"{setting}.summary.tsv")}
    return results


def main() -> int:
    """Run both comparisons, print Markdown, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workdir = args.outdir / "variants"
    demo = demo_runs(workdir)
    panel = panel_runs(workdir, workdir / "demo_all" / "results" / "model")
    print("The demo (`enpact run`, 240 loci x 80 individuals, tiny Enformer on CPU, one thread):\n")
    print("| run | loci personalized | windows predicted | median personalized r (vs observed) | fitted loci | "
          "median cv R2 | median rho_avg | genes kept | Bonferroni hits | causal genes among them | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for setting, r in demo.items():
        print(f"| {setting} | {r['loci_personalized']} | {r['windows_predicted']:,} | "
              f"{r['median_personalized_r']:.2f} | {r['fitted']} | "
              f"{r['median_cv_R2']:.3f} | {r['median_rho_avg']:.3f} | {r['kept']} | {r['bonferroni_hits']} | "
              f"{r['causal_hits']} of {r['causal_genes']} | {r['wall_seconds']:.1f} |")
    print(f"\nAn msprime panel with recent growth ({PANEL_INDIVIDUALS} individuals, {PANEL_LENGTH // 1000} kb, "
          f"loci every {PANEL_SPACING // 1000} kb; the demo's model):\n")
    print("| personalize_variants | windows predicted | of haplotype windows | fitted loci | median cv R2 | "
          "median rho_avg | genes kept | personalize s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for setting, r in panel.items():
        print(f"| {setting} | {r['windows_predicted']:,} | {r['haplotype_windows']:,} | {r['fitted']} | "
              f"{r['median_cv_R2']:.3f} | {r['median_rho_avg']:.3f} | {r['kept']} | {r['personalize_seconds']:.1f} |")
    write_json(args.json, {"demo": demo, "growth_panel": panel})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
