"""Deduplication: distinct haplotype windows per locus as a function of sample size, on simulated human-like panels.

Two msprime panels per sample size, written as phased VCFs on a random reference (`bench_windows.simulate_panel`):
constant population size (Ne 10^4, mu 1.25e-8, r 1e-8) and one with recent exponential growth (so rare variants,
which make haplotypes distinct, are about as common as in real human samples). Loci are placed every 200 kb,
so that their 196,608 bp windows do not overlap; for each locus `enpact.predict.iter_locus_windows` (the
product's own fast path: one VCF read per region, deduplication by the set of applied variants) gives the number
of distinct windows. Counts only; no predictor runs.

unique / total = distinct windows (reference included) / (2 x individuals + 1), per locus, averaged over loci;
DESIGN.md section 5 quotes 0.65 / 0.33 / 0.14 at 100 / 500 / 2,000 individuals for the constant-size panel.

    python benchmarks/bench_dedup.py --size quick     # 1 Mb panels (4 loci); no 2,000-individual growth panel
    python benchmarks/bench_dedup.py --size full      # 2 x 2 Mb panels (18 loci), every size, both demographies
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_windows import WINDOW, simulate_panel  # noqa: E402
from measure import write_json  # noqa: E402

REFERENCE = {100: 0.65, 500: 0.33, 2000: 0.14}  # DESIGN.md section 5, constant Ne 10^4
SPACING = 200_000


def locus_centers(length: int, spacing: int = SPACING, window_bp: int = WINDOW) -> np.ndarray:
    """Centres every `spacing` bp, at least one window from both ends (196,608 bp windows do not overlap; longer
    ones do, which leaves each locus's count unchanged)."""
    return np.arange(window_bp, length - window_bp + 1, spacing)


def count_panel(outdir: Path, n_individuals: int, length: int, seed: int, growth: bool,
                window_bp: int = WINDOW) -> dict:
    """Simulate (or reuse) one panel and count distinct windows per locus with iter_locus_windows."""
    from enpact.genome import Genome
    from enpact.predict import iter_locus_windows
    from enpact.variants import VcfReader

    started = time.perf_counter()
    fasta, vcf = simulate_panel(outdir, n_individuals, length, seed=seed, growth=growth)
    simulated = time.perf_counter() - started
    centers = locus_centers(length, window_bp=window_bp)
    loci = pd.DataFrame({"locus_id": [f"L{i}" for i in range(len(centers))], "chrom": "chr1", "center": centers})
    started = time.perf_counter()
    unique, variants = [], []
    for _, windows in iter_locus_windows(Genome(fasta), loci, window_bp, VcfReader(vcf)):
        unique.append(windows.n_unique)
        variants.append(windows.n_variants)
    counted = time.perf_counter() - started
    return {"individuals": n_individuals, "demography": "growth" if growth else "constant", "seed": seed,
            "length": length, "window_bp": window_bp, "loci": len(centers), "unique_per_locus": unique, "variants_per_locus": variants,
            "simulate_seconds": simulated, "count_seconds": counted}


def summarise(panels: list[dict]) -> list[dict]:
    """One row per (individuals, demography): pooled over the panels (seeds) of that row."""
    rows = []
    keys = sorted({(p["individuals"], p["demography"]) for p in panels}, key=lambda k: (k[1], k[0]))
    for n, demography in keys:
        group = [p for p in panels if p["individuals"] == n and p["demography"] == demography]
        unique = np.concatenate([p["unique_per_locus"] for p in group]).astype(float)
        variants = np.concatenate([p["variants_per_locus"] for p in group]).astype(float)
        per_locus = unique / (2 * n + 1)
        rows.append({
            "individuals": n, "demography": demography, "loci": int(len(unique)), "window_bp": group[0]["window_bp"],
            "variants_per_window": float(variants.mean()),
            "haplotype_windows_per_locus": 2 * n,
            "unique_windows_per_locus": float(unique.mean()),
            "unique_fraction": float(per_locus.mean()),
            "unique_fraction_min": float(per_locus.min()), "unique_fraction_max": float(per_locus.max()),
            "passes_saved_factor": float((2 * n) / unique.mean()),
            "reference_fraction": REFERENCE.get(n) if demography == "constant" and group[0]["window_bp"] == WINDOW
            else None,
            "count_seconds": float(sum(p["count_seconds"] for p in group)),
        })
    return rows


def plan(size: str) -> list[tuple[int, int, int, bool]]:
    """(individuals, length, seed, growth) of every panel to count at this size."""
    if size == "quick":
        return [(n, 1_000_000, 11, growth) for growth in (False, True) for n in (100, 500, 2000)
                if not (growth and n == 2000)]
    return [(n, 2_000_000, seed, growth) for growth in (False, True) for n in (100, 500, 2000) for seed in (11, 12)]


def markdown(rows: list[dict]) -> str:
    """The summary as a Markdown table."""
    lines = ["| demography | individuals | loci | variants/window | distinct windows/locus | unique/total "
             "(min-max over loci) | passes saved | DESIGN.md reference |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        ref = f"{r['reference_fraction']:.2f}" if r["reference_fraction"] is not None else "-"
        lines.append(f"| {r['demography']} | {r['individuals']:,} | {r['loci']} | {r['variants_per_window']:.0f} | "
                     f"{r['unique_windows_per_locus']:.0f} of {r['haplotype_windows_per_locus']:,} | "
                     f"{r['unique_fraction']:.3f} ({r['unique_fraction_min']:.3f}-{r['unique_fraction_max']:.3f}) | "
                     f"{r['passes_saved_factor']:.2f}x | {ref} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Count, print a Markdown table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("quick", "full"), default="full")
    parser.add_argument("--quick", action="store_true", help="same as --size quick")
    parser.add_argument("--outdir", type=Path, default=Path("benchmarks/out"), help="panels are cached here")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--window-bp", type=int, default=WINDOW,
                        help=f"window length (default {WINDOW:,}, Enformer's; Borzoi reads 524,288)")
    args = parser.parse_args(argv)
    size = "quick" if args.quick else args.size
    args.outdir.mkdir(parents=True, exist_ok=True)
    import logging

    logging.getLogger("msprime").setLevel(logging.WARNING)
    panels = []
    for n, length, seed, growth in plan(size):
        panel = count_panel(args.outdir, n, length, seed, growth, args.window_bp)
        print(f"  {panel['demography']:8s} {n:5d} individuals, {panel['loci']} loci: distinct windows "
              f"{panel['unique_per_locus']} (simulated in {panel['simulate_seconds']:.0f} s, counted in "
              f"{panel['count_seconds']:.0f} s)", file=sys.stderr, flush=True)
        panels.append(panel)
    rows = summarise(panels)
    print(f"Distinct / total haplotype windows per locus ({args.window_bp:,} bp windows, size {size}):\n")
    print(markdown(rows))
    write_json(args.json, {"size": size, "window_bp": args.window_bp, "rows": rows, "panels": panels})
    return 0


if __name__ == "__main__":
    sys.exit(main())
