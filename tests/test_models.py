"""EnPACT models: feature spec, registry, elastic net, CNN, model directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import ElasticNetCV

from enpact.errors import EnpactError
from enpact.models import FeatureSpec, create_model, load_model, read_model_json
from enpact.models.base import as_feature_array
from enpact.models.elastic_net import alpha_grid, elastic_net_inputs


def make_spec(n_tracks: int, bins: int = 4, aggregate: str = "none", weights: str = "tiny-v1") -> FeatureSpec:
    """A feature spec with tracks t0..t{n-1}."""
    return FeatureSpec("enformer", weights, 2048, 128, bins, aggregate, tuple(f"t{i}" for i in range(n_tracks)))


def gamma_features(rng: np.random.Generator, n: int, bins: int, tracks: int, rank: int = 0) -> np.ndarray:
    """Non-negative float32 features (n, bins, tracks), optionally with a shared low-rank structure."""
    scale = rng.gamma(2.0, 1.0, (n, 1, tracks))
    if rank:
        scale = (rng.gamma(2.0, 1.0, (n, rank)) @ rng.gamma(0.5, 1.0, (rank, tracks)))[:, None, :]
    return (scale * rng.gamma(4.0, 0.25, (n, bins, tracks))).astype(np.float32)


def planted_linear(rng, n=900, bins=4, tracks=40, k=5, noise=0.3, rank=0):
    """Features and y = log1p(bin-mean tracks) @ beta + noise, with beta nonzero on k tracks."""
    X = gamma_features(rng, n, bins, tracks, rank)
    logged = np.log1p(X.mean(axis=1, dtype=np.float64))
    beta = np.zeros(tracks)
    support = rng.choice(tracks, k, replace=False)
    beta[support] = rng.choice([-1.0, 1.0], k) * rng.uniform(1.0, 2.0, k)
    signal = (logged - logged.mean(axis=0)) / logged.std(axis=0) @ beta
    y = signal + noise * signal.std() * rng.standard_normal(n)
    return X, y, signal, set(support.tolist())


# ---------------------------------------------------------------- FeatureSpec


def test_feature_spec_round_trip_and_extra_keys_ignored():
    spec = make_spec(3)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    described = {**spec.to_dict(), "head": "human"}  # a predictor's describe() has more keys
    assert FeatureSpec.from_dict(described) == spec
    assert json.loads(json.dumps(spec.to_dict()))["tracks"] == ["t0", "t1", "t2"]


def test_feature_spec_missing_field_names_source():
    data = make_spec(3).to_dict()
    del data["bins"]
    with pytest.raises(EnpactError, match=r"^store\.h5: feature spec lacks 'bins'"):
        FeatureSpec.from_dict(data, source="store.h5")


def test_feature_spec_rejects_unknown_aggregate():
    with pytest.raises(EnpactError, match="aggregate"):
        make_spec(3, aggregate="max")


@pytest.mark.parametrize(
    "other, expected",
    [
        (make_spec(3, weights="other-w"), "features were made with weights 'other-w', the model expects 'tiny-v1'"),
        (make_spec(3, bins=2), "features were made with bins 2, the model expects 4"),
        (make_spec(3, aggregate="mean"), "features were made with aggregate 'mean', the model expects 'none'"),
        (make_spec(5), "features were made with 5 tracks, the model expects 3"),
        (
            FeatureSpec("enformer", "tiny-v1", 2048, 128, 4, "none", ("t0", "x1", "t2")),
            "features were made with track 1 'x1', the model expects 't1'",
        ),
    ],
)
def test_feature_spec_mismatch_message(other, expected):
    with pytest.raises(EnpactError) as info:
        make_spec(3).check_compatible(other, "features.h5")
    message = str(info.value)
    assert message.startswith("features.h5: ") and expected in message
    assert "\n" not in message


def test_feature_spec_compatible_passes():
    make_spec(3).check_compatible(make_spec(3), "features.h5")


def test_as_feature_array_shapes():
    spec_mean = make_spec(4, aggregate="mean")
    flat = np.ones((5, 4), dtype=np.float64)
    assert as_feature_array(flat, spec_mean).shape == (5, 1, 4)
    assert as_feature_array(flat, spec_mean).dtype == np.float32
    with pytest.raises(EnpactError, match="features have 4 bins per locus, the model expects 1"):
        as_feature_array(np.ones((5, 4, 4)), spec_mean)
    with pytest.raises(EnpactError, match="features have 3 tracks, the model expects 4"):
        as_feature_array(np.ones((5, 1, 3)), spec_mean)


# ---------------------------------------------------------------- registry


def test_registry_errors():
    with pytest.raises(EnpactError, match="unknown model type 'gbm'; available: cnn, elastic_net"):
        create_model("gbm", make_spec(3))
    with pytest.raises(EnpactError, match="unknown hyperparameter 'alpah'"):
        create_model("elastic_net", make_spec(3), alpah=0.1)
    with pytest.raises(EnpactError, match="hyperparameter folds must be int"):
        create_model("elastic_net", make_spec(3), folds=2.5)
    typed = create_model("elastic_net", make_spec(3), folds=np.int64(4), l1_ratio="0.7")
    assert typed.hyperparameters["folds"] == 4 and type(typed.hyperparameters["folds"]) is int
    assert typed.hyperparameters["l1_ratio"] == 0.7
    with pytest.raises(EnpactError, match="not fitted"):
        create_model("elastic_net", make_spec(3)).predict(np.ones((2, 4, 3)))


def test_load_model_errors(tmp_path):
    with pytest.raises(EnpactError, match="no model.json"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(EnpactError, match="not valid JSON"):
        load_model(tmp_path)


# ---------------------------------------------------------------- elastic net


def test_elastic_net_recovers_planted_truth_on_held_out_loci():
    rng = np.random.default_rng(3)
    X, y, signal, support = planted_linear(rng, n=900, tracks=40, k=5, noise=0.3)
    train = np.arange(900) < 600
    model = create_model("elastic_net", make_spec(40)).fit(X[train], y[train])
    predicted = model.predict(X[~train])
    r = np.corrcoef(predicted, y[~train])[0, 1]
    oracle = np.corrcoef(signal[~train], y[~train])[0, 1]
    assert r > 0.9 and r > oracle - 0.02
    strongest = set(np.argsort(-np.abs(model.coef))[: len(support)].tolist())
    assert strongest == support
    # the best single raw track, fitted on train, is much worse
    raw = X.mean(axis=1)
    best = int(np.argmax([abs(np.corrcoef(raw[train, j], y[train])[0, 1]) for j in range(40)]))
    assert abs(np.corrcoef(raw[~train, best], y[~train])[0, 1]) < r - 0.2
    info = model.training_info
    assert info["n_train"] == 600 and info["folds"] == 5 and info["alpha"] == info["cv_alphas"][info["alpha_index"]]


def test_elastic_net_cv_matches_scikit_learn_elastic_net_cv():
    rng = np.random.default_rng(11)
    X, y, _, _ = planted_linear(rng, n=300, tracks=25, k=6, noise=2.0, rank=4)
    spec = make_spec(25)
    settings = dict(folds=4, seed=5, n_alphas=25, eps=1e-3, tol=1e-10, max_iter=100000)
    model = create_model("elastic_net", spec, cv_patience=0, **settings).fit(X, y)
    stopped = create_model("elastic_net", spec, **settings).fit(X, y)  # path stopped 3 penalties past the best
    # independent reference: scikit-learn's own CV on the same standardised inputs, folds and penalty grid
    inputs = elastic_net_inputs(as_feature_array(X, spec)).astype(np.float64)
    Z = (inputs - inputs.mean(axis=0)) / inputs.std(axis=0)
    fold_of = np.random.default_rng(5).permutation(np.arange(300) % 4)   # enpact.glmnet.assign_folds's rule
    folds = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(4)]
    alphas = alpha_grid(Z, y, 0.5, 25, 1e-3)
    reference = ElasticNetCV(l1_ratio=0.5, alphas=alphas, cv=folds, tol=1e-10, max_iter=100000).fit(Z, y)
    assert model.training_info["alpha"] == pytest.approx(reference.alpha_, rel=1e-12)
    assert 0 < model.training_info["alpha_index"] < 20  # an interior optimum, so early stopping can apply
    np.testing.assert_allclose(model.training_info["cv_mse"], reference.mse_path_.mean(axis=1), rtol=1e-6)
    assert len(stopped.training_info["cv_mse"]) == stopped.training_info["alpha_index"] + 4
    assert np.array_equal(stopped.coef, model.coef)
    np.testing.assert_allclose(model.coef, reference.coef_, atol=1e-6)
    np.testing.assert_allclose(model.predict(X), reference.predict(Z), atol=1e-5)


def test_elastic_net_bins_average_like_device_mean():
    rng = np.random.default_rng(4)
    X4 = gamma_features(rng, 50, 4, 6)
    device_mean = X4.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(elastic_net_inputs(X4), elastic_net_inputs(device_mean), rtol=1e-6)
    np.testing.assert_allclose(elastic_net_inputs(X4), np.log1p(X4.astype(np.float64).mean(axis=1)), rtol=1e-6)


def test_elastic_net_constant_and_negative_tracks():
    rng = np.random.default_rng(5)
    X, y, _, _ = planted_linear(rng, n=200, tracks=10, k=2, noise=0.2)
    X[:, :, 3] = 2.5  # constant on the train split
    X[:, :, 7] = 0.0
    X[:5, :, 0] = -0.01  # tiny negative outputs are clipped, not NaN
    model = create_model("elastic_net", make_spec(10)).fit(X, y)
    assert model.coef[3] == 0.0 and model.coef[7] == 0.0
    assert model.training_info["n_constant_tracks"] == 2
    assert np.isfinite(model.predict(X)).all()


def test_elastic_net_without_signal_predicts_mean():
    rng = np.random.default_rng(6)
    X = np.ones((30, 4, 5), dtype=np.float32)
    y = rng.standard_normal(30)
    model = create_model("elastic_net", make_spec(5)).fit(X, y)
    np.testing.assert_allclose(model.predict(rng.gamma(1.0, 1.0, (7, 4, 5))), np.full(7, y.mean()))


def test_elastic_net_rejects_nan_targets():
    with pytest.raises(EnpactError, match="NaN"):
        create_model("elastic_net", make_spec(3)).fit(np.ones((20, 4, 3)), np.full(20, np.nan))


def test_elastic_net_predict_streams_in_batches():
    rng = np.random.default_rng(7)
    X, y, _, _ = planted_linear(rng, n=300, tracks=20, k=4)
    model = create_model("elastic_net", make_spec(20)).fit(X, y)
    whole = model.predict(X)
    pieces = np.concatenate([model.predict(X[i : i + 37]) for i in range(0, 300, 37)])
    assert whole.dtype == np.float64 and whole.shape == (300,)
    np.testing.assert_allclose(pieces, whole, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- model directories


def _fitted(model_type: str):
    """A small fitted model of the type and its training features."""
    rng = np.random.default_rng(8)
    X, y, _, _ = planted_linear(rng, n=240, tracks=12, k=3)
    options = {"max_epochs": 5, "channels": 8, "device": "cpu"} if model_type == "cnn" else {}
    return create_model(model_type, make_spec(12), **options).fit(X[:200], y[:200], X[200:], y[200:]), X


@pytest.mark.parametrize("model_type, weights_file", [("elastic_net", "weights.npz"), ("cnn", "weights.safetensors")])
def test_save_load_round_trip_is_bit_exact(tmp_path, model_type, weights_file):
    model, X = _fitted(model_type)
    before = model.predict(X)
    model.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.json", weights_file]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.predict(X), before)
    description = read_model_json(tmp_path / "model")
    assert description["model_type"] == model_type
    assert description["feature_spec"] == make_spec(12).to_dict()
    assert description["hyperparameters"] == model.hyperparameters
    assert description["training"]["n_train"] == 200
    assert "standardise" in description["feature_transform"]
    if weights_file.endswith(".npz"):
        np.load(tmp_path / "model" / weights_file, allow_pickle=False).close()


def test_save_overwrites_existing_model_directory(tmp_path):
    model, X = _fitted("elastic_net")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "metrics.json").write_text("{}")
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["metrics.json", "model.json", "weights.npz"]
    assert np.array_equal(load_model(tmp_path / "m").predict(X), model.predict(X))


def test_load_detects_tampered_weights(tmp_path):
    model, _ = _fitted("elastic_net")
    model.save(tmp_path / "m")
    other, _ = _fitted("elastic_net")
    other.intercept += 1.0
    other.save(tmp_path / "other")
    (tmp_path / "m" / "weights.npz").write_bytes((tmp_path / "other" / "weights.npz").read_bytes())
    with pytest.raises(EnpactError, match="checksum differs from model.json"):
        load_model(tmp_path / "m")


# ---------------------------------------------------------------- CNN


def interaction_data(rng, n=1500, bins=4, tracks=6):
    """y = product of two standardised log tracks: no linear signal, easy for a small net."""
    X = gamma_features(rng, n, bins, tracks)
    logged = np.log1p(X.mean(axis=1, dtype=np.float64))
    z = (logged - logged.mean(axis=0)) / logged.std(axis=0)
    y = z[:, 0] * z[:, 1] + 0.2 * rng.standard_normal(n)
    return X, y


def test_cnn_learns_nonlinear_signal_that_a_linear_model_misses():
    rng = np.random.default_rng(9)
    X, y = interaction_data(rng)
    train, valid, test = slice(0, 1000), slice(1000, 1250), slice(1250, 1500)
    spec = make_spec(6)
    cnn = create_model("cnn", spec, device="cpu", channels=32, max_epochs=60, patience=8, learning_rate=3e-3)
    cnn.fit(X[train], y[train], X[valid], y[valid])
    linear = create_model("elastic_net", spec).fit(X[train], y[train])
    linear_predicted = linear.predict(X[test])
    r_cnn = np.corrcoef(cnn.predict(X[test]), y[test])[0, 1]
    r_linear = 0.0 if np.ptp(linear_predicted) == 0 else np.corrcoef(linear_predicted, y[test])[0, 1]
    assert r_cnn > 0.6
    assert r_linear < 0.3
    assert cnn.training_info["early_stopping_on"] == "valid split"


def test_cnn_early_stopping_triggers_on_noise():
    rng = np.random.default_rng(10)
    X = gamma_features(rng, 300, 4, 5)
    y = rng.standard_normal(300)
    cnn = create_model("cnn", make_spec(5), device="cpu", channels=16, max_epochs=200, patience=3, learning_rate=1e-2)
    cnn.fit(X[:200], y[:200], X[200:], y[200:])
    info = cnn.training_info
    assert info["stopped_early"] is True
    assert info["epochs_run"] == info["best_epoch"] + 3 < 200


def test_cnn_is_deterministic_per_seed():
    rng = np.random.default_rng(12)
    X, y = interaction_data(rng, n=300)
    fit = lambda seed: create_model("cnn", make_spec(6), device="cpu", channels=8, max_epochs=4, seed=seed).fit(
        X[:250], y[:250], X[250:], y[250:]
    )
    first, again, other = fit(1).predict(X), fit(1).predict(X), fit(2).predict(X)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_cnn_with_one_bin_is_an_mlp_and_uses_part_of_train_for_stopping():
    rng = np.random.default_rng(13)
    X, y = interaction_data(rng, n=400, bins=1)
    cnn = create_model("cnn", make_spec(6, aggregate="mean"), device="cpu", channels=8, max_epochs=3)
    cnn.fit(X[:, 0, :], y)  # 2-D (loci, tracks) features are accepted for one bin
    assert all(conv.kernel_size == (1,) for conv in cnn.net.body if hasattr(conv, "kernel_size"))
    assert cnn.training_info["n_train"] == 360 and cnn.training_info["n_early_stopping"] == 40
    assert cnn.predict(X).shape == (400,)


def test_cnn_rejects_bad_device_and_hyperparameters():
    with pytest.raises(EnpactError, match="device must be cpu, cuda or auto"):
        create_model("cnn", make_spec(3), device="tpu")
    with pytest.raises(EnpactError, match="dropout"):
        create_model("cnn", make_spec(3), dropout=1.5)
