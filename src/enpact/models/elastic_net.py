"""Elastic-net EnPACT model: a linear model on log1p of the bin-averaged tracks, penalty chosen by K-fold CV.

Feature transform (the same in fit and predict):
  1. mean over the bins of a locus (a no-op for features averaged on the device, so both give one model),
  2. negative values clipped to 0, then log1p (predicted tracks are non-negative and heavy-tailed),
  3. standardised with the train-split mean and sd of each track; tracks with sd < 1e-6 on the train
     split are constant: they are left out of the fit and get coefficient 0.

Cross-validation computes the Gram matrix once and derives each fold's centred training Gram matrix from
it (G - G_heldout - n m m'), so it costs about two Gram products instead of K + 1; scikit-learn's coordinate
descent then runs on the precomputed Gram matrices, all folds one penalty at a time with warm starts, and
stops `cv_patience` penalties after the mean held-out MSE last improved (the small-penalty end is the slow
part on correlated tracks). Costs are in benchmarks/bench_train.py.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from typing import Any, Mapping

import numpy as np

from enpact.errors import EnpactError
from enpact.glmnet import assign_folds
from enpact.models.base import CONSTANT_SD, EnpactModel, as_feature_array, log1p_features, mean_over_bins

log = logging.getLogger(__name__)



def elastic_net_inputs(features: np.ndarray) -> np.ndarray:
    """Unstandardised model inputs: log1p(max(mean over bins, 0)), float32 (n, tracks)."""
    return log1p_features(mean_over_bins(features))


def alpha_grid(Z: np.ndarray, y: np.ndarray, l1_ratio: float, n_alphas: int, eps: float) -> np.ndarray:
    """Log-spaced penalties from the smallest that zeroes every coefficient down to eps times it (empty: no signal)."""
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
    coef_init: np.ndarray | None = None,
) -> np.ndarray:
    """Coefficients (p, n_alphas) along a decreasing penalty path, solved on a precomputed centred Gram."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import enet_path

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        _, coefs, _ = enet_path(
            X_centred, y_centred, l1_ratio=l1_ratio, alphas=alphas, precompute=gram, Xy=xy,
            tol=tol, max_iter=max_iter, check_input=False, coef_init=coef_init,
        )
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.debug("elastic net: coordinate descent hit max_iter=%d on part of the path", max_iter)
    return coefs


@dataclasses.dataclass
class _Fold:
    """One CV fold: its held-out rows and its centred training problem in Gram form."""

    held: np.ndarray
    n_train: int
    gram: np.ndarray
    xy: np.ndarray
    means: np.ndarray
    y_mean: float
    y_centred: np.ndarray
    Z_held: np.ndarray
    y_held: np.ndarray
    coef: np.ndarray


def _prepare_folds(Z: np.ndarray, y: np.ndarray, fold_of: np.ndarray, gram: np.ndarray) -> list[_Fold]:
    """Each fold's centred training Gram matrix derived from the full one: G - Z_k'Z_k - n_t m m'."""
    col_sums = Z.sum(axis=0)
    zy = Z.T @ y
    folds = []
    for k in range(int(fold_of.max()) + 1):
        held = fold_of == k
        Z_held, y_held = Z[held], y[held]
        n_train = int(len(y) - held.sum())
        means = (col_sums - Z_held.sum(axis=0)) / n_train
        y_mean = float(y[~held].mean())
        fold_gram = np.subtract(gram, Z_held.T @ Z_held)
        fold_gram -= n_train * np.outer(means, means)
        fold_xy = (zy - Z_held.T @ y_held) - n_train * means * y_mean
        folds.append(_Fold(held, n_train, fold_gram, fold_xy, means, y_mean, y[~held] - y_mean, Z_held, y_held,
                           np.zeros(Z.shape[1])))
    return folds


