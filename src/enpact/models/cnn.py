"""Small convolutional EnPACT model over (bins x tracks): tracks are channels, convolutions run along bins.

Inputs are log1p(max(x, 0)) per bin and track, standardised per track with the train-split mean and sd
(over loci and bins; tracks with sd < 1e-6 get sd 1); targets are standardised too. The net is `layers`
Conv1d + ReLU + Dropout blocks (kernel min(kernel_size, bins), 'same' padding), a mean over bins and a
linear head; with one bin every kernel has width 1 and the net is an MLP. Training: Adam on MSE, early
stopping on the valid split (or on `valid_fraction` of train when no valid loci are given), best epoch kept.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from enpact.devices import resolve_device
from enpact.errors import EnpactError
from enpact.models.base import CONSTANT_SD, EnpactModel, FeatureSpec, as_feature_array, log1p_features

log = logging.getLogger(__name__)

PREDICT_BATCH = 2048
# Below this many multiply-adds per training step, extra CPU threads cost more in synchronisation than
# they save (measured: a 16-track net trains 40x slower on 2 threads than on 1 on a busy 2-core machine).
SINGLE_THREAD_MACS = 2e7


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ConvNet(nn.Module):
    """Conv1d blocks over bins with tracks as channels, mean over bins, linear head."""

    def __init__(self, n_tracks: int, n_bins: int, channels: int, kernel_size: int, layers: int, dropout: float):
        super().__init__()
        width = min(kernel_size, n_bins)
        blocks: list[nn.Module] = []
        in_channels = n_tracks
        for _ in range(layers):
            blocks += [nn.Conv1d(in_channels, channels, width, padding="same"), nn.ReLU(), nn.Dropout(dropout)]
            in_channels = channels
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, tracks, bins) -> (batch,)."""
        return self.head(self.body(x).mean(dim=2)).squeeze(1)


