"""Elastic-net EnPACT model: a linear model on log1p of the bin-averaged tracks, penalty chosen by K-fold CV.

Feature transform (the same in fit and predict):
  1. mean over the bins of a locus (a no-op for features averaged on the device, so both give one model),
  2. negative values clipped to 0, then log1p (predicted tracks are non-negative and heavy-tailed),
  3. standardised with the train-split mean and sd of each track; tracks with sd < 1e-6 on the train
     split are constant: they are left out of the fit and get coefficient 0.

Cross-validation computes the Gram matrix once and derives each fold's centred training Gram matrix from
it (G - G_heldout - n m m'), then runs scikit-learn's coordinate-descent path on the precomputed Gram; this
costs about two Gram products instead of K + 1 (measured in benchmarks/bench_train.py).
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Mapping

import numpy as np

from enpact.errors import EnpactError
from enpact.models.base import EnpactModel, as_feature_array, log1p_features, mean_over_bins

log = logging.getLogger(__name__)

CONSTANT_SD = 1e-6


def elastic_net_inputs(features: np.ndarray) -> np.ndarray:
    """Unstandardised model inputs: log1p(max(mean over bins, 0)), float32 (n, tracks)."""
    return log1p_features(mean_over_bins(features))


def alpha_grid(Z: np.ndarray, y: np.ndarray, l1_ratio: float, n_alphas: int, eps: float) -> np.ndarray:
    """Log-spaced penalties from the smallest one that zeroes every coefficient down to eps times it (empty: no signal)."""
    centred_y = y - y.mean()
    alpha_max = float(np.max(np.abs(Z.T @ centred_y))) / (len(y) * l1_ratio) if Z.shape[1] else 0.0
    if alpha_max <= 0.0:
        return np.empty(0)
    return np.logspace(np.log10(alpha_max), np.log10(alpha_max * eps), n_alphas)


def _gram_path(
    X_centred: np.ndarray,
    y_centred: np.ndarray,
    gram: np.ndarray,
    xy: np.ndarray,
    alphas: np.ndarray,
    l1_ratio: float,
    tol: float,
    max_iter: int,
) -> np.ndarray:
    """Coefficients (p, n_alphas) along a decreasing penalty path, solved on a precomputed centred Gram."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import enet_path

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        _, coefs, _ = enet_path(
            X_centred, y_centred, l1_ratio=l1_ratio, alphas=alphas, precompute=gram, Xy=xy,
            tol=tol, max_iter=max_iter, check_input=False,
        )
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.debug("elastic net: coordinate descent hit max_iter=%d on part of the path", max_iter)
    return coefs


