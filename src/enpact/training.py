"""Fit an EnPACT model on the train split and evaluate it, with a single-track baseline, on every split.

`train_and_evaluate` writes a model directory that also holds the evaluation:
  model.json + weights            the model (see enpact.models)
  metrics.json                    per-split metrics of the model and the baseline (written last)
  predictions.tsv                 locus_id, split, observed, predicted, baseline
  observed_vs_predicted.png       one panel per split
  baseline_comparison.png         Pearson r per split, model vs baseline
`evaluate_model` writes the same evaluation files for an existing model on other data.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from enpact import __version__
from enpact.errors import EnpactError
from enpact.models.base import (
    EnpactModel,
    FeatureSpec,
    as_feature_array,
    load_model,
    mean_over_bins,
    model_class,
    write_json,
)
from enpact.io import atomic_directory
from enpact.loci import MIN_TRAIN_LOCI
from enpact.plots_training import plot_baseline_comparison, plot_observed_vs_predicted

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
METRICS_JSON = "metrics.json"
PREDICTIONS_TSV = "predictions.tsv"
SCATTER_PNG = "observed_vs_predicted.png"
BASELINE_PNG = "baseline_comparison.png"
CORRELATION_CHUNK = 1024


def _finite_or_none(value: float) -> float | None:
    """A float for JSON, or None when it is NaN or infinite."""
    value = float(value)
    return value if np.isfinite(value) else None


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two float64 vectors; NaN when either is constant."""
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else float("nan")


def regression_metrics(y: np.ndarray, yhat: np.ndarray) -> dict[str, Any]:
    """Pearson r, Spearman rho (average ranks for ties), R2 = 1 - SSres/SStot, and n; None where undefined."""
    y = np.asarray(y, dtype=np.float64).ravel()
    yhat = np.asarray(yhat, dtype=np.float64).ravel()
    if y.shape != yhat.shape:
        raise ValueError(f"observed and predicted differ in length ({len(y)} vs {len(yhat)})")
    n = len(y)
    if n < 2:
        return {"pearson_r": None, "spearman_rho": None, "r2": None, "n": n}
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - yhat) ** 2)) / total if total > 0 else float("nan")
    return {
        "pearson_r": _finite_or_none(_pearson(y, yhat)),
        "spearman_rho": _finite_or_none(_pearson(rankdata(y), rankdata(yhat))),
        "r2": _finite_or_none(r2),
        "n": n,
    }