class CnnModel(EnpactModel):
    """Small CNN over bins x tracks, trained with Adam + MSE and early stopping."""

    model_type = "cnn"
    weights_file = "weights.safetensors"
    default_hyperparameters = {
        "channels": 64,
        "kernel_size": 3,
        "layers": 2,
        "dropout": 0.1,
        "learning_rate": 1e-3,
        "weight_decay": 1e-4,
        "batch_size": 128,
        "max_epochs": 100,
        "patience": 10,
        "valid_fraction": 0.1,
        "seed": 0,
    }

    def __init__(self, feature_spec: FeatureSpec, device: str = "auto", **hyperparameters: Any) -> None:
        super().__init__(feature_spec, **hyperparameters)
        hp = self.hyperparameters
        for name in ("channels", "kernel_size", "layers", "batch_size", "max_epochs", "patience"):
            if int(hp[name]) < 1:
                raise EnpactError(f"cnn: {name} must be a positive integer (got {hp[name]})")
        if not 0.0 <= float(hp["dropout"]) < 1.0 or not 0.0 <= float(hp["valid_fraction"]) < 1.0:
            raise EnpactError("cnn: dropout and valid_fraction must be in [0, 1)")
        self.device = resolve_device(device)
        self.net = self._build_net().to(self.device)
        n_tracks = feature_spec.n_tracks
        self.feature_means = np.zeros(n_tracks, dtype=np.float32)
        self.feature_sds = np.ones(n_tracks, dtype=np.float32)
        self.target_mean, self.target_sd = 0.0, 1.0

    def _build_net(self) -> ConvNet:
        """A fresh network for this spec and these hyperparameters."""
        hp = self.hyperparameters
        return ConvNet(
            self.feature_spec.n_tracks, self.feature_spec.array_bins, int(hp["channels"]),
            int(hp["kernel_size"]), int(hp["layers"]), float(hp["dropout"]),
        )

    def _cpu_threads(self) -> int:
        """Torch CPU threads for this net: 1 for small nets (see SINGLE_THREAD_MACS), else the current setting."""
        hp = self.hyperparameters
        macs = (self.feature_spec.n_tracks + int(hp["channels"]) * (int(hp["layers"]) - 1)) * int(hp["channels"])
        macs *= self.feature_spec.array_bins * min(int(hp["kernel_size"]), self.feature_spec.array_bins)
        macs *= int(hp["batch_size"])
        return 1 if macs < SINGLE_THREAD_MACS else torch.get_num_threads()

    def _inputs(self, features: np.ndarray) -> torch.Tensor:
        """Checked raw features -> standardised float32 tensor (n, tracks, bins) on the model's device."""
        x = log1p_features(features)
        x -= self.feature_means
        x /= self.feature_sds
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).to(self.device)

    def _standardisation(self, features: np.ndarray) -> None:
        """Per-track mean and sd of log1p features over loci and bins of the train split."""
        logged = log1p_features(features).reshape(-1, features.shape[2])
        means = logged.mean(axis=0, dtype=np.float64)
        sds = logged.std(axis=0, dtype=np.float64)
        sds[sds < CONSTANT_SD] = 1.0
        self.feature_means, self.feature_sds = means.astype(np.float32), sds.astype(np.float32)

    def _split_for_early_stopping(self, X_train, y_train, X_valid, y_valid):
        """(train X, train y, stop X, stop y, source): the valid split, else a seeded fraction of train."""
        if X_valid is not None and y_valid is not None and len(y_valid) > 0:
            return X_train, y_train, X_valid, y_valid, "valid split"
        fraction = float(self.hyperparameters["valid_fraction"])
        n_stop = int(round(fraction * len(y_train)))
        if n_stop < 5 or len(y_train) - n_stop < 5:
            log.warning("cnn: no valid loci for early stopping; training for max_epochs")
            return X_train, y_train, None, None, "none"
        order = np.random.default_rng(int(self.hyperparameters["seed"])).permutation(len(y_train))
        stop, keep = np.sort(order[:n_stop]), np.sort(order[n_stop:])
        log.info("cnn: no valid loci given; early stopping on %d held-out train loci", n_stop)
        return X_train[keep], y_train[keep], X_train[stop], y_train[stop], f"{fraction:g} of train"

    def fit(self, X_train, y_train, X_valid=None, y_valid=None) -> CnnModel:
        """Train with Adam + MSE on standardised inputs and targets; early stopping keeps the best epoch."""
        start = time.perf_counter()
        hp = self.hyperparameters
        X_train = as_feature_array(X_train, self.feature_spec, "train features")
        y_train = np.asarray(y_train, dtype=np.float64)
        if X_valid is not None:
            X_valid = as_feature_array(X_valid, self.feature_spec, "valid features")
            y_valid = np.asarray(y_valid, dtype=np.float64)
        for name, values in (("train", y_train), ("valid", y_valid)):
            if values is not None and not np.isfinite(values).all():
                raise EnpactError(f"{name} targets contain NaN or infinite values; remove those loci")
        X_fit, y_fit, X_stop, y_stop, stop_source = self._split_for_early_stopping(X_train, y_train, X_valid, y_valid)
        self._standardisation(X_fit)
        self.target_mean = float(y_fit.mean())
        self.target_sd = float(y_fit.std()) or 1.0
        seed = int(hp["seed"])
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        if self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        with torch.random.fork_rng(devices=devices), torch_threads(self._cpu_threads()):
            torch.manual_seed(seed)
            torch.use_deterministic_algorithms(True, warn_only=True)
            try:
                history = self._train_loop(X_fit, y_fit, X_stop, y_stop, seed)
            finally:
                torch.use_deterministic_algorithms(deterministic_before)
        self.fitted = True
        self.training_info = {
            "n_train": int(len(y_fit)),
            "n_early_stopping": int(0 if y_stop is None else len(y_stop)),
            "early_stopping_on": stop_source,
            **history,
            "target_mean": self.target_mean,
            "target_sd": self.target_sd,
            "seed": seed,
            "device": str(self.device),
            "torch_version": torch.__version__,
            "fit_seconds": round(time.perf_counter() - start, 3),
        }
        log.info(
            "cnn: %d loci, %d epochs (best %d, valid MSE %s), %s",
            len(y_fit), history["epochs_run"], history["best_epoch"], history["best_valid_mse"],
            "stopped early" if history["stopped_early"] else "ran max_epochs",
        )
        return self

    def _train_loop(self, X_fit, y_fit, X_stop, y_stop, seed: int) -> dict[str, Any]:
        """Epoch loop; returns the training history facts for model.json."""
        hp = self.hyperparameters
        self.net = self._build_net().to(self.device)
        inputs = self._inputs(X_fit)
        targets = torch.as_tensor((y_fit - self.target_mean) / self.target_sd, dtype=torch.float32, device=self.device)
        stop_inputs = None if X_stop is None else self._inputs(X_stop)
        stop_targets = None if y_stop is None else (y_stop - self.target_mean) / self.target_sd
        optimiser = torch.optim.Adam(self.net.parameters(), lr=float(hp["learning_rate"]),
                                     weight_decay=float(hp["weight_decay"]))
        shuffler = torch.Generator().manual_seed(seed)
        batch_size, patience = int(hp["batch_size"]), int(hp["patience"])
        best_loss, best_epoch, best_state, waited, epoch, train_mse = np.inf, 0, None, 0, 0, float("nan")
        for epoch in range(1, int(hp["max_epochs"]) + 1):
            self.net.train()
            order = torch.randperm(len(targets), generator=shuffler).to(self.device)
            total = 0.0
            for begin in range(0, len(order), batch_size):
                index = order[begin : begin + batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = nn.functional.mse_loss(self.net(inputs[index]), targets[index])
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(index)
            train_mse = total / len(order)
            if stop_inputs is None:
                continue
            stop_mse = float(np.mean((self._forward_batches(stop_inputs) - stop_targets) ** 2))
            if stop_mse < best_loss:
                best_loss, best_epoch, waited = stop_mse, epoch, 0
                best_state = copy.deepcopy(self.net.state_dict())
            else:
                waited += 1
                if waited >= patience:
                    break
        stopped_early = stop_inputs is not None and epoch < int(hp["max_epochs"])
        if best_state is not None:
            self.net.load_state_dict(best_state)
        else:
            best_epoch = epoch
        self.net.eval()
        return {
            "epochs_run": epoch,
            "best_epoch": best_epoch,
            "best_valid_mse": None if not np.isfinite(best_loss) else float(best_loss),
            "final_train_mse": train_mse,
            "stopped_early": bool(stopped_early),
        }

    def _forward_batches(self, inputs: torch.Tensor) -> np.ndarray:
        """Standardised predictions for standardised inputs, in batches, without gradients."""
        self.net.eval()
        out = np.empty(len(inputs), dtype=np.float64)
        with torch.inference_mode():
            for begin in range(0, len(inputs), PREDICT_BATCH):
                batch = inputs[begin : begin + PREDICT_BATCH]
                out[begin : begin + PREDICT_BATCH] = self.net(batch).double().cpu().numpy()
        return out

    def predict(self, X) -> np.ndarray:
        """Predictions (n,) float64 in the target's units; features are transformed batch by batch."""
        self.require_fitted()
        features = as_feature_array(X, self.feature_spec)
        out = np.empty(len(features), dtype=np.float64)
        with torch_threads(self._cpu_threads()):
            for begin in range(0, len(features), PREDICT_BATCH):
                batch = self._inputs(features[begin : begin + PREDICT_BATCH])
                out[begin : begin + PREDICT_BATCH] = self._forward_batches(batch)
        return out * self.target_sd + self.target_mean

    def feature_transform(self) -> dict[str, Any]:
        """Description of the input and target transforms and where their values are stored."""
        return {
            "steps": ["clip_below_0", "log1p", "standardise_per_track"],
            "standardise": {
                "means": f"{self.weights_file}:feature_means",
                "sds": f"{self.weights_file}:feature_sds",
                "over": "train loci and bins",
                "constant_track_sd_below": CONSTANT_SD,
            },
            "target": "standardised; predictions = output * training.target_sd + training.target_mean",
            "input_layout": "(loci, tracks, bins): tracks are channels",
        }

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Network parameters (prefixed 'net.') and the input standardisation."""
        arrays = {f"net.{name}": value.detach().cpu().numpy() for name, value in self.net.state_dict().items()}
        arrays["feature_means"] = self.feature_means
        arrays["feature_sds"] = self.feature_sds
        arrays["target_mean_sd"] = np.array([self.target_mean, self.target_sd], dtype=np.float64)
        return arrays

    def restore_weights(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore from `weight_arrays` output onto this model's device."""
        state = {
            name[4:]: torch.from_numpy(np.array(value)) for name, value in arrays.items() if name.startswith("net.")
        }
        try:
            self.net = self._build_net()
            self.net.load_state_dict(state)
            self.feature_means = np.asarray(arrays["feature_means"], dtype=np.float32)
            self.feature_sds = np.asarray(arrays["feature_sds"], dtype=np.float32)
            self.target_mean, self.target_sd = (float(v) for v in arrays["target_mean_sd"])
        except (KeyError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0]
            raise EnpactError(f"{self.weights_file}: does not match model.json ({first}); re-train the model") from None
        self.net.to(self.device).eval()
