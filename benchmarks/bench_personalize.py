"""Personalize overhead beyond the predictor: window building, EnPACT model application and storage, per window.

A stand-in predictor with Enformer's shape (196,608 bp windows, 5,313 tracks) returns random features at no cost,
so everything `enpact personalize` does besides the predictor is what is timed. Compare the per-window figure with
one Enformer pass: ~53 s on a 2-core CPU, ~3.3 ms on an H100 (bf16 bound).

    python benchmarks/bench_personalize.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench_windows import WINDOW, simulate_panel  # noqa: E402
from measure import write_json  # noqa: E402

N_TRACKS = 5313


class InstantPredictor:
    """Enformer-shaped predictor that costs nothing (random features)."""

    name = "instant"
    weights = "none"
    window_bp = WINDOW
    bin_bp = 128
    n_bins = 1
    batch_size = 8
    track_names = [f"track_{i}" for i in range(N_TRACKS)]

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.calls = 0
        self.seconds = 0.0

    def describe(self) -> dict:
        return {"predictor": self.name, "weights": self.weights, "window_bp": self.window_bp, "bin_bp": self.bin_bp,
                "bins": 4, "aggregate": "mean", "tracks": self.track_names}

    def predict(self, windows: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        out = self.rng.gamma(2.0, 1.0, size=(len(windows), 1, N_TRACKS)).astype(np.float32)
        self.calls += len(windows)
        self.seconds += time.perf_counter() - started
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    from enpact.genome import Genome
    from enpact.models import create_model
    from enpact.models.base import FeatureSpec
    from enpact.personalize import personalize
    from enpact.store import write_personalized_store
    from enpact.variants import VcfReader

    n_individuals, n_loci, length = (100, 5, 1_000_000) if args.quick else (500, 10, 2_000_000)
    fasta, vcf = simulate_panel(args.outdir, n_individuals, length, seed=1)
    predictor = InstantPredictor()
    spec = FeatureSpec.from_dict(predictor.describe())
    rng = np.random.default_rng(1)
    X = rng.gamma(2.0, 1.0, size=(300, 1, N_TRACKS)).astype(np.float32)
    y = np.log1p(X[:, 0, :50]).sum(axis=1) + rng.normal(size=300)
    model = create_model("elastic_net", spec, folds=3, seed=0).fit(X, y)
    centers = np.linspace(WINDOW, length - WINDOW, n_loci).astype(int)
    loci = pd.DataFrame({"locus_id": [f"L{i}" for i in range(n_loci)], "chrom": "chr1", "center": centers,
                         "name": "x", "split": "none"})
    started = time.perf_counter()
    store = personalize(Genome(fasta), loci, VcfReader(vcf), model, predictor, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        write_started = time.perf_counter()
        write_personalized_store(Path(tmp) / "p.h5", store)
        write_seconds = time.perf_counter() - write_started
    total = time.perf_counter() - started
    overhead = total - predictor.seconds
    per_window = overhead / predictor.calls
    result = {"individuals": n_individuals, "loci": n_loci, "windows_predicted": predictor.calls,
              "seconds_total": total, "seconds_stand_in_predictor": predictor.seconds, "seconds_storage": write_seconds,
              "overhead_ms_per_window": 1000 * per_window,
              "fraction_of_cpu_enformer_pass": per_window / 53.0, "fraction_of_h100_bound": per_window / 0.0033}
    print("| individuals | loci | windows predicted | overhead per window | vs CPU Enformer pass (53 s) | vs H100 bound (3.3 ms) |")
    print("|---|---|---|---|---|---|")
    print(f"| {n_individuals} | {n_loci} | {predictor.calls} | {1000 * per_window:.2f} ms | "
          f"{100 * result['fraction_of_cpu_enformer_pass']:.4f} % | {100 * result['fraction_of_h100_bound']:.0f} % |")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
