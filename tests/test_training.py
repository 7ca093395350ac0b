"""Training and held-out evaluation: metrics, baseline, output files, evaluation of a saved model."""

from __future__ import annotations

import json
import logging

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import r2_score

from enpact.errors import EnpactError
from enpact.models import FeatureSpec, load_model
from enpact.training import (
    evaluate_model,
    fit_baseline,
    regression_metrics,
    track_correlations,
    train_and_evaluate,
)

OUTPUT_FILES = [
    "baseline_comparison.png",
    "metrics.json",
    "model.json",
    "observed_vs_predicted.png",
    "predictions.tsv",
    "weights.npz",
]


def make_spec(n_tracks: int, bins: int = 4) -> FeatureSpec:
    """Spec for 4 unaveraged bins and tracks t0..t{n-1}."""
    return FeatureSpec("enformer", "tiny-v1", 2048, 128, bins, "none", tuple(f"t{i}" for i in range(n_tracks)))


def planted_dataset(seed: int = 0, n: int = 700, tracks: int = 30, noise: float = 0.4):
    """Features, targets (linear in log1p bin-mean tracks), splits, locus ids; a few loci on no split."""
    rng = np.random.default_rng(seed)
    X = (rng.gamma(2.0, 1.0, (n, 1, tracks)) * rng.gamma(4.0, 0.25, (n, 4, tracks))).astype(np.float32)
    logged = np.log1p(X.mean(axis=1, dtype=np.float64))
    beta = np.zeros(tracks)
    beta[[2, 5, 6, 7]] = [1.5, -1.0, 1.0, 0.8]
    signal = (logged - logged.mean(axis=0)) / logged.std(axis=0) @ beta
    y = signal + noise * signal.std() * rng.standard_normal(n)
    held = n // 6
    splits = np.array(["train"] * (n - 2 * held - 10) + ["valid"] * held + ["test"] * held + ["none"] * 10)
    ids = np.array([f"ENSG{i:06d}" for i in range(n)])
    return X, y, splits, ids


# ---------------------------------------------------------------- metrics


def test_regression_metrics_match_scipy_and_sklearn():
    rng = np.random.default_rng(1)
    y = np.round(rng.normal(size=200), 1)  # ties, to exercise average ranks
    yhat = 0.6 * y + rng.normal(size=200) + 3.0
    metrics = regression_metrics(y, yhat)
    assert metrics["n"] == 200
    assert metrics["pearson_r"] == pytest.approx(pearsonr(y, yhat)[0], abs=1e-12)
    assert metrics["spearman_rho"] == pytest.approx(spearmanr(y, yhat)[0], abs=1e-12)
    assert metrics["r2"] == pytest.approx(r2_score(y, yhat), abs=1e-12)
    assert metrics["r2"] < 0  # biased predictions: R2 is not r squared