def track_correlations(tracks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each column of `tracks` (n, T) with y, in column chunks; 0 for constant columns."""
    y = np.asarray(y, dtype=np.float64)
    yc = y - y.mean()
    y_norm = np.sqrt(np.dot(yc, yc))
    out = np.zeros(tracks.shape[1])
    if y_norm == 0:
        return out
    for begin in range(0, tracks.shape[1], CORRELATION_CHUNK):
        block = np.asarray(tracks[:, begin : begin + CORRELATION_CHUNK], dtype=np.float64)
        block = block - block.mean(axis=0)
        norms = np.sqrt(np.einsum("ij,ij->j", block, block))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (yc @ block) / (norms * y_norm)
        out[begin : begin + block.shape[1]] = np.where(norms > 0, r, 0.0)
    return out


@dataclasses.dataclass(frozen=True)
class TrackBaseline:
    """A linear fit of the target on one raw track (mean over bins), fitted on the train split."""

    track_index: int
    track: str
    slope: float
    intercept: float
    chosen_by: str

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Baseline predictions (n,) float64 for checked features (n, bins, tracks)."""
        column = mean_over_bins(features[:, :, self.track_index : self.track_index + 1])[:, 0]
        return column.astype(np.float64) * self.slope + self.intercept

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackBaseline:
        """Inverse of to_dict."""
        return cls(int(data["track_index"]), str(data["track"]), float(data["slope"]), float(data["intercept"]),
                   str(data["chosen_by"]))


def fit_baseline(
    features: np.ndarray, y: np.ndarray, spec: FeatureSpec, track: str | None = None
) -> TrackBaseline:
    """The named track, or the raw track most correlated (|r|) with y, and its least-squares line on these loci."""
    tracks = mean_over_bins(features)
    if track is not None:
        if track not in spec.tracks:
            raise EnpactError(
                f"baseline track '{track}' is not among the {spec.n_tracks} feature tracks; give a track name"
            )
        index, chosen_by = spec.tracks.index(track), "user"
    else:
        index, chosen_by = int(np.argmax(np.abs(track_correlations(tracks, y)))), "max_abs_train_correlation"
    x = tracks[:, index].astype(np.float64)
    y = np.asarray(y, dtype=np.float64)
    variance = float(np.var(x))
    slope = float(np.mean((x - x.mean()) * (y - y.mean())) / variance) if variance > 0 else 0.0
    intercept = float(y.mean() - slope * x.mean())
    return TrackBaseline(index, spec.tracks[index], slope, intercept, chosen_by)


def split_masks(splits: Sequence[str] | np.ndarray) -> dict[str, np.ndarray]:
    """Boolean mask per split name (train/valid/test); other labels belong to none."""
    labels = np.asarray(splits).astype(str)
    return {name: labels == name for name in SPLITS}


def metrics_by_split(y: np.ndarray, yhat: np.ndarray | None, masks: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """regression_metrics per split; None for an empty split (or when there are no predictions)."""
    if yhat is None:
        return {name: None for name in masks}
    return {name: (regression_metrics(y[mask], yhat[mask]) if mask.any() else None) for name, mask in masks.items()}


def _check_inputs(
    features: np.ndarray, targets: np.ndarray, splits: np.ndarray, locus_ids: Sequence[str], spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked (features, targets, split labels, locus ids) restricted to loci of a known split."""
    features = as_feature_array(features, spec, "features")
    targets = np.asarray(targets, dtype=np.float64).ravel()
    labels = np.asarray(splits).astype(str)
    ids = np.asarray(locus_ids).astype(str)
    n = len(features)
    if not len(targets) == len(labels) == len(ids) == n:
        raise EnpactError(
            f"features ({n} loci), targets ({len(targets)}), splits ({len(labels)}) and locus ids ({len(ids)}) "
            "differ in length; build them from the same locus table"
        )
    used = np.isin(labels, SPLITS)
    if (~used).any():
        log.info("%d loci have a split other than train/valid/test and are ignored", int((~used).sum()))
    features, targets, labels, ids = features[used], targets[used], labels[used], ids[used]
    bad_target = ~np.isfinite(targets)
    if bad_target.any():
        raise EnpactError(
            f"targets: locus {ids[bad_target][0]} has value {targets[bad_target][0]} ({int(bad_target.sum())} loci "
            "not finite); drop loci without observations from the target matrix"
        )
    bad_feature = ~np.isfinite(features).all(axis=(1, 2))
    if bad_feature.any():
        raise EnpactError(
            f"features: locus {ids[bad_feature][0]} has NaN or infinite features ({int(bad_feature.sum())} loci); "
            "recompute the features for it"
        )
    return features, targets, labels, ids


def _warn_empty_splits(masks: Mapping[str, np.ndarray]) -> None:
    """Warn once per empty valid/test split (its metrics are reported as null)."""
    for name in ("valid", "test"):
        if not masks[name].any():
            log.warning("no loci on the %s split: its metrics are reported as null", name)


def _write_outputs(
    directory: Path,
    ids: np.ndarray,
    labels: np.ndarray,
    observed: np.ndarray,
    predicted: np.ndarray,
    baseline_predicted: np.ndarray | None,
    metrics: dict[str, Any],
    baseline_label: str,
) -> None:
    """predictions.tsv, the two PNGs and metrics.json into an existing (staging) folder."""
    table = pd.DataFrame({
        "locus_id": ids,
        "split": labels,
        "observed": observed,
        "predicted": predicted,
        "baseline": np.full(len(ids), np.nan) if baseline_predicted is None else baseline_predicted,
    })
    table.to_csv(directory / PREDICTIONS_TSV, sep="\t", index=False, float_format="%.8g", na_rep="NA")
    plot_observed_vs_predicted(observed, predicted, labels, metrics["model"], directory / SCATTER_PNG)
    baseline_metrics = metrics["baseline"]["metrics"] if metrics["baseline"] else None
    plot_baseline_comparison(metrics["model"], baseline_metrics, baseline_label, directory / BASELINE_PNG)
    write_json(directory / METRICS_JSON, metrics)


def _evaluation(
    model: EnpactModel,
    features: np.ndarray,
    targets: np.ndarray,
    labels: np.ndarray,
    baseline: TrackBaseline | None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Model and baseline predictions and the metrics dict shared by training and evaluation."""
    masks = split_masks(labels)
    predicted = model.predict(features)
    baseline_predicted = None if baseline is None else baseline.predict(features)
    metrics = {
        "enpact_version": __version__,
        "model_type": model.model_type,
        "n": {name: int(mask.sum()) for name, mask in masks.items()},
        "model": metrics_by_split(targets, predicted, masks),
        "baseline": None if baseline is None else {
            **baseline.to_dict(),
            "metrics": metrics_by_split(targets, baseline_predicted, masks),
        },
        "hyperparameters": model.hyperparameters,
        "training": {k: v for k, v in model.training_info.items() if k != "baseline"},
        "feature_spec": {
            **{k: v for k, v in model.feature_spec.to_dict().items() if k != "tracks"},
            "n_tracks": model.feature_spec.n_tracks,
        },
    }
    return predicted, baseline_predicted, metrics


def _log_summary(metrics: Mapping[str, Any]) -> None:
    """One INFO line per split: model r vs baseline r."""
    for name in SPLITS:
        model_stats = metrics["model"].get(name)
        if not model_stats:
            continue
        base = ((metrics["baseline"] or {}).get("metrics") or {}).get(name) or {}
        log.info("%s: n=%d, model r=%s, baseline r=%s", name, model_stats["n"], model_stats["pearson_r"],
                 base.get("pearson_r"))


def _model_options(model_type: str, hyperparameters: Mapping[str, Any] | None, folds: int, seed: int,
                   device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hyperparameters, runtime options) for a model type: folds/seed fill in where the type has them."""
    cls = model_class(model_type)
    chosen = dict(hyperparameters or {})
    if "folds" in cls.default_hyperparameters:
        chosen.setdefault("folds", folds)
    if "seed" in cls.default_hyperparameters:
        chosen.setdefault("seed", seed)
    options = {"device": device} if "device" in inspect.signature(cls.__init__).parameters else {}
    return chosen, options


def train_and_evaluate(
    features: np.ndarray,
    targets: np.ndarray,
    splits: Sequence[str] | np.ndarray,
    locus_ids: Sequence[str],
    feature_spec: FeatureSpec,
    model_type: str,
    outdir: str | Path,
    *,
    folds: int = 5,
    seed: int = 0,
    device: str = "auto",
    baseline_track: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit on train (valid for early stopping), evaluate every split, write the model and its evaluation to outdir.

    `folds` and `seed` apply to model types that have them; values in `hyperparameters` take precedence.
    Returns the content of metrics.json.
    """
    features, targets, labels, ids = _check_inputs(features, targets, np.asarray(splits), locus_ids, feature_spec)
    masks = split_masks(labels)
    n_train = int(masks["train"].sum())
    if n_train < MIN_TRAIN_LOCI:
        raise EnpactError(
            f"only {n_train} loci on the train split (at least {MIN_TRAIN_LOCI} needed); check the locus "
            "table's split column and the chromosome-to-split assignment"
        )
    _warn_empty_splits(masks)
    chosen, options = _model_options(model_type, hyperparameters, folds, seed, device)
    model = model_class(model_type)(feature_spec, **options, **chosen)
    train, valid = masks["train"], masks["valid"]
    model.fit(features[train], targets[train], features[valid] if valid.any() else None,
              targets[valid] if valid.any() else None)
    if model.training_info.get("n_nonzero") == 0:
        # a constant model gives every haplotype the same value: personalization would run for hours and
        # linearization would then find nothing to fit ("zero_variance" for every locus)
        raise EnpactError(
            f"the {model_type} model keeps no track (every coefficient is 0: cross-validation found no track that "
            f"predicts the targets over the {n_train} train loci), so it would give every individual the same "
            "value; check that the expression matrix's feature ids and the annotation match (and the genome "
            "build), add train loci, or let the penalty go lower (--hyperparameters eps=1e-4) or use "
            "--model-type cnn")
    baseline = fit_baseline(features[train], targets[train], feature_spec, baseline_track)
    model.training_info["baseline"] = baseline.to_dict()
    predicted, baseline_predicted, metrics = _evaluation(model, features, targets, labels, baseline)
    outdir = Path(outdir)
    with atomic_directory(outdir, last=("model.json", METRICS_JSON)) as staging:
        model.write_files(staging)
        _write_outputs(staging, ids, labels, targets, predicted, baseline_predicted, metrics, baseline.track)
    _log_summary(metrics)
    log.info("wrote model and evaluation to %s", outdir)
    return metrics


def evaluate_model(
    model_dir: str | Path,
    features: np.ndarray,
    targets: np.ndarray,
    splits: Sequence[str] | np.ndarray,
    locus_ids: Sequence[str],
    outdir: str | Path,
    *,
    feature_spec: FeatureSpec | None = None,
    baseline_track: str | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Evaluate a saved model on other loci/targets: metrics.json, predictions.tsv and the plots in outdir.

    The baseline is the one saved with the model (same track, same line) unless `baseline_track` is given,
    in which case it is fitted on the train split of these data.
    """
    model = load_model(model_dir, device=device)
    if feature_spec is not None:
        model.feature_spec.check_compatible(feature_spec, context=str(model_dir))
    features, targets, labels, ids = _check_inputs(features, targets, np.asarray(splits), locus_ids, model.feature_spec)
    masks = split_masks(labels)
    if not len(labels):
        raise EnpactError("no loci with split train, valid or test to evaluate; check the locus table's split column")
    _warn_empty_splits(masks)
    baseline = _evaluation_baseline(model, features, targets, masks["train"], baseline_track)
    predicted, baseline_predicted, metrics = _evaluation(model, features, targets, labels, baseline)
    metrics["model_dir"] = str(model_dir)
    outdir = Path(outdir)
    with atomic_directory(outdir, last=(METRICS_JSON,)) as staging:
        _write_outputs(staging, ids, labels, targets, predicted, baseline_predicted, metrics,
                       baseline.track if baseline else "none")
    _log_summary(metrics)
    return metrics


def _evaluation_baseline(
    model: EnpactModel, features: np.ndarray, targets: np.ndarray, train: np.ndarray, track: str | None
) -> TrackBaseline | None:
    """The baseline to report when evaluating a saved model (see evaluate_model)."""
    saved = model.training_info.get("baseline")
    if track is None and saved:
        return TrackBaseline.from_dict(saved)
    if train.sum() >= 2:
        return fit_baseline(features[train], targets[train], model.feature_spec, track)
    if track is not None:
        raise EnpactError(f"baseline track '{track}' given but there are no train loci to fit it on")
    log.warning("no saved baseline and no train loci: the baseline is not reported")
    return None


def training_data(features_path: Path, loci_path: Path, expression_path: Path
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], FeatureSpec]:
    """Reference features, targets (feature means), splits, ids and feature spec of loci in all three inputs."""
    from enpact.expression import check_between_feature_signal, feature_means, read_expression
    from enpact.loci import read_loci
    from enpact.store import read_feature_store

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
