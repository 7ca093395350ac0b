"""`enpact train`, `enpact evaluate` and `enpact merge-features`: EnPACT models from reference features."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from enpact.cli._common import existing_file
from enpact.errors import EnpactError
from enpact.expression import check_between_feature_signal, feature_means, read_expression
from enpact.loci import read_loci
from enpact.models import available_model_types
from enpact.models.base import FeatureSpec
from enpact.store import FeatureStore, read_feature_store, write_feature_store

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
    t.add_argument("--model-type", default="elastic_net", choices=sorted(available_model_types()))
    t.add_argument("--folds", type=int, default=5, help="CV folds for the elastic-net penalty (default 5)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="for the cnn model: auto, cpu or cuda")
    t.add_argument("--baseline-track", help="track used as single-track baseline (default: best on train)")
    t.add_argument("--outdir", required=True, type=Path, help="model directory to write")
    t.set_defaults(func=run_train)

    e = subparsers.add_parser("evaluate", help="evaluate a saved EnPACT model on other loci or targets")
    e.add_argument("--model", required=True, type=existing_file, help="model directory")
    _add_data_arguments(e)
    e.add_argument("--baseline-track", help="fit this track as baseline instead of the model's saved baseline")
    e.add_argument("--device", default="auto")
    e.add_argument("--outdir", required=True, type=Path)
    e.set_defaults(func=run_evaluate)

    m = subparsers.add_parser("merge-features", help="concatenate reference feature stores of loci chunks")
    m.add_argument("--inputs", required=True, nargs="+", type=existing_file)
    m.add_argument("--out", required=True, type=Path)
    m.set_defaults(func=run_merge_features)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--features, --loci, --expression."""
    parser.add_argument("--features", required=True, type=existing_file, help="reference feature store (enpact predict)")
    parser.add_argument("--loci", required=True, type=existing_file, help="loci TSV with a split column")
    parser.add_argument("--expression", required=True, type=existing_file, help="training matrix NAME IND1 ...")


def training_data(features_path: Path, loci_path: Path, expression_path: Path):
    """Reference features, targets, splits and ids of loci present in all three inputs."""
    store = read_feature_store(features_path)
    loci = read_loci(loci_path)
    matrix = read_expression(expression_path)
    check_between_feature_signal(matrix, expression_path)
    targets = feature_means(matrix)
    row = {locus: i for i, locus in enumerate(store.locus_ids)}
    present = loci["locus_id"].isin(row) & loci["locus_id"].isin(targets.index)
    missing = loci.loc[~loci["locus_id"].isin(row), "locus_id"]
    if len(missing):
        raise EnpactError(f"{features_path}: no features for locus {missing.iloc[0]} ({len(missing)} loci); "
                          "predict the reference features for the same loci table")
    loci = loci[present]
    y = targets.reindex(loci["locus_id"]).to_numpy(np.float64)
    finite = np.isfinite(y)
    if not finite.all():
        log.warning("%d loci have no target value and are left out", int((~finite).sum()))
    loci = loci[finite]
    features = store.reference_features()[[row[l] for l in loci["locus_id"]]]
    spec = FeatureSpec.from_dict(store.meta.get("predictor", {}), str(features_path))
    return features, y[finite], loci["split"].to_numpy(), loci["locus_id"].tolist(), spec


def run_train(args: argparse.Namespace) -> int:
    """Train and evaluate."""
    from enpact.training import train_and_evaluate  # matplotlib and scikit-learn: only when training

    features, y, splits, ids, spec = training_data(args.features, args.loci, args.expression)
    train_and_evaluate(features, y, splits, ids, spec, args.model_type, args.outdir, folds=args.folds,
                       seed=args.seed, device=args.device, baseline_track=args.baseline_track)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved model."""
    from enpact.training import evaluate_model

    features, y, splits, ids, spec = training_data(args.features, args.loci, args.expression)
    evaluate_model(args.model, features, y, splits, ids, args.outdir, feature_spec=spec,
                   baseline_track=args.baseline_track, device=args.device)
    return 0


def merge_feature_stores(paths: list[Path]) -> FeatureStore:
    """Concatenate reference feature stores of disjoint loci chunks (sorted by first locus id)."""
    stores = sorted((read_feature_store(p) for p in paths), key=lambda s: s.locus_ids[0] if s.locus_ids else "")
    metas = {str(sorted(s.meta.get("predictor", {}).items())) for s in stores}
    if len(metas) > 1:
        raise EnpactError("merge-features: inputs were made with different predictor settings")
    if any(s.samples for s in stores):
        raise EnpactError("merge-features: only reference feature stores (no --vcf) can be merged")
    ids = [l for s in stores for l in s.locus_ids]
    if len(set(ids)) != len(ids):
        dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
        raise EnpactError(f"merge-features: locus {dup} is in more than one input")
    offsets = np.cumsum([0] + [len(s.features) for s in stores[:-1]])
    locus_offsets = np.cumsum([0] + [len(s.locus_ids) for s in stores[:-1]])
    return FeatureStore(
        locus_ids=ids, samples=[],
        features=np.concatenate([s.features for s in stores]),
        row_locus=np.concatenate([s.row_locus + lo for s, lo in zip(stores, locus_offsets)]).astype(np.int32),
        reference_row=np.concatenate([s.reference_row + o for s, o in zip(stores, offsets)]).astype(np.int32),
        haplotype_row=np.zeros((len(ids), 0, 2), np.int32),
        meta=stores[0].meta,
    )


def run_merge_features(args: argparse.Namespace) -> int:
    """Merge reference feature stores."""
    write_feature_store(args.out, merge_feature_stores(args.inputs))
    return 0