def test_regression_metrics_undefined_cases_are_none():
    assert regression_metrics([1.0], [2.0]) == {"pearson_r": None, "spearman_rho": None, "r2": None, "n": 1}
    constant = regression_metrics([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert constant["pearson_r"] is None and constant["spearman_rho"] is None
    assert constant["r2"] == pytest.approx(r2_score([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] is None


def test_track_correlations_match_numpy():
    rng = np.random.default_rng(2)
    tracks = rng.gamma(1.0, 1.0, (80, 2500)).astype(np.float32)  # more than one column chunk
    tracks[:, 7] = 1.0
    y = tracks[:, 3] * 2 + rng.normal(size=80)
    r = track_correlations(tracks, y)
    expected = [np.corrcoef(tracks[:, j].astype(np.float64), y)[0, 1] for j in (0, 3, 2400)]
    np.testing.assert_allclose(r[[0, 3, 2400]], expected, rtol=1e-6)
    assert r[7] == 0.0 and int(np.argmax(np.abs(r))) == 3


def test_fit_baseline_best_track_and_least_squares_line():
    rng = np.random.default_rng(3)
    X = rng.gamma(2.0, 1.0, (100, 4, 6)).astype(np.float32)
    raw = X.mean(axis=1).astype(np.float64)
    y = -2.0 * raw[:, 4] + rng.normal(size=100)
    baseline = fit_baseline(X, y, make_spec(6))
    assert (baseline.track_index, baseline.track, baseline.chosen_by) == (4, "t4", "max_abs_train_correlation")
    slope, intercept = np.polyfit(raw[:, 4], y, 1)
    assert baseline.slope == pytest.approx(slope, rel=1e-5) and baseline.intercept == pytest.approx(intercept, rel=1e-5)
    np.testing.assert_allclose(baseline.predict(X), slope * raw[:, 4] + intercept, rtol=1e-5)
    named = fit_baseline(X, y, make_spec(6), track="t1")
    assert (named.track_index, named.chosen_by) == (1, "user")
    with pytest.raises(EnpactError, match="baseline track 'CAGE' is not among the 6 feature tracks"):
        fit_baseline(X, y, make_spec(6), track="CAGE")


# ---------------------------------------------------------------- train_and_evaluate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An elastic net trained by train_and_evaluate on the planted dataset."""
    out = tmp_path_factory.mktemp("train") / "model"
    X, y, splits, ids = planted_dataset()
    metrics = train_and_evaluate(X, y, splits, ids, make_spec(30), "elastic_net", out, folds=4, seed=3)
    return out, metrics, (X, y, splits, ids)


def test_train_and_evaluate_writes_all_outputs(trained):
    out, metrics, _ = trained
    assert sorted(p.name for p in out.iterdir()) == OUTPUT_FILES
    assert [p.name for p in out.parent.iterdir()] == ["model"]  # no staging folder left
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    assert on_disk["n"] == {"train": 458, "valid": 116, "test": 116}
    assert on_disk["hyperparameters"]["folds"] == 4 and on_disk["hyperparameters"]["seed"] == 3
    assert on_disk["training"]["alpha"] > 0
    assert on_disk["baseline"]["track"] in {"t2", "t5", "t6", "t7"}
    for split in ("train", "valid", "test"):
        assert set(on_disk["model"][split]) == {"pearson_r", "spearman_rho", "r2", "n"}
    for name in ("observed_vs_predicted.png", "baseline_comparison.png"):
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 200
    assert matplotlib.image.imread(out / "observed_vs_predicted.png").shape[1] > 2.5 * 400  # three panels


def test_train_and_evaluate_model_beats_baseline_on_held_out_splits(trained):
    _, metrics, _ = trained
    for split in ("valid", "test"):
        model_r = metrics["model"][split]["pearson_r"]
        baseline_r = metrics["baseline"]["metrics"][split]["pearson_r"]
        assert model_r > 0.85 and model_r > baseline_r + 0.15


def test_predictions_tsv_agrees_with_metrics_and_saved_model(trained):
    out, metrics, (X, y, splits, ids) = trained
    table = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert list(table.columns) == ["locus_id", "split", "observed", "predicted", "baseline"]
    assert len(table) == 690 and "none" not in set(table["split"])  # loci of no split are ignored
    assert list(table["locus_id"]) == list(ids[:690])
    np.testing.assert_allclose(table["observed"], y[:690], rtol=1e-7)
    test = table[table["split"] == "test"]
    recomputed = regression_metrics(test["observed"], test["predicted"])
    assert recomputed["pearson_r"] == pytest.approx(metrics["model"]["test"]["pearson_r"], abs=1e-6)
    baseline = regression_metrics(test["observed"], test["baseline"])
    assert baseline["pearson_r"] == pytest.approx(metrics["baseline"]["metrics"]["test"]["pearson_r"], abs=1e-6)
    np.testing.assert_allclose(load_model(out).predict(X[:690]), table["predicted"], rtol=1e-7)


def test_empty_held_out_splits_give_null_metrics_and_a_warning(tmp_path, caplog):
    X, y, splits, ids = planted_dataset(n=200)
    splits = np.where(splits == "train", "train", "other")
    with caplog.at_level(logging.WARNING, logger="enpact.training"):
        metrics = train_and_evaluate(X, y, splits, ids, make_spec(30), "elastic_net", tmp_path / "m")
    assert metrics["model"]["valid"] is None and metrics["model"]["test"] is None
    assert metrics["baseline"]["metrics"]["test"] is None
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["model"]["valid"] is None
    assert "no loci on the valid split" in caplog.text and "no loci on the test split" in caplog.text
    assert (tmp_path / "m" / "baseline_comparison.png").stat().st_size > 0


def test_too_few_train_loci_is_an_error_and_leaves_nothing(tmp_path):
    X, y, splits, ids = planted_dataset(n=300)
    splits = np.where(np.arange(300) < 9, "train", "test")
    with pytest.raises(EnpactError, match="only 9 loci on the train split"):
        train_and_evaluate(X, y, splits, ids, make_spec(30), "elastic_net", tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_a_model_without_any_track_stops_training_with_the_reason(tmp_path):
    """Issue 24: a constant model used to pass training, personalize every individual identically, and fail at
    linearization with "zero_variance" for every locus."""
    from enpact.checks import param_names

    X, y, splits, ids = planted_dataset(n=300)
    flat = np.ones_like(X)   # no track varies: nothing predicts the targets
    with pytest.raises(EnpactError, match=r"the elastic_net model keeps no track \(every coefficient is 0.*over the "
                                          r"\d+ train loci\).*--hyperparameters eps=1e-4\) or use --model-type cnn") as err:
        train_and_evaluate(flat, y, splits, ids, make_spec(30), "elastic_net", tmp_path / "m")
    assert list(tmp_path.iterdir()) == []
    assert "model_hyperparameters eps=1e-4" in param_names(str(err.value), "train")


def test_non_finite_target_names_the_locus(tmp_path):
    X, y, splits, ids = planted_dataset(n=300)
    y[42] = np.nan
    with pytest.raises(EnpactError, match=r"^targets: locus ENSG000042 has value nan"):
        train_and_evaluate(X, y, splits, ids, make_spec(30), "elastic_net", tmp_path / "m")


def test_length_and_shape_mismatches_are_errors(tmp_path):
    X, y, splits, ids = planted_dataset(n=300)
    with pytest.raises(EnpactError, match="differ in length"):
        train_and_evaluate(X, y[:-1], splits, ids, make_spec(30), "elastic_net", tmp_path / "m")
    with pytest.raises(EnpactError, match="features have 30 tracks, the model expects 31"):
        train_and_evaluate(X, y, splits, ids, make_spec(31), "elastic_net", tmp_path / "m")


def test_train_and_evaluate_cnn(tmp_path):
    X, y, splits, ids = planted_dataset(n=400, tracks=8)
    metrics = train_and_evaluate(
        X, y, splits, ids, make_spec(8), "cnn", tmp_path / "cnn", seed=1, device="cpu",
        hyperparameters={"channels": 16, "max_epochs": 40, "patience": 5, "learning_rate": 3e-3},
    )
    assert (tmp_path / "cnn" / "weights.safetensors").is_file()
    assert metrics["training"]["early_stopping_on"] == "valid split"
    assert metrics["hyperparameters"]["seed"] == 1
    assert metrics["model"]["test"]["pearson_r"] > 0.7


# ---------------------------------------------------------------- evaluate_model


def test_evaluate_model_on_other_data_uses_saved_baseline(trained, tmp_path):
    model_dir, train_metrics, _ = trained
    X, y, splits, ids = planted_dataset(seed=9, n=300)
    splits = np.full(300, "test")
    metrics = evaluate_model(model_dir, X, y, splits, ids, tmp_path / "eval", feature_spec=make_spec(30))
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == sorted(
        set(OUTPUT_FILES) - {"model.json", "weights.npz"}
    )
    assert metrics["n"] == {"train": 0, "valid": 0, "test": 300}
    assert metrics["model"]["train"] is None and metrics["model"]["test"]["pearson_r"] > 0.85
    assert metrics["baseline"]["track"] == train_metrics["baseline"]["track"]
    assert metrics["baseline"]["slope"] == train_metrics["baseline"]["slope"]
    table = pd.read_csv(tmp_path / "eval" / "predictions.tsv", sep="\t")
    np.testing.assert_allclose(table["predicted"], load_model(model_dir).predict(X), rtol=1e-7)


def test_evaluate_model_refuses_features_made_differently(trained, tmp_path):
    model_dir, _, _ = trained
    X, y, splits, ids = planted_dataset(n=100)
    other = FeatureSpec("enformer", "official", 2048, 128, 4, "none", tuple(f"t{i}" for i in range(30)))
    with pytest.raises(EnpactError, match="features were made with weights 'official', the model expects 'tiny-v1'"):
        evaluate_model(model_dir, X, y, splits, ids, tmp_path / "eval", feature_spec=other)
    assert not (tmp_path / "eval").exists()
