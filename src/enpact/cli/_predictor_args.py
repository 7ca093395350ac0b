"""Predictor options shared by `enpact predict` and `enpact personalize`."""

from __future__ import annotations

import argparse

from enpact.steps import PredictorConfig, hyperparameter_pairs


def add_predictor_arguments(parser: argparse.ArgumentParser) -> None:
    """--predictor, --weights, --bins, --tracks, --aggregate, --batch-size, --device, --precision, --window-bp,
    --predictor-options."""
    group = parser.add_argument_group("predictor")
    group.add_argument("--predictor", default="enformer", help="registered predictor name (default: enformer)")
    group.add_argument("--weights",
                       help="Hugging Face model id or local checkpoint directory (default: the predictor's own, "
                       "EleutherAI/enformer-official-rough for enformer, johahi/borzoi-replicate-0 for borzoi)")
    group.add_argument("--bins", type=int, default=4, help="central output bins kept per window, in the predictor's bins "
                       "(128 bp for enformer, 32 bp for borzoi; default: 4)")
    group.add_argument("--aggregate", choices=["mean", "none"], default="mean",
                       help="average the central bins on the device (mean) or keep each bin (none, for the cnn model)")
    group.add_argument("--tracks", default="all", help="tracks to keep: 'all', indexes, ranges a-b or names, comma-separated")
    group.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (halved on GPU out-of-memory)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16", "fp16", "auto"],
                       help="numeric precision of the forward pass: fp32 (default; auto is the same), or tf32, bf16, "
                       "fp16 on request (see enpact precision-audit)")
    group.add_argument("--window-bp", type=int, default=None,
                       help="input length (default: from the checkpoint's enpact_predictor.json, else the predictor's: "
                       "196608 for enformer, 524288 for borzoi)")
    group.add_argument("--predictor-options", metavar="NAME=VALUE,...",
                       help="the predictor's own options, e.g. head=mouse for enformer (recorded with the features, so "
                       "personalize rebuilds the same predictor)")


def predictor_config(args: argparse.Namespace) -> PredictorConfig:
    """The predictor described by the shared options."""
    return PredictorConfig(predictor=args.predictor, weights=args.weights, bins=args.bins, aggregate=args.aggregate,
                           tracks=args.tracks, batch_size=args.batch_size, device=args.device,
                           precision=args.precision, window_bp=args.window_bp,
                           options=hyperparameter_pairs(args.predictor_options))