def cross_validated_mse(
    Z: np.ndarray,
    y: np.ndarray,
    alphas: np.ndarray,
    fold_of: np.ndarray,
    l1_ratio: float,
    tol: float,
    max_iter: int,
    gram: np.ndarray | None = None,
    patience: int = 0,
) -> np.ndarray:
    """Held-out MSE (folds, n) along the penalty path, all folds one penalty at a time (warm starts).

    With patience > 0 the path stops once the mean held-out MSE has not improved for `patience` penalties:
    the small-penalty end is the slow part of coordinate descent on correlated tracks and cannot win.
    """
    folds = _prepare_folds(Z, y, fold_of, Z.T @ Z if gram is None else gram)
    settings = (l1_ratio, tol, max_iter)
    curves: list[list[float]] = []
    for i in range(len(alphas)):
        row = []
        for fold in folds:
            # enet_path reads only the shape of X when given the Gram matrix and Xy, so a view of the right
            # shape stands in for the fold's centred rows (tests compare the result with ElasticNetCV).
            stand_in = Z[: fold.n_train]
            fold.coef = _gram_path(stand_in, fold.y_centred, fold.gram, fold.xy, alphas[i : i + 1], *settings,
                                   coef_init=fold.coef)[:, 0]
            residuals = fold.y_held - (fold.Z_held @ fold.coef + (fold.y_mean - fold.means @ fold.coef))
            row.append(float(np.mean(residuals**2)))
        curves.append(row)
        if patience and i - int(np.argmin(np.mean(curves, axis=1))) >= patience:
            break
    return np.array(curves).T


@dataclasses.dataclass(frozen=True)
class CrossValidatedFit:
    """Coefficients on standardised inputs at the CV-chosen penalty, and the CV curve."""

    coef: np.ndarray
    intercept: float
    alphas: np.ndarray  # penalties every fold reached
    cv_mse: np.ndarray  # mean held-out MSE per penalty
    best: int
    grid_size: int


def fit_cross_validated(
    Z: np.ndarray,
    y: np.ndarray,
    l1_ratio: float,
    n_alphas: int,
    eps: float,
    fold_of: np.ndarray,
    tol: float,
    max_iter: int,
    patience: int,
) -> CrossValidatedFit:
    """Choose the penalty with the lowest mean held-out MSE, then fit all rows along the path down to it."""
    alphas = alpha_grid(Z, y, l1_ratio, n_alphas, eps)
    if not len(alphas):
        log.warning("elastic_net: no track varies with the targets on the train split; the model predicts the mean")
        return CrossValidatedFit(np.zeros(Z.shape[1]), float(y.mean()), np.array([0.0]), np.array([np.var(y)]), 0, 1)
    gram = Z.T @ Z
    cv_mse = cross_validated_mse(Z, y, alphas, fold_of, l1_ratio, tol, max_iter, gram=gram, patience=patience)
    mean_mse = cv_mse.mean(axis=0)
    best = int(np.argmin(mean_mse))
    y_mean = float(y.mean())
    z_means = Z.mean(axis=0)
    gram -= len(y) * np.outer(z_means, z_means)
    xy = Z.T @ (y - y_mean)
    path = _gram_path(Z - z_means, y - y_mean, gram, xy, alphas[: best + 1], l1_ratio, tol, max_iter)
    coef = path[:, -1]
    return CrossValidatedFit(coef, y_mean - float(z_means @ coef), alphas[: len(mean_mse)], mean_mse, best,
                             len(alphas))


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
        "cv_patience": 3,
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
        seed = int(hp["seed"])
        path = fit_cross_validated(
            Z, y, float(hp["l1_ratio"]), int(hp["n_alphas"]), float(hp["eps"]), assign_folds(n, folds, seed),
            float(hp["tol"]), int(hp["max_iter"]), int(hp["cv_patience"]),
        )
        coef = np.zeros(self.feature_spec.n_tracks)
        coef[active] = path.coef
        alphas, mean_mse, best, intercept = path.alphas, path.cv_mse, path.best, path.intercept
        self.feature_means, self.feature_sds, self.coef, self.intercept = means, sds, coef, intercept
        self._set_predictor()
        self.fitted = True
        at_edge = best == path.grid_size - 1 and path.grid_size > 1
        if at_edge:
            log.warning("elastic_net: CV chose the smallest penalty of the grid; a smaller eps lets it go lower "
                        "(model_hyperparameters: eps=1e-4, or enpact train --hyperparameters eps=1e-4)")
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
