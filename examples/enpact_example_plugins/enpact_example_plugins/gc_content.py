"""A predictor without a neural network: the base composition (A, C, G, T, GC fractions) of each output bin.

It shows what a predictor writes itself; enpact.predictors.base.SequencePredictor does the rest (bins nearest
the centre, track selection, bin averaging, batching, timings, the description stored with the features).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from enpact.errors import EnpactError
from enpact.predictors.base import SequencePredictor, aggregate_bins

TRACKS = ["A", "C", "G", "T", "GC"]


class GcContentPredictor(SequencePredictor):
    """Fractions of A, C, G, T and G+C among the called bases of each `bin_bp` bin."""

    name = "gc_content"

    def __init__(self, weights: str = "none", device: str = "cpu", precision: str = "fp32", batch_size: int = 64,
                 bins: int = 4, tracks: str | None = None, aggregate: str = "mean", window_bp: int | None = None,
                 bin_bp: int | str = 128) -> None:
        super().__init__(weights, batch_size, bins, tracks, aggregate, precision)
        self.bin_size = int(bin_bp)   # its own option: recorded by options(), so personalize rebuilds it alike
        if self.bin_size < 1:
            raise EnpactError(f"gc_content: bin_bp must be positive (got {bin_bp})")
        window = int(window_bp or 1024)
        self.setup(window, self.bin_size, window // self.bin_size, TRACKS)

    def options(self) -> dict[str, Any]:
        """The option beyond the shared ones."""
        return {"bin_bp": self.bin_size}

    def forward(self, windows: np.ndarray) -> np.ndarray:
        """Base fractions of the central bins, selected tracks."""
        start = self.bin_start * self.bin_size
        central = windows[:, start : start + self.bins * self.bin_size].reshape(len(windows), self.bins, -1)
        counts = np.stack([(central == base).sum(axis=2) for base in range(4)], axis=2).astype(np.float32)
        called = np.maximum(counts.sum(axis=2, keepdims=True), 1.0)
        fractions = np.concatenate([counts, counts[:, :, 1:3].sum(axis=2, keepdims=True)], axis=2) / called
        return aggregate_bins(fractions[:, :, self.track_index], self.aggregate)
