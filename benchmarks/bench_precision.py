"""Precision audit: personalized predictions at tf32/bf16/fp16 against fp32 (agreement and time per window).

Runs `enpact run` on the bundled demo (tiny Enformer) to get an EnPACT model, then `enpact precision-audit` on a
sample of its loci x individuals. On a GPU machine give your own study (--fasta, --loci, --vcf, --model, --weights)
to audit the real Enformer; the demo's tiny model only shows how the audit reads.

    python benchmarks/bench_precision.py                                   # demo, CPU: bf16, fp16 vs fp32
    python benchmarks/bench_precision.py --device cuda --precisions tf32,bf16,fp16 --fasta ... --model ...
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
from measure import write_json

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Audit and print the summary as a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=HERE / "out")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", default="bf16,fp16")
    parser.add_argument("--n-loci", type=int, default=40)
    parser.add_argument("--n-samples", type=int, default=80)
    for name in ("fasta", "loci", "vcf", "model", "weights"):
        parser.add_argument(f"--{name}", help="your study's (default: the demo's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    enpact = [sys.executable, "-m", "enpact", "-q"]
    study = {name: getattr(args, name) for name in ("fasta", "loci", "vcf", "model", "weights")}
    if not study["model"]:
        from enpact.params import demo_params

        demo = demo_params()
        results = args.outdir / "precision_demo"
        subprocess.run([*enpact, "run", "--outdir", str(results), "--no-progress"], check=True,
                       stdout=subprocess.DEVNULL)
        study = {"fasta": demo["fasta"], "loci": str(results / "loci" / "loci.tsv"), "vcf": demo["vcf"],
                 "model": str(results / "model"), "weights": demo["weights"]}
    out = args.outdir / "precision_audit.tsv"
    subprocess.run([*enpact, "precision-audit", "--fasta", study["fasta"], "--loci", study["loci"], "--vcf",
                    study["vcf"], "--model", study["model"], *(["--weights", study["weights"]] if study["weights"]
                                                            else []),
                    "--precisions", args.precisions, "--n-loci", str(args.n_loci), "--n-samples", str(args.n_samples),
                    "--device", args.device, "--out", str(out)], check=True)
    summary = pd.read_csv(out, sep="\t")
    print(f"{summary['loci'].iloc[0]} loci x {args.n_samples} individuals, device {args.device}; per locus the "
          "across-individual Pearson r of personalized predictions with fp32 and the RMS difference relative to "
          "the between-individual SD at fp32.\n")
    print("| precision | median r with fp32 | loci with r < 0.5 | median error / between-individual SD | "
          "s per window |")
    print("|---|---|---|---|---|")
    for row in summary.to_dict("records"):
        print(f"| {row['precision']} | {row['median_r']:.3f} | {row['loci_r_below_0.5']} of {row['loci']} | "
              f"{100 * row['median_relative_error']:.0f} % | {row['seconds_per_window']:.4f} |")
    write_json(args.json, {"device": args.device, "summary": summary.to_dict("records")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
