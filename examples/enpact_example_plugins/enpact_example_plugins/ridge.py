"""An EnPACT model type: ridge regression on standardised log1p bin-mean tracks, with one hyperparameter.

It shows what a model type writes itself; enpact.models.base.EnpactModel does the rest (hyperparameter checking
and casting, model.json, the weights file and its checksum, loading, the feature spec checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from enpact.models.base import EnpactModel, as_feature_array, log1p_features, mean_over_bins


class RidgeModel(EnpactModel):
    """y = intercept + standardised(log1p(bin-mean features)) . coef, coef by ridge with `penalty`."""

    model_type = "ridge"
    weights_file = "weights.npz"
    default_hyperparameters = {"penalty": 1.0}

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        return log1p_features(mean_over_bins(as_feature_array(X, self.feature_spec))).astype(np.float64)

    def fit(self, X_train, y_train, X_valid=None, y_valid=None) -> "RidgeModel":
        """Closed-form ridge on the train loci (valid is not used)."""
        Z = self._inputs(X_train)
        y = np.asarray(y_train, dtype=np.float64)
        self.means, self.sds = Z.mean(axis=0), np.maximum(Z.std(axis=0), 1e-6)
        Z = (Z - self.means) / self.sds
        penalty = float(self.hyperparameters["penalty"]) * len(y)
        self.coef = np.linalg.solve(Z.T @ Z + penalty * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
        self.intercept = float(y.mean())
        self.training_info = {"n_train": int(len(y))}
        self.fitted = True
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions for any batch of loci or haplotype windows."""
        self.require_fitted()
        return self.intercept + ((self._inputs(X) - self.means) / self.sds) @ self.coef

    def feature_transform(self) -> dict[str, Any]:
        """How features become inputs (recorded in model.json)."""
        return {"bins": "mean", "transform": "log1p", "standardised": True}

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """What the fitted model needs."""
        return {"coef": self.coef, "intercept": np.array([self.intercept]), "means": self.means, "sds": self.sds}

    def restore_weights(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Inverse of weight_arrays."""
        self.coef, self.means, self.sds = arrays["coef"], arrays["means"], arrays["sds"]
        self.intercept = float(arrays["intercept"][0])
