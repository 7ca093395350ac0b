#!/usr/bin/env python
"""Benchmark: EnPACT model training and prediction throughput on synthetic Enformer-like features.

Features are gamma-distributed with a low-rank structure shared across tracks (like real Enformer tracks,
which are strongly correlated), float32 (loci, 4 bins, tracks); targets are linear in log1p of a few
bin-averaged tracks plus noise. Measured, in one process:
  - elastic net fit (5-fold CV penalty choice) on bin-averaged features (loci x tracks),
  - optionally scikit-learn's ElasticNetCV on the same inputs, grid and folds (--compare-sklearn),
  - CNN training on 4 bins for a few epochs (seconds per epoch),
  - predict throughput (windows/s) of both models on `--predict` feature vectors.

    python benchmarks/bench_train.py                      # 15,000 loci x 5,313 tracks
    python benchmarks/bench_train.py --quick              # 2,000 x 500
    python benchmarks/bench_train.py --loci 6000 --tracks 2000 --compare-sklearn   # adds ElasticNetCV
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
import warnings
from typing import Callable

import numpy as np

from enpact.models import FeatureSpec, create_model

logger = logging.getLogger("bench_train")


def synthetic_features(n: int, bins: int, tracks: int, rank: int, seed: int) -> np.ndarray:
    """float32 (n, bins, tracks): low-rank gamma locus x track scale times per-bin gamma noise."""
    rng = np.random.default_rng(seed)
    scale = rng.gamma(2.0, 1.0, (n, rank)).astype(np.float32) @ rng.gamma(0.5, 1.0, (rank, tracks)).astype(np.float32)
    out = np.empty((n, bins, tracks), dtype=np.float32)
    for b in range(bins):
        out[:, b, :] = scale * rng.gamma(5.0, 0.2, (n, tracks)).astype(np.float32)
    return out


def planted_targets(features: np.ndarray, n_causal: int, seed: int) -> np.ndarray:
    """y = standardised log1p(bin-mean tracks) @ beta + noise of equal variance."""
    rng = np.random.default_rng(seed)
    logged = np.log1p(features.mean(axis=1, dtype=np.float64))
    beta = np.zeros(features.shape[2])
    beta[rng.choice(features.shape[2], n_causal, replace=False)] = rng.normal(size=n_causal)
    signal = (logged - logged.mean(axis=0)) / np.maximum(logged.std(axis=0), 1e-12) @ beta
    return signal + signal.std() * rng.standard_normal(len(signal))


def timed(function: Callable[[], object]) -> tuple[float, object]:
    """(wall seconds, result) of one call."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def spec_for(tracks: int, aggregate: str) -> FeatureSpec:
    """A synthetic feature spec (4 central bins, averaged or not)."""
    return FeatureSpec("synthetic", "bench", 196_608, 128, 4, aggregate, tuple(f"track{i}" for i in range(tracks)))


