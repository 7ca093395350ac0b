"""What every sequence predictor shares: the options it is built from, the transforms from its output to EnPACT
features (central bins, tracks, bin aggregation), batching with out-of-memory halving, timing, and the description
stored with every output.

A new predictor subclasses `SequencePredictor`, loads its model in `__init__` (then calls `setup()` with its window,
bin size, track names and, for stranded tracks, each track's strand mate) and implements `forward(batch)`: the
central `self.bins` output bins of the tracks `self.track_index` names, for a batch of uint8 windows
(A,C,G,T,N = 0..4). Window length, bin size, output bins and the default weights come from the predictor, never
from another predictor's constants. docs/extending.md has a worked example.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from enpact.errors import EnpactError

log = logging.getLogger(__name__)

SIDECAR = "enpact_predictor.json"
TRACK_NAMES_FILE = "tracks.tsv"
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
AGGREGATES = ("mean", "none")


# ---------------------------------------------------------------------------------------------------------
# model-independent transforms from a predictor's output bins and tracks to EnPACT features


def central_bin_start(window_bp: int, bin_bp: int, bins: int) -> int:
    """First of the `bins` output bins nearest the locus centre: the bin holding the centre base and, around it,
    as many bins upstream as downstream (an even count takes one more upstream, so that it is symmetric about the
    centre position, which starts the centre bin)."""
    return (window_bp // 2) // bin_bp - bins // 2


def parse_track_selection(spec: str | None, track_names: Sequence[str]) -> np.ndarray:
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


def strand_track_index(selected: np.ndarray, strand_mates: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """The tracks a forward pass computes for selected tracks of a stranded predictor, and for each selected track
    the column of that output a minus-strand locus reads: its strand mate (itself for an unstranded track).

    The selected tracks come first, in order, then the mates not selected; without mates (an unstranded
    predictor) both are the selection itself."""
    if strand_mates is None:
        return selected, np.arange(len(selected))
    mates = np.asarray(strand_mates, dtype=np.int64)[selected]
    computed = list(selected.tolist())
    column = {track: i for i, track in enumerate(computed)}
    for mate in mates.tolist():
        if mate not in column:
            column[mate] = len(computed)
            computed.append(mate)
    return np.array(computed, dtype=np.int64), np.array([column[m] for m in mates.tolist()], dtype=np.int64)


def minus_strand_mask(strands: Sequence[str] | np.ndarray | None, n: int) -> np.ndarray | None:
    """True for windows of minus-strand loci ('-'); None when no strand is known ('+', '.', or not given)."""
    if strands is None:
        return None
    minus = np.asarray(strands).astype(str) == "-"
    if len(minus) != n:
        raise EnpactError(f"{len(minus)} strands given for {n} windows")
    return minus if minus.any() else None


def aggregate_bins(output: Any, aggregate: str) -> Any:
    """(batch, bins, tracks) -> (batch, 1, tracks) mean over the bins ('mean') or unchanged ('none'); a numpy array
    or a torch tensor (averaged where it lies, e.g. on the GPU)."""
    if aggregate != "mean":
        return output
    if hasattr(output, "dim"):   # a torch tensor
        return output.mean(dim=1, keepdim=True)
    return output.mean(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------
# options and files next to local weights


def resolve_precision(precision: str) -> str:
    """The precision a name asks for: fp32 (the default; `auto` is kept as its alias), or a lower one on request.

    Between-individual differences are differences of two forward passes, small next to the values: bf16 keeps
    8 bits of mantissa and can erase them, so nothing lower than fp32 is chosen without being asked for
    (`enpact precision-audit` measures what a lower precision costs on your data).
    """
    precision = "fp32" if precision == "auto" else precision
    if precision not in PRECISIONS:
        raise EnpactError(f"--precision must be one of {', '.join(PRECISIONS)} (auto = fp32), got '{precision}'")
    return precision


def read_sidecar(weights: str) -> dict:
    """Optional `enpact_predictor.json` next to local weights: window_bp and other predictor facts."""
    path = Path(weights) / SIDECAR
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise EnpactError(f"{path}: invalid JSON ({err})")
    return {}


def read_track_names(weights: str, prefix: str, n_tracks: int) -> list[str]:
    """Track names from `tracks.tsv` (index, name) next to local weights, else `<prefix>_<index>`."""
    path = Path(weights) / TRACK_NAMES_FILE
    if path.is_file():
        names = []
        for line in path.read_text().splitlines():
            fields = line.rstrip("\n").split("\t")
            if not line.strip() or fields[0] in ("index", "#index"):
                continue
            names.append(fields[-1])
        if len(names) != n_tracks:
            raise EnpactError(f"{path}: {len(names)} track names for a head with {n_tracks} tracks")
        return names
    return [f"{prefix}_{i:04d}" for i in range(n_tracks)]


# ---------------------------------------------------------------------------------------------------------
# the base class


class SequencePredictor(abc.ABC):
    """A predictor: uint8 windows (batch, window_bp) -> float32 features (batch, n_bins, n_tracks)."""

    name: ClassVar[str]
    default_weights: ClassVar[str | None] = None    # weights used when none are given (a Hugging Face id)
    default_window_bp: ClassVar[int | None] = None  # input length of the default weights

    @classmethod
    def choose_weights(cls, weights: str | None, device: str = "auto", precision: str = "fp32") -> str:
        """The weights to load: those given, else the predictor's default (which may depend on the device)."""
        if weights:
            return str(weights)
        if cls.default_weights is None:
            raise EnpactError(f"predictor '{cls.name}' has no default weights: set weights")
        return cls.default_weights

    @classmethod
    def input_length(cls, weights: str | None, window_bp: int | None = None) -> int:
        """The input length without loading the model: `window_bp` if given, else the `enpact_predictor.json`
        next to local weights, else the predictor's default."""
        if window_bp:
            return int(window_bp)
        window = read_sidecar(weights).get("window_bp") if weights and Path(weights).is_dir() else None
        window = window or cls.default_window_bp
        if not window:
            raise EnpactError(f"predictor '{cls.name}' has no default input length: set window_bp")
        return int(window)

    @classmethod
    def write_demo_checkpoint(cls, out: Path) -> Path:
        """Write a tiny random checkpoint in the predictor's real format to `out` (for the demo and tests)."""
        raise EnpactError(f"predictor '{cls.name}' has no demo checkpoint to write")

    def __init__(self, weights: str, batch_size: int = 4, bins: int = 4, tracks: str | None = None,
                 aggregate: str = "mean", precision: str = "fp32") -> None:
        if aggregate not in AGGREGATES:
            raise EnpactError(f"--aggregate must be 'mean' or 'none' (got '{aggregate}')")
        self.weights = str(weights)
        self.batch_size = max(1, int(batch_size))
        self.bins = int(bins)
        self.aggregate = aggregate
        self.precision = resolve_precision(precision)
        self._tracks_spec = tracks
        self.stranded = False
        self.seconds = 0.0            # time spent in predict(), for the runner's timings
        self.windows_predicted = 0

    def setup(self, window_bp: int, bin_bp: int, output_bins: int, track_names: Sequence[str],
              strand_mates: Sequence[int] | None = None) -> None:
        """Called by a subclass once its model is loaded: window, bin size, output bins, all track names and, for
        a predictor with stranded tracks, each track's strand mate (its own index for an unstranded track).

        `forward` then computes the tracks `self.track_index` names: the selected ones and their strand mates; a
        minus-strand locus reads each selected track's mate, and its kept bins (`aggregate` none) in reverse genomic
        order, so a feature means the same strand and bin the same side relative to the locus (the transcribed
        strand of a gene) whichever genomic strand it lies on."""
        self.window_bp, self.bin_bp = int(window_bp), int(bin_bp)
        if self.window_bp % self.bin_bp:
            raise EnpactError(f"window of {self.window_bp} bp is not a multiple of the {self.bin_bp} bp bins")
        limit = min(int(output_bins), self.window_bp // self.bin_bp)
        if not 1 <= self.bins <= limit:
            raise EnpactError(f"--bins must be between 1 and {limit} (got {self.bins})")
        self.n_bins = 1 if self.aggregate == "mean" else self.bins
        self.bin_start = central_bin_start(self.window_bp, self.bin_bp, self.bins)
        selected = parse_track_selection(self._tracks_spec, list(track_names))
        if strand_mates is not None and len(strand_mates) != len(track_names):
            raise EnpactError(f"{len(strand_mates)} strand mates for {len(track_names)} tracks")
        self.track_index, self.minus_columns = strand_track_index(selected, strand_mates)
        self.stranded = bool((self.minus_columns != np.arange(len(selected))).any())
        self.track_names = [list(track_names)[i] for i in selected]

    def options(self) -> dict[str, Any]:
        """The predictor's own options (beyond the shared ones), recorded so that it can be rebuilt exactly."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Predictor metadata stored with every output (the feature spec of the features it makes)."""
        return {
            "predictor": self.name,
            "weights": self.weights,
            "window_bp": self.window_bp,
            "bin_bp": self.bin_bp,
            "bins": self.bins,
            "aggregate": self.aggregate,
            "tracks": list(self.track_names),
            "precision": self.precision,
            "options": self.options(),
        }

    @abc.abstractmethod
    def forward(self, windows: np.ndarray) -> np.ndarray:
        """Features of one batch: float32 (batch, n_bins, len(track_index)) of the central bins, for the tracks
        `self.track_index` names (the selected tracks, then their strand mates)."""

    def out_of_memory_errors(self) -> tuple[type[BaseException], ...]:
        """Errors meaning the batch did not fit on the device (the batch is then halved and retried)."""
        return ()

    def after_out_of_memory(self) -> None:
        """Free what a failed batch left on the device."""

    def synchronize(self) -> None:
        """Wait for the device (so that the timings are right)."""

    def predict(self, windows: np.ndarray, strands: Sequence[str] | np.ndarray | None = None) -> np.ndarray:
        """Features of uint8 windows (batch, window_bp): float32 (batch, n_bins, n_tracks); `strands` are the
        loci's strands ('+', '-', '.'), one per window: with stranded tracks, minus-strand windows read the tracks'
        mates and their kept bins in reverse genomic order (upstream of the locus first, as on the plus strand)."""
        started = time.perf_counter()
        windows = np.ascontiguousarray(windows, dtype=np.uint8)
        if windows.ndim != 2 or windows.shape[1] != self.window_bp:
            raise EnpactError(f"windows must have shape (n, {self.window_bp}); got {windows.shape}")
        minus = minus_strand_mask(strands, len(windows)) if self.stranded else None
        out = np.empty((len(windows), self.n_bins, len(self.track_index)), dtype=np.float32)
        start = 0
        while start < len(windows):
            stop = min(start + self.batch_size, len(windows))
            try:
                out[start:stop] = self.forward(windows[start:stop])
            except self.out_of_memory_errors():
                if self.batch_size == 1:
                    raise EnpactError("GPU out of memory at batch size 1; use a GPU with more memory") from None
                self.after_out_of_memory()
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("GPU out of memory: batch size halved to %d", self.batch_size)
                continue
            start = stop
        self.synchronize()
        self.seconds += time.perf_counter() - started
        self.windows_predicted += len(windows)
        if not self.stranded:
            return out
        features = out[:, :, : len(self.track_names)]
        if minus is not None:
            # the locus's own strand: each track's mate, and the kept bins upstream to downstream of the locus (a
            # model over bins sees the same orientation for genes on either genomic strand)
            features[minus] = out[minus][:, ::-1][:, :, self.minus_columns]
        return np.ascontiguousarray(features)
