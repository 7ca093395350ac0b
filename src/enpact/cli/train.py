"""`enpact train`, `enpact evaluate` and `enpact merge-features`: EnPACT models from reference features."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from enpact.cli._common import existing_file, set_step
from enpact.models import available_model_types
from enpact.steps import (EvaluateConfig, MergeFeaturesConfig, TrainConfig, evaluate, hyperparameter_pairs,
                          merge_features, train)

ORDER = 30
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train`, `evaluate` and `merge-features` subcommands."""
    t = subparsers.add_parser(
        "train",
        help="fit an EnPACT model (features -> mean feature level) and evaluate it on held-out chromosomes",
        description="Fit an EnPACT model on the train split from reference features (enpact predict) and the mean "
        "across samples of the training matrix; write the model, metrics.json, predictions and plots.",
    )
    _add_data_arguments(t)
    t.add_argument("--model-type", default="elastic_net", choices=sorted(available_model_types()),
                   help="elastic_net (default), cnn, or a type a plug-in registers (docs/extending.md)")
    t.add_argument("--folds", type=int, default=5, help="CV folds for the elastic-net penalty (default 5)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="for the cnn model: auto, cpu or cuda")
    t.add_argument("--baseline-track", help="track used as single-track baseline (default: best on train)")
    t.add_argument("--hyperparameters", metavar="NAME=VALUE,...",
                   help="hyperparameters of the model type, e.g. channels=32,dropout=0.2 (they override --folds and "
                   "--seed; docs/extending.md lists each type's)")
    t.add_argument("--outdir", required=True, type=Path, help="model directory to write")
    set_step(t, train_config, train)

    e = subparsers.add_parser("evaluate", help="evaluate a saved EnPACT model on other loci or targets")
    e.add_argument("--model", required=True, type=existing_file, help="model directory")
    _add_data_arguments(e)
    e.add_argument("--baseline-track", help="fit this track as baseline instead of the model's saved baseline")
    e.add_argument("--device", default="auto")
    e.add_argument("--outdir", required=True, type=Path)
    set_step(e, evaluate_config, evaluate)

    m = subparsers.add_parser("merge-features", help="concatenate reference feature stores of loci chunks")
    m.add_argument("--inputs", required=True, nargs="+", type=existing_file)
    m.add_argument("--out", required=True, type=Path)
    set_step(m, merge_features_config, merge_features)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--features, --loci, --expression."""
    parser.add_argument("--features", required=True, type=existing_file, help="reference feature store (enpact predict)")
    parser.add_argument("--loci", required=True, type=existing_file, help="loci TSV with a split column")
    parser.add_argument("--expression", required=True, type=existing_file, help="training matrix NAME IND1 ...")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The train step's configuration from the arguments."""
    return TrainConfig(features=args.features, loci=args.loci, expression=args.expression, outdir=args.outdir,
                       model_type=args.model_type, folds=args.folds, seed=args.seed, device=args.device,
                       baseline_track=args.baseline_track, hyperparameters=hyperparameter_pairs(args.hyperparameters))


def evaluate_config(args: argparse.Namespace) -> EvaluateConfig:
    """The evaluate step's configuration from the arguments."""
    return EvaluateConfig(model=args.model, features=args.features, loci=args.loci, expression=args.expression,
                          outdir=args.outdir, device=args.device, baseline_track=args.baseline_track)


def merge_features_config(args: argparse.Namespace) -> MergeFeaturesConfig:
    """The merge-features step's configuration from the arguments."""
    return MergeFeaturesConfig(inputs=tuple(args.inputs), out=args.out)
