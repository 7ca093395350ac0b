"""Full-size Enformer throughput through the EnPACT predictor (central bins, selected heads, autocast).

Builds the full architecture (dim 1536, depth 11, 8 heads, 896 target bins, 5,313 human tracks, 196,608 bp)
with random weights, saves it once in the real checkpoint format under benchmarks/out, loads it through the same
code path as the official weights, and times predict() at several batch sizes and precisions.

    python benchmarks/bench_enformer.py --device cpu --batch-sizes 1 --precisions fp32 --windows 1
    python benchmarks/bench_enformer.py --device cuda --batch-sizes 1,4,8,16,32 --precisions bf16,fp32
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from measure import write_json

H100_BF16_BOUND_MS = 3.3


def full_checkpoint(outdir: Path) -> Path:
    """A randomly initialised full-size Enformer saved with save_pretrained (created once)."""
    import torch
    from enformer_pytorch import Enformer

    directory = outdir / "enformer_full_random"
    if not (directory / "config.json").exists():
        torch.manual_seed(0)
        model = Enformer.from_hparams(dim=1536, depth=11, heads=8, output_heads={"human": 5313}, target_length=896)
        model.save_pretrained(directory, safe_serialization=False)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", default="1")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--windows", type=int, default=1, help="windows per measurement (after one warm-up batch)")
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    import torch

    from enpact.predictors import load_predictor

    weights = full_checkpoint(args.outdir)
    rng = np.random.default_rng(0)
    rows = []
    for precision in args.precisions.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            predictor = load_predictor("enformer", weights=str(weights), device=args.device,
                                       precision=precision, batch_size=batch_size, window_bp=196_608)
            n = max(args.windows, batch_size)
            windows = rng.integers(0, 4, (n, 196_608)).astype(np.uint8)
            if args.device != "cpu":
                predictor.predict(windows[:batch_size])  # warm-up
            started = time.perf_counter()
            predictor.predict(windows)
            seconds = time.perf_counter() - started
            rows.append({"device": str(predictor.device), "precision": precision, "batch_size": batch_size,
                         "windows": n, "seconds": seconds, "ms_per_window": 1000 * seconds / n,
                         "windows_per_s": n / seconds, "threads": torch.get_num_threads()})
            del predictor
    print("| device | precision | batch | windows | ms/window | windows/s | x H100 bf16 bound |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['device']} | {r['precision']} | {r['batch_size']} | {r['windows']} | {r['ms_per_window']:.1f} | "
              f"{r['windows_per_s']:.3f} | {r['ms_per_window'] / H100_BF16_BOUND_MS:.1f} |")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
