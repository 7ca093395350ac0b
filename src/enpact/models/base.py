"""What every EnPACT model shares: the feature spec, the model interface, the model directory and the registry.

A model directory holds `model.json` (type, hyperparameters, feature spec, feature transform, training
facts, the name and SHA-256 of the weights file) and one weights file (`weights.npz` or
`weights.safetensors`); nothing is ever pickled. Further model types plug in through the Python entry
point group `enpact.models` (name = model type, value = "module:Class" of an `EnpactModel` subclass).
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from enpact import __version__
from enpact.errors import EnpactError
from enpact.io import atomic_directory
from enpact.registry import MODELS

log = logging.getLogger(__name__)

MODEL_JSON = "model.json"
MODEL_FORMAT = "enpact-model"
MODEL_FORMAT_VERSION = 1
AGGREGATES = ("mean", "none")
# a track whose standard deviation over the training loci is below this is constant: not standardised, not used
CONSTANT_SD = 1e-6

# Built-in model types as "module:Class", imported only when used (the CNN pulls in torch).
MODEL_TYPES: dict[str, str] = dict(MODELS.builtins)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """How features were made: predictor, its weights, window and bins, bin aggregation, track names and the
    numeric precision of the forward pass (None: not recorded, models of earlier versions)."""

    predictor: str
    weights: str
    window_bp: int
    bin_bp: int
    bins: int
    aggregate: str
    tracks: tuple[str, ...]
    precision: str | None = None
    options: tuple[tuple[str, Any], ...] | None = None   # the predictor's own options (None: not recorded)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", tuple(str(t) for t in self.tracks))
        if self.options is not None:
            object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))
        if self.aggregate not in AGGREGATES:
            raise EnpactError(f"feature spec: aggregate must be 'mean' or 'none' (got '{self.aggregate}')")
        if int(self.bins) < 1 or int(self.window_bp) < 1 or int(self.bin_bp) < 1:
            raise EnpactError("feature spec: bins, window_bp and bin_bp must be positive integers")
        if not self.tracks:
            raise EnpactError("feature spec: no tracks")

    @property
    def n_tracks(self) -> int:
        """Number of tracks (the last axis of a feature array)."""
        return len(self.tracks)

    @property
    def array_bins(self) -> int:
        """Bins on the middle axis of a feature array: 1 when bins were averaged, else `bins`."""
        return 1 if self.aggregate == "mean" else int(self.bins)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "predictor": self.predictor,
            "weights": self.weights,
            "window_bp": int(self.window_bp),
            "bin_bp": int(self.bin_bp),
            "bins": int(self.bins),
            "aggregate": self.aggregate,
            "tracks": list(self.tracks),
            "precision": self.precision,
            "options": None if self.options is None else dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "feature spec") -> FeatureSpec:
        """Build from a dict such as a predictor's `describe()` (precision and options may be absent: earlier
        versions)."""
        fields = [f.name for f in dataclasses.fields(cls) if f.name not in ("precision", "options")]
        missing = [name for name in fields if name not in data]
        if missing:
            raise EnpactError(f"{source}: feature spec lacks '{missing[0]}'; it was written by another tool or version")
        try:
            return cls(
                predictor=str(data["predictor"]),
                weights=str(data["weights"]),
                window_bp=int(data["window_bp"]),
                bin_bp=int(data["bin_bp"]),
                bins=int(data["bins"]),
                aggregate=str(data["aggregate"]),
                tracks=tuple(data["tracks"]),
                precision=None if data.get("precision") is None else str(data["precision"]),
                options=None if data.get("options") is None else tuple(dict(data["options"]).items()),
            )
        except (TypeError, ValueError) as err:
            raise EnpactError(f"{source}: malformed feature spec ({err})") from None

    def check_compatible(self, other: FeatureSpec, context: str, allow_precision_mismatch: bool = False) -> None:
        """Raise EnpactError naming the first field where features (`other`) differ from this (model) spec."""
        if (self.precision and other.precision and self.precision != other.precision
                and not allow_precision_mismatch):
            raise EnpactError(
                f"{context}: features were made at precision {other.precision}, the model was trained on "
                f"{self.precision} features; use the same precision (a model and the features it reads must be "
                "made alike), or allow it explicitly (allow_precision_mismatch: true, --allow-precision-mismatch)")
        if self.options is not None and other.options is not None and self.options != other.options:
            raise EnpactError(
                f"{context}: features were made with predictor options {dict(other.options)}, the model expects "
                f"{dict(self.options)}; recompute the features with the model's settings")
        for name in ("predictor", "weights", "window_bp", "bin_bp", "bins", "aggregate"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                raise EnpactError(
                    f"{context}: features were made with {name} {theirs!r}, the model expects {mine!r}; "
                    "recompute the features with the model's settings or use a model trained on them"
                )
        if self.tracks != other.tracks:
            if len(self.tracks) != len(other.tracks):
                detail = f"{len(other.tracks)} tracks, the model expects {len(self.tracks)}"
            else:
                i = next(i for i, (a, b) in enumerate(zip(self.tracks, other.tracks)) if a != b)
                detail = f"track {i} {other.tracks[i]!r}, the model expects {self.tracks[i]!r}"
            raise EnpactError(
                f"{context}: features were made with {detail}; select the same tracks as for training"
            )


def as_feature_array(features: np.ndarray, spec: FeatureSpec, context: str = "features") -> np.ndarray:
    """Features as float32 (n, bins, tracks), checked against the spec; a 2-D (n, tracks) array means 1 bin."""
    array = np.asarray(features)
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3:
        raise EnpactError(f"{context}: features must have shape (loci, bins, tracks); got {array.shape}")
    if array.shape[2] != spec.n_tracks:
        raise EnpactError(
            f"{context}: features have {array.shape[2]} tracks, the model expects {spec.n_tracks}; "
            "use features made with the model's track selection"
        )
    if array.shape[1] != spec.array_bins:
        raise EnpactError(
            f"{context}: features have {array.shape[1]} bins per locus, the model expects {spec.array_bins} "
            f"(bins={spec.bins}, aggregate={spec.aggregate}); use features made with the same --bins/--aggregate"
        )
    return np.asarray(array, dtype=np.float32)


def mean_over_bins(features: np.ndarray) -> np.ndarray:
    """(n, bins, tracks) float32 -> (n, tracks) float32 mean over bins (a view when there is one bin)."""
    if features.shape[1] == 1:
        return features[:, 0, :]
    return features.mean(axis=1, dtype=np.float32)


def log1p_features(features: np.ndarray) -> np.ndarray:
    """log1p of features clipped at zero (predicted tracks are non-negative), float32, same shape."""
    out = np.maximum(features, np.float32(0), dtype=np.float32)
    return np.log1p(out, out=out)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write JSON (no NaN/Infinity: a value that is not finite must already be None)."""
    Path(path).write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def _write_weights(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write named arrays as npz or safetensors, chosen by the file suffix."""
    arrays = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    if path.suffix == ".npz":
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    elif path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file(arrays, str(path))
    else:
        raise ValueError(f"unsupported weights format: {path.name}")


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """Read named arrays from npz (no pickle) or safetensors."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return load_file(str(path))
    except (OSError, ValueError) as err:
        raise EnpactError(f"{path}: cannot read model weights ({err}); re-train or re-copy the model") from None
    raise EnpactError(f"{path}: unsupported weights format; expected .npz or .safetensors")


def _coerce(model_type: str, name: str, value: Any, default: Any) -> Any:
    """A hyperparameter value as the plain type of its default (JSON-safe), or EnpactError."""
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes")
            return bool(value)
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        return kind(value)
    except (TypeError, ValueError):
        raise EnpactError(
            f"model type {model_type}: hyperparameter {name} must be {kind.__name__} (got {value!r})"
        ) from None


class EnpactModel(abc.ABC):
    """A model from per-locus sequence features (n, bins, tracks) to one value per locus."""

    model_type: ClassVar[str]
    weights_file: ClassVar[str]
    default_hyperparameters: ClassVar[dict[str, Any]]

    def __init__(self, feature_spec: FeatureSpec, **hyperparameters: Any) -> None:
        unknown = sorted(set(hyperparameters) - set(self.default_hyperparameters))
        if unknown:
            raise EnpactError(
                f"model type {self.model_type}: unknown hyperparameter '{unknown[0]}'; "
                f"known: {', '.join(sorted(self.default_hyperparameters))}"
            )
        self.feature_spec = feature_spec
        self.hyperparameters: dict[str, Any] = {
            **self.default_hyperparameters,
            **{name: _coerce(self.model_type, name, value, self.default_hyperparameters[name])
               for name, value in hyperparameters.items()},
        }
        self.training_info: dict[str, Any] = {}
        self.fitted = False

    @abc.abstractmethod
    def fit(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_valid: np.ndarray | None = None,
        y_valid: np.ndarray | None = None,
    ) -> EnpactModel:
        """Fit on train features and targets (valid used for early stopping where the model has it)."""

    @abc.abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions (n,) float64 for features (n, bins, tracks); works on any batch of loci or windows."""

    @abc.abstractmethod
    def feature_transform(self) -> dict[str, Any]:
        """JSON description of how raw features become model inputs (for model.json)."""

    @abc.abstractmethod
    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Everything numeric the fitted model needs, as named arrays."""

    @abc.abstractmethod
    def restore_weights(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Inverse of `weight_arrays` (the object already has spec, hyperparameters and training info)."""

    def require_fitted(self) -> None:
        """Raise if the model was neither fitted nor loaded."""
        if not self.fitted:
            raise EnpactError(f"{self.model_type} model is not fitted; fit it or load a saved model")

    def save(self, directory: str | os.PathLike) -> Path:
        """Write model.json and the weights file into `directory`, atomically (temp folder, then rename)."""
        self.require_fitted()
        target = Path(directory)
        with atomic_directory(target, last=(MODEL_JSON,)) as staging:
            self.write_files(staging)
        log.info("saved %s model to %s", self.model_type, target)
        return target

    def write_files(self, directory: Path) -> None:
        """Write weights then model.json into an existing folder (not atomic by itself)."""
        weights_path = Path(directory) / self.weights_file
        _write_weights(weights_path, self.weight_arrays())
        description = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "model_type": self.model_type,
            "enpact_version": __version__,
            "hyperparameters": self.hyperparameters,
            "feature_spec": self.feature_spec.to_dict(),
            "feature_transform": self.feature_transform(),
            "training": self.training_info,
            "weights_file": self.weights_file,
            "weights_sha256": file_sha256(weights_path),
        }
        write_json(Path(directory) / MODEL_JSON, description)

    @classmethod
    def load(cls, directory: str | os.PathLike, **options: Any) -> EnpactModel:
        """Load a saved model of this type; options are runtime settings (e.g. device), ignored where unused."""
        description = read_model_json(directory)
        if description["model_type"] != cls.model_type:
            raise EnpactError(
                f"{Path(directory) / MODEL_JSON}: model type is {description['model_type']}, not {cls.model_type}; "
                "use enpact.models.load_model"
            )
        return cls._from_description(Path(directory), description, **options)

    @classmethod
    def _from_description(cls, directory: Path, description: dict[str, Any], **options: Any) -> EnpactModel:
        """Construct, then restore weights after checking the weights file's checksum."""
        source = str(directory / MODEL_JSON)
        spec = FeatureSpec.from_dict(description["feature_spec"], source=source)
        accepted = inspect.signature(cls.__init__).parameters
        runtime = {name: value for name, value in options.items() if name in accepted}
        model = cls(spec, **runtime, **description.get("hyperparameters", {}))
        model.training_info = dict(description.get("training", {}))
        weights_path = directory / description.get("weights_file", cls.weights_file)
        if not weights_path.is_file():
            raise EnpactError(f"{source}: weights file {weights_path.name} is missing; re-copy the model directory")
        expected = description.get("weights_sha256")
        if expected and file_sha256(weights_path) != expected:
            raise EnpactError(
                f"{weights_path}: checksum differs from model.json; the model directory is corrupted or mixed, "
                "re-train or re-copy it"
            )
        model.restore_weights(_read_weights(weights_path))
        model.fitted = True
        return model


def read_model_json(directory: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a model directory's model.json."""
    path = Path(directory) / MODEL_JSON
    if not path.is_file():
        raise EnpactError(f"{directory}: no {MODEL_JSON}; is this an EnPACT model directory (enpact train output)?")
    try:
        description = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise EnpactError(f"{path}: not valid JSON ({err}); re-train or re-copy the model") from None
    if not isinstance(description, dict) or description.get("format") != MODEL_FORMAT:
        raise EnpactError(f"{path}: not an EnPACT model description (format is not '{MODEL_FORMAT}')")
    if int(description.get("format_version", 0)) > MODEL_FORMAT_VERSION:
        raise EnpactError(
            f"{path}: model format version {description['format_version']} is newer than this enpact "
            f"({__version__}) supports; upgrade enpact"
        )
    if "model_type" not in description or "feature_spec" not in description:
        raise EnpactError(f"{path}: lacks model_type or feature_spec; re-train the model")
    return description


def available_model_types() -> dict[str, str]:
    """Model types by name: built-ins plus the `enpact.models` entry point group (enpact.registry)."""
    return MODELS.references()


def model_class(model_type: str) -> type[EnpactModel]:
    """The EnpactModel subclass registered for a model type."""
    cls = MODELS.load(model_type)
    if not (isinstance(cls, type) and issubclass(cls, EnpactModel)):
        raise EnpactError(f"model type '{model_type}' ({MODELS.references()[model_type]}) is not an EnpactModel "
                          "subclass")
    return cls


def parse_hyperparameters(text: str | None) -> dict[str, str]:
    """`name=value,name=value` (the form of --hyperparameters and the model_hyperparameters parameter) as a dict."""
    values: dict[str, str] = {}
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise EnpactError(f"hyperparameters: '{item}' is not name=value (write e.g. channels=32,dropout=0.2)")
        if name.strip() in values:
            raise EnpactError(f"hyperparameters: {name.strip()} is given twice")
        values[name.strip()] = value.strip()
    return values


def check_hyperparameters(model_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameters of a model type, each checked against the type's own and cast to its default's type."""
    cls = model_class(model_type)
    unknown = sorted(set(values) - set(cls.default_hyperparameters))
    if unknown:
        raise EnpactError(f"model type {model_type} has no hyperparameter {unknown[0]}; its hyperparameters: "
                          f"{', '.join(sorted(cls.default_hyperparameters))}")
    return {name: _coerce(model_type, name, value, cls.default_hyperparameters[name]) for name, value in values.items()}


def create_model(model_type: str, feature_spec: FeatureSpec, **hyperparameters: Any) -> EnpactModel:
    """A new, unfitted model of a registered type."""
    return model_class(model_type)(feature_spec, **hyperparameters)


def load_model(directory: str | os.PathLike, **options: Any) -> EnpactModel:
    """Load any saved model, dispatching on model.json's model_type; options (e.g. device) go where accepted."""
    description = read_model_json(directory)
    cls = model_class(str(description["model_type"]))
    if description.get("enpact_version") != __version__:
        log.info("model %s was saved by enpact %s (this is %s)", directory, description.get("enpact_version"),
                 __version__)
    return cls._from_description(Path(directory), description, **options)
