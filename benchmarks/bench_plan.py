"""Distinct windows over every individual (`enpact plan`) against deduplication inside sample chunks of 500 (the
scheme before it): predictor passes and wall time at 100, 500, 2,000 and 5,000 individuals.

msprime panels as in bench_dedup.py (`bench_windows.simulate_panel`: constant Ne 10^4, mu 1.25e-8, r 1e-8, a random
1 Mb reference), 20 loci 45 kb apart, the demo's tiny Enformer (4,096 bp windows) and an elastic net fitted to it on
the loci's reference windows. Per-chunk: `enpact personalize` per sample chunk of 500 and `enpact merge`; planned:
`enpact plan` (10,000 windows per part), `enpact personalize --plan --part` per part and `enpact merge --plan`. Each
command runs in a child process with one thread; passes are the windows each scheme predicted (from the stores and
parts), and the two merged stores are compared value for value.

    python benchmarks/bench_plan.py --outdir benchmarks/out --json benchmarks/out/plan.json [--sizes 100,500]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_windows import simulate_panel  # noqa: E402
from measure import run_child, write_json  # noqa: E402

LENGTH, SEED, N_LOCI, SPACING, CHUNK = 1_000_000, 11, 20, 45_000, 500


def enpact(argv: list[str], log: Path) -> float:
    """One enpact command in a child process (one thread); its wall seconds."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return run_child([sys.executable, "-m", "enpact", *argv], log, f"enpact {argv[0]}", env=env).wall_seconds


def make_model(fasta: Path, loci: pd.DataFrame, out: Path) -> None:
    """An elastic net on the tiny Enformer's features of the loci's reference windows (targets: their first track)."""
    from enpact.genome import Genome
    from enpact.models import create_model
    from enpact.models.base import FeatureSpec
    from enpact.params import demo_dir
    from enpact.predictors import load_predictor

    predictor = load_predictor("enformer", weights=str(demo_dir() / "enformer_tiny"), device="cpu", batch_size=16)
    genome = Genome(fasta)
    X = predictor.predict(genome.windows(loci["chrom"].tolist(), loci["center"].to_numpy(), predictor.window_bp))
    y = X.reshape(len(X), -1)[:, 0] + np.random.default_rng(SEED).normal(0, 0.01, len(X))
    model = create_model("elastic_net", FeatureSpec.from_dict(predictor.describe()), folds=3, seed=0)
    model.fit(X, y)
    model.save(out)


def measure(workdir: Path, n: int, model: Path, fasta: Path, vcf: Path, loci_file: Path) -> dict:
    """Both schemes at n individuals."""
    from enpact.plan import read_part, read_plan
    from enpact.store import read_personalized_store
    from enpact.variants import VcfReader

    folder = workdir / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    samples = VcfReader(vcf).samples
    common = ["--fasta", str(fasta), "--loci", str(loci_file), "--vcf", str(vcf)]
    personalize = ["personalize", *common, "--model", str(model), "--device", "cpu", "--batch-size", "32",
                   "--no-progress"]
    chunked_seconds, pieces = 0.0, []
    for start in range(0, n, CHUNK):
        chunk = folder / f"samples{start}.txt"
        chunk.write_text("\n".join(samples[start:start + CHUNK]) + "\n")
        piece = folder / f"chunk{start}.h5"
        chunked_seconds += enpact([*personalize, "--samples-file", str(chunk), "--out", str(piece)],
                                  folder / f"chunk{start}.log")
        pieces.append(str(piece))
    chunked_seconds += enpact(["merge", "--inputs", *pieces, "--out", str(folder / "chunked.h5")],
                              folder / "merge.log")
    chunked = read_personalized_store(folder / "chunked.h5", False)
    plan_file = folder / "plan.h5"
    planned_seconds = enpact(["plan", *common, "--window-bp", "4096", "--windows-per-part", "10000", "--out",
                              str(plan_file)], folder / "plan.log")
    parts = []
    for k in range(read_plan(plan_file).n_parts):
        part = folder / f"part{k}.h5"
        planned_seconds += enpact([*personalize, "--plan", str(plan_file), "--part", str(k), "--out", str(part)],
                                  folder / f"part{k}.log")
        parts.append(str(part))
    planned_seconds += enpact(["merge", "--plan", str(plan_file), "--inputs", *parts, "--out",
                               str(folder / "planned.h5")], folder / "merge_plan.log")
    planned = read_personalized_store(folder / "planned.h5", False)
    passes = sum(len(read_part(p).window) for p in parts)
    return {"individuals": n, "loci": N_LOCI, "haplotype_windows": N_LOCI * (2 * n + 1),
            "chunked_passes": int(chunked.n_unique_windows.sum()), "planned_passes": int(passes),
            "distinct_windows": int(read_plan(plan_file).n_distinct.sum()), "chunked_seconds": chunked_seconds,
            "planned_seconds": planned_seconds, "parts": len(parts),
            "max_abs_difference": float(np.nanmax(np.abs(planned.prediction - chunked.prediction)))}


def main() -> int:
    """Run every size, print Markdown, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sizes", default="100,500,2000,5000")
    args = parser.parse_args()
    workdir = args.outdir / "plan"
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in [int(v) for v in args.sizes.split(",")]:
        fasta, vcf = simulate_panel(workdir, n, LENGTH, SEED)
        centers = SPACING + SPACING * np.arange(N_LOCI)
        loci = pd.DataFrame({"locus_id": [f"L{i:02d}" for i in range(N_LOCI)], "chrom": "chr1", "center": centers,
                             "name": [f"L{i:02d}" for i in range(N_LOCI)], "split": "none"})
        loci_file = workdir / "loci.tsv"
        loci.to_csv(loci_file, sep="\t", index=False)
        model = workdir / f"model_{n}"
        make_model(fasta, loci, model)
        rows.append(measure(workdir, n, model, fasta, vcf, loci_file))
        print(f"  {n}: {rows[-1]}", file=sys.stderr, flush=True)
    print(f"msprime panels (constant Ne 10^4), {N_LOCI} loci, tiny Enformer (4,096 bp) on CPU, one thread; "
          f"per-chunk = sample chunks of {CHUNK}:\n")
    print("| individuals | haplotype windows | passes, per-chunk | passes, planned (= distinct windows) | ratio | "
          "wall s, per-chunk | wall s, planned | max \\|difference\\| |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['individuals']:,} | {r['haplotype_windows']:,} | {r['chunked_passes']:,} | "
              f"{r['planned_passes']:,} | {r['chunked_passes'] / r['planned_passes']:.2f} | "
              f"{r['chunked_seconds']:.1f} | {r['planned_seconds']:.1f} | {r['max_abs_difference']:.1e} |")
    write_json(args.json, {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