def cross_validated_mse(
    Z: np.ndarray,
    y: np.ndarray,
    alphas: np.ndarray,
    folds: int,
    seed: int,
    l1_ratio: float,
    tol: float,
    max_iter: int,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """Held-out mean squared error (folds, n_alphas) of the elastic-net path, shuffled K-fold on rows."""
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % folds
    gram = Z.T @ Z if gram is None else gram
    col_sums = Z.sum(axis=0)
    zy = Z.T @ y
    mse = np.empty((folds, len(alphas)))
    for k in range(folds):
        held = fold_of == k
        Z_held, y_held = Z[held], y[held]
        Z_train, y_train = Z[~held], y[~held]
        n_train = len(y_train)
        means = (col_sums - Z_held.sum(axis=0)) / n_train
        y_mean = float(y_train.mean())
        fold_gram = np.subtract(gram, Z_held.T @ Z_held)
        fold_gram -= n_train * np.outer(means, means)
        fold_xy = (zy - Z_held.T @ y_held) - n_train * means * y_mean
        Z_train -= means
        coefs = _gram_path(Z_train, y_train - y_mean, fold_gram, fold_xy, alphas, l1_ratio, tol, max_iter)
        intercepts = y_mean - means @ coefs
        residuals = y_held[:, None] - (Z_held @ coefs + intercepts)
        mse[k] = np.mean(residuals**2, axis=0)
    return mse


class ElasticNetModel(EnpactModel):
    """Elastic net (l1_ratio 0.5 by default) on standardised log1p bin-mean tracks."""

    model_type = "elastic_net"
    weights_file = "weights.npz"
    default_hyperparameters = {
        "l1_ratio": 0.5,
        "folds": 5,
        "n_alphas": 30,
        "eps": 1e-3,
        "tol": 1e-3,
        "max_iter": 2000,
        "seed": 0,
    }

    def __init__(self, feature_spec, **hyperparameters: Any) -> None:
        super().__init__(feature_spec, **hyperparameters)
        hp = self.hyperparameters
        if not 0.0 < float(hp["l1_ratio"]) <= 1.0:
            raise EnpactError(f"elastic_net: l1_ratio must be in (0, 1] (got {hp['l1_ratio']})")
        if int(hp["folds"]) < 2:
            raise EnpactError(f"elastic_net: folds must be at least 2 (got {hp['folds']})")
        if int(hp["n_alphas"]) < 1 or not 0.0 < float(hp["eps"]) < 1.0:
            raise EnpactError("elastic_net: n_alphas must be >= 1 and eps in (0, 1)")
        self.feature_means = np.zeros(feature_spec.n_tracks)
        self.feature_sds = np.ones(feature_spec.n_tracks)
        self.coef = np.zeros(feature_spec.n_tracks)
        self.intercept = 0.0
        self._set_predictor()

    def fit(self, X_train, y_train, X_valid=None, y_valid=None) -> ElasticNetModel:
        """Fit on the train split; the penalty is chosen by K-fold CV within it (valid is not used)."""
        start = time.perf_counter()
        hp = self.hyperparameters
        inputs = elastic_net_inputs(as_feature_array(X_train, self.feature_spec, "train features"))
        y = np.asarray(y_train, dtype=np.float64)
        if y.shape != (len(inputs),):
            raise EnpactError(f"train targets: {y.shape[0] if y.ndim else 0} values for {len(inputs)} loci")
        if not (np.isfinite(y).all() and np.isfinite(inputs).all()):
            raise EnpactError("train features or targets contain NaN or infinite values; remove those loci")
        n = len(y)
        folds = min(int(hp["folds"]), n)
        if n < 3:
            raise EnpactError(f"elastic_net: {n} training loci are too few to fit a model")
        means = inputs.mean(axis=0, dtype=np.float64)
        sds = inputs.std(axis=0, dtype=np.float64)
        active = sds >= CONSTANT_SD
        sds[~active] = 1.0
        Z = (inputs[:, active] - means[active]) / sds[active]
        l1_ratio, seed = float(hp["l1_ratio"]), int(hp["seed"])
        alphas = alpha_grid(Z, y, l1_ratio, int(hp["n_alphas"]), float(hp["eps"]))
        coef = np.zeros(self.feature_spec.n_tracks)
        if len(alphas):
            gram = Z.T @ Z
            cv_mse = cross_validated_mse(
                Z, y, alphas, folds, seed, l1_ratio, float(hp["tol"]), int(hp["max_iter"]), gram=gram
            )
            mean_mse = cv_mse.mean(axis=0)
            best = int(np.argmin(mean_mse))
            y_mean = float(y.mean())
            z_means = Z.mean(axis=0)
            gram -= n * np.outer(z_means, z_means)
            xy = Z.T @ (y - y_mean)
            Z -= z_means
            path = _gram_path(Z, y - y_mean, gram, xy, alphas[: best + 1], l1_ratio, float(hp["tol"]),
                              int(hp["max_iter"]))
            coef[active] = path[:, -1]
            intercept = y_mean - float(z_means @ path[:, -1])
        else:
            log.warning("elastic_net: no track varies with the targets on the train split; the model predicts the mean")
            alphas, mean_mse, best, intercept = np.array([0.0]), np.array([np.var(y)]), 0, float(y.mean())
        self.feature_means, self.feature_sds, self.coef, self.intercept = means, sds, coef, intercept
        self._set_predictor()
        self.fitted = True
        at_edge = best == len(alphas) - 1 and len(alphas) > 1
        if at_edge:
            log.warning("elastic_net: CV chose the smallest penalty of the grid; consider a smaller eps")
        self.training_info = {
            "n_train": n,
            "n_tracks": self.feature_spec.n_tracks,
            "n_constant_tracks": int((~active).sum()),
            "n_nonzero": int(np.count_nonzero(coef)),
            "alpha": float(alphas[best]),
            "alpha_index": best,
            "alpha_at_grid_edge": bool(at_edge),
            "folds": folds,
            "seed": seed,
            "cv_alphas": [float(a) for a in alphas],
            "cv_mse": [float(m) for m in mean_mse],
            "fit_seconds": round(time.perf_counter() - start, 3),
        }
        log.info(
            "elastic_net: %d loci, %d tracks (%d constant), alpha %.4g chosen by %d-fold CV, %d nonzero coefficients",
            n, self.feature_spec.n_tracks, (~active).sum(), alphas[best], folds, np.count_nonzero(coef),
        )
        return self

    def _set_predictor(self) -> None:
        """Fold standardisation into raw-log-space weights over the nonzero tracks only (fast predict)."""
        self._columns = np.flatnonzero(self.coef)
        self._weights = self.coef[self._columns] / self.feature_sds[self._columns]
        self._bias = float(self.intercept - np.dot(self._weights, self.feature_means[self._columns]))

    def predict(self, X) -> np.ndarray:
        """Predictions (n,) float64; only the tracks with nonzero coefficients are read and transformed."""
        self.require_fitted()
        features = as_feature_array(X, self.feature_spec)
        if not len(self._columns):
            return np.full(len(features), self._bias)
        inputs = elastic_net_inputs(features[:, :, self._columns])
        return inputs.astype(np.float64) @ self._weights + self._bias

    def feature_transform(self) -> dict[str, Any]:
        """Description of the transform, with where the standardisation values are stored."""
        return {
            "steps": ["mean_over_bins", "clip_below_0", "log1p", "standardise"],
            "standardise": {
                "means": f"{self.weights_file}:feature_means",
                "sds": f"{self.weights_file}:feature_sds",
                "constant_track_sd_below": CONSTANT_SD,
            },
            "coefficients": f"{self.weights_file}:coef (on standardised inputs) and intercept",
        }

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Standardisation, coefficients and intercept."""
        return {
            "feature_means": np.asarray(self.feature_means, dtype=np.float64),
            "feature_sds": np.asarray(self.feature_sds, dtype=np.float64),
            "coef": np.asarray(self.coef, dtype=np.float64),
            "intercept": np.array([self.intercept], dtype=np.float64),
        }

    def restore_weights(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore from `weight_arrays` output."""
        n_tracks = self.feature_spec.n_tracks
        try:
            means, sds, coef = arrays["feature_means"], arrays["feature_sds"], arrays["coef"]
            intercept = float(arrays["intercept"][0])
        except KeyError as err:
            raise EnpactError(f"{self.weights_file}: lacks array {err}; re-train the model") from None
        if not means.shape == sds.shape == coef.shape == (n_tracks,):
            raise EnpactError(f"{self.weights_file}: arrays do not match the {n_tracks} tracks of model.json")
        self.feature_means, self.feature_sds, self.coef, self.intercept = means, sds, coef, intercept
        self._set_predictor()
