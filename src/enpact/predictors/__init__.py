"""The sequence-predictor protocol and the registry of predictors (enpact.registry.PREDICTORS: the built-in
Enformer plus the Python entry point group `enpact.predictors`, where enpact registers Borzoi itself).

A predictor turns a batch of uint8 windows (A,C,G,T,N = 0..4) into float32 features of shape
(batch, n_bins, n_tracks): the central `n_bins` output bins of the selected tracks. Third-party packages
register more predictors with

    [project.entry-points."enpact.predictors"]
    my_model = "my_package.my_model:MyPredictor"

where the class subclasses `enpact.predictors.base.SequencePredictor` (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from enpact.errors import EnpactError
from enpact.registry import PREDICTORS


@runtime_checkable
class Predictor(Protocol):
    """What the pipeline needs from a sequence model (enpact.predictors.base.SequencePredictor provides all but
    the model itself)."""

    name: str
    weights: str
    window_bp: int
    bin_bp: int
    n_bins: int
    track_names: list[str]
    batch_size: int
    seconds: float
    windows_predicted: int

    def predict(self, windows: np.ndarray, strands: Sequence[str] | np.ndarray | None = None) -> np.ndarray:
        """Features of a batch of uint8 windows: float32 (batch, n_bins, n_tracks); `strands` (one per window,
        '+', '-' or '.') let a predictor with stranded tracks read them on each locus's strand."""
        ...

    def describe(self) -> dict:
        """The feature spec of the features it makes (predictor, weights, window, bins, tracks, precision, its
        own options), stored with every output."""
        ...


def available_predictors() -> dict[str, str]:
    """Registered predictors by name: the built-in Enformer plus the `enpact.predictors` entry point group."""
    return PREDICTORS.references()


def load_predictor(name: str, **options) -> Predictor:
    """Construct a registered predictor by name with keyword options (weights, device, precision, ...)."""
    factory = PREDICTORS.load(name)
    predictor = factory(**options)
    if not isinstance(predictor, Predictor):
        raise EnpactError(f"predictor '{name}' does not implement the enpact predictor protocol")
    return predictor
