"""The sequence-predictor protocol and the registry of predictors (Python entry point group `enpact.predictors`).

A predictor turns a batch of uint8 windows (A,C,G,T,N = 0..4) into float32 features of shape
(batch, n_bins, n_tracks): the central `n_bins` output bins of the selected tracks. Third-party packages
register more predictors with

    [project.entry-points."enpact.predictors"]
    borzoi = "my_package.borzoi:BorzoiPredictor"

where the class accepts the keyword arguments of `load_predictor` and satisfies `Predictor`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np

from enpact.errors import EnpactError

ENTRY_POINT_GROUP = "enpact.predictors"


@runtime_checkable
class Predictor(Protocol):
    """What the pipeline needs from a sequence model."""

    name: str
    weights: str
    window_bp: int
    bin_bp: int
    n_bins: int
    track_names: list[str]

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Features of a batch of uint8 windows: float32 (batch, n_bins, n_tracks)."""
        ...


def available_predictors() -> dict[str, object]:
    """Registered predictor classes by name (entry points, with the built-in Enformer as a fallback)."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if "enformer" not in found:
        from enpact.predictors.enformer import EnformerPredictor

        return {"enformer": EnformerPredictor, **{k: v for k, v in found.items()}}
    return dict(found)


def load_predictor(name: str, **options) -> Predictor:
    """Construct a registered predictor by name with keyword options (weights, device, precision, ...)."""
    registry = available_predictors()
    if name not in registry:
        raise EnpactError(f"unknown predictor '{name}'; available: {', '.join(sorted(registry))}")
    factory = registry[name]
    if hasattr(factory, "load") and not isinstance(factory, type):
        factory = factory.load()
    predictor = factory(**options)
    if not isinstance(predictor, Predictor):
        raise EnpactError(f"predictor '{name}' does not implement the enpact predictor protocol")
    return predictor


def parse_track_selection(spec: str | None, track_names: list[str]) -> np.ndarray:
    """Track indexes from 'all', a comma list of indexes, ranges (a-b, inclusive) or names."""
    n = len(track_names)
    if spec is None or spec.strip().lower() in ("", "all"):
        return np.arange(n)
    position = {name: i for i, name in enumerate(track_names)}
    selected: list[int] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item in position:
            selected.append(position[item])
        elif item.isdigit():
            selected.append(int(item))
        elif "-" in item and all(p.strip().isdigit() for p in item.split("-", 1)):
            lo, hi = (int(p) for p in item.split("-", 1))
            selected.extend(range(lo, hi + 1))
        else:
            raise EnpactError(f"--tracks: '{item}' is neither a track index, a range a-b, nor a track name")
    bad = [i for i in selected if not 0 <= i < n]
    if bad:
        raise EnpactError(f"--tracks: index {bad[0]} is out of range (the predictor has {n} tracks)")
    if len(set(selected)) != len(selected):
        raise EnpactError("--tracks: a track is selected twice")
    return np.array(selected, dtype=np.int64)
