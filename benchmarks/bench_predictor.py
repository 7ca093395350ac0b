"""Full-size sequence predictor throughput through the EnPACT predictor layer (central bins, selected heads,
autocast): Enformer or Borzoi.

Builds the full architecture with random weights (Enformer: dim 1536, depth 11, 8 heads, 5,313 human tracks,
196,608 bp; Borzoi: the published network, 7,611 human tracks, 524,288 bp), saves it once in the real checkpoint
format under benchmarks/out, loads it through the same code path as the official weights, and times predict() at
several batch sizes and precisions. --flops also counts one window's floating-point operations (torch's
FlopCounterMode: matrix products and convolutions).

    python benchmarks/bench_predictor.py --predictor borzoi --device cpu --batch-sizes 1 --precisions fp32 --flops
    python benchmarks/bench_predictor.py --predictor enformer --device cuda --batch-sizes 1,4,8,16,32 --precisions bf16,fp32
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from measure import write_json

H100_BF16_BOUND_MS = 3.3   # Enformer (DESIGN.md section 5)
WINDOW_BP = {"enformer": 196_608, "borzoi": 524_288}


def full_checkpoint(predictor: str, outdir: Path) -> Path:
    """A randomly initialised full-size model saved with save_pretrained (created once)."""
    import torch

    directory = outdir / f"{predictor}_full_random"
    if (directory / "config.json").exists():
        return directory
    torch.manual_seed(0)
    if predictor == "enformer":
        from enformer_pytorch import Enformer

        model = Enformer.from_hparams(dim=1536, depth=11, heads=8, output_heads={"human": 5313}, target_length=896)
        model.save_pretrained(directory, safe_serialization=False)
    else:
        from borzoi_pytorch import Borzoi
        from borzoi_pytorch.config_borzoi import BorzoiConfig

        Borzoi(BorzoiConfig()).save_pretrained(directory, safe_serialization=True)   # the published config
    return directory


def count_flops(predictor, window: np.ndarray) -> float:
    """Floating-point operations of one window through predict() (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        predictor.predict(window)
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor", choices=sorted(WINDOW_BP), default="enformer")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", default="1")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--windows", type=int, default=1, help="windows per measurement (after one warm-up batch)")
    parser.add_argument("--flops", action="store_true", help="also count one window's floating-point operations")
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    import torch

    from enpact.predictors import load_predictor

    weights = full_checkpoint(args.predictor, args.outdir)
    window_bp = WINDOW_BP[args.predictor]
    rng = np.random.default_rng(0)
    rows = []
    for precision in args.precisions.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            predictor = load_predictor(args.predictor, weights=str(weights), device=args.device,
                                       precision=precision, batch_size=batch_size, window_bp=window_bp)
            n = max(args.windows, batch_size)
            windows = rng.integers(0, 4, (n, window_bp)).astype(np.uint8)
            if args.device != "cpu":
                predictor.predict(windows[:batch_size])  # warm-up
            started = time.perf_counter()
            predictor.predict(windows)
            seconds = time.perf_counter() - started
            row = {"predictor": args.predictor, "window_bp": window_bp, "device": str(predictor.device),
                   "precision": precision, "batch_size": batch_size, "windows": n, "seconds": seconds,
                   "ms_per_window": 1000 * seconds / n, "windows_per_s": n / seconds,
                   "threads": torch.get_num_threads()}
            if args.flops and not rows:
                row["tflop_per_window"] = count_flops(predictor, windows[:1]) / 1e12
            rows.append(row)
            del predictor
    print(f"{args.predictor}, {window_bp:,} bp windows, random weights in the real checkpoint format")
    print()
    print("| device | precision | batch | windows | ms/window | windows/s | TFLOP/window | x H100 bf16 Enformer bound |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        tflop = f"{r['tflop_per_window']:.2f}" if "tflop_per_window" in r else ""
        print(f"| {r['device']} | {r['precision']} | {r['batch_size']} | {r['windows']} | {r['ms_per_window']:.1f} | "
              f"{r['windows_per_s']:.3f} | {tflop} | {r['ms_per_window'] / H100_BF16_BOUND_MS:.1f} |")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