def sklearn_reference(inputs: np.ndarray, y: np.ndarray, model) -> float:
    """Seconds for ElasticNetCV on the same standardised inputs, full penalty grid and folds as the model."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNetCV

    from enpact.glmnet import assign_folds
    from enpact.models.elastic_net import alpha_grid, elastic_net_inputs

    hp = model.hyperparameters
    logged = elastic_net_inputs(inputs)
    means, sds = logged.mean(axis=0, dtype=np.float64), logged.std(axis=0, dtype=np.float64)
    keep = sds >= 1e-6
    Z = (logged[:, keep] - means[keep]) / sds[keep]
    n, folds = len(y), int(model.training_info["folds"])
    fold_of = assign_folds(n, folds, int(hp["seed"]))
    cv = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]
    alphas = alpha_grid(Z, y, hp["l1_ratio"], hp["n_alphas"], hp["eps"])
    reference = ElasticNetCV(l1_ratio=hp["l1_ratio"], alphas=alphas, cv=cv, precompute=True, tol=hp["tol"],
                             max_iter=hp["max_iter"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # same max_iter as ours, which hits it too
        seconds, fitted = timed(lambda: reference.fit(Z, y))
    logger.info("sklearn ElasticNetCV alpha %.4g (enpact %.4g)", fitted.alpha_, model.training_info["alpha"])
    return seconds


def run(args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    """All measurements as table rows (what, size, seconds, throughput)."""
    import torch

    rows = []
    n_train = int(args.loci * 0.8)
    features = synthetic_features(args.loci + args.predict, 4, args.tracks, args.rank, args.seed)
    y = planted_targets(features[: args.loci], n_causal=50, seed=args.seed + 1)
    averaged = features.mean(axis=1, keepdims=True)
    train, valid = slice(0, n_train), slice(n_train, args.loci)
    window_set = slice(args.loci, args.loci + args.predict)
    size = f"{n_train:,} x {args.tracks:,}"

    net = create_model("elastic_net", spec_for(args.tracks, "mean"), folds=args.folds, seed=args.seed)
    seconds, _ = timed(lambda: net.fit(averaged[train], y[train]))
    info = net.training_info
    r_valid = np.corrcoef(net.predict(averaged[valid]), y[valid])[0, 1]
    rows.append(("elastic net fit (5-fold CV)", size, f"{seconds:.1f}",
                 f"{info['n_nonzero']} nonzero, alpha index {info['alpha_index']}/{len(info['cv_alphas'])}, "
                 f"valid r {r_valid:.3f}"))
    if args.compare_sklearn:
        seconds_sk = sklearn_reference(averaged[train], y[train], net)
        rows.append(("sklearn ElasticNetCV, same full grid and folds", size, f"{seconds_sk:.1f}",
                     f"enpact fit is {seconds_sk / seconds:.1f}x faster"))
    seconds, _ = timed(lambda: net.predict(averaged[window_set]))
    rows.append(("elastic net predict", f"{args.predict:,} windows, 1 bin", f"{seconds:.3f}",
                 f"{args.predict / seconds:,.0f} windows/s"))

    cnn = create_model("cnn", spec_for(args.tracks, "none"), device=args.device, seed=args.seed,
                       max_epochs=args.cnn_epochs, patience=args.cnn_epochs)
    seconds, _ = timed(lambda: cnn.fit(features[train], y[train], features[valid], y[valid]))
    info = cnn.training_info
    r_valid = np.corrcoef(cnn.predict(features[valid]), y[valid])[0, 1]
    rows.append((f"CNN fit, 4 bins, {info['epochs_run']} epochs ({info['device']})", size, f"{seconds:.1f}",
                 f"{seconds / info['epochs_run']:.1f} s/epoch incl. valid pass, valid r {r_valid:.3f}"))
    seconds, _ = timed(lambda: cnn.predict(features[window_set]))
    rows.append((f"CNN predict ({info['device']})", f"{args.predict:,} windows, 4 bins", f"{seconds:.3f}",
                 f"{args.predict / seconds:,.0f} windows/s"))
    logger.info("torch %s, %d threads", torch.__version__, torch.get_num_threads())
    return rows


def markdown(rows: list[tuple[str, str, str, str]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| what | size | seconds | notes |", "|---|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 loci x 500 tracks, 2 CNN epochs")
    parser.add_argument("--loci", type=int, default=15_000, help="loci (80%% train, 20%% valid)")
    parser.add_argument("--tracks", type=int, default=5_313)
    parser.add_argument("--rank", type=int, default=20, help="rank of the shared track structure")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cnn-epochs", type=int, default=3)
    parser.add_argument("--predict", type=int, default=10_000, help="feature vectors for predict throughput")
    parser.add_argument("--device", default="auto", help="CNN device: cpu, cuda or auto")
    parser.add_argument("--compare-sklearn", action="store_true", help="also time ElasticNetCV")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.loci, args.tracks, args.cnn_epochs, args.predict = 2_000, 500, 2, 2_000
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    rows = run(args)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"command: python benchmarks/bench_train.py {' '.join(argv if argv is not None else sys.argv[1:])}\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
