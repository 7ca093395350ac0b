"""Enformer (enformer-pytorch) as an EnPACT predictor: central bins and selected tracks only, on the device."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from enpact.devices import resolve_device
from enpact.errors import EnpactError
from enpact.predictors import parse_track_selection

log = logging.getLogger(__name__)

OFFICIAL_WINDOW_BP = 196_608
OFFICIAL_WEIGHTS = "EleutherAI/enformer-official-rough"
SIDECAR = "enpact_predictor.json"


PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


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


def use_tf32(enabled: bool) -> None:
    """TF32 matmuls and convolutions on CUDA (a lower precision: off unless asked for)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


AUTOCAST = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def central_bin_start(window_bp: int, bin_bp: int, bins: int) -> int:
    """First of the `bins` output bins nearest the locus centre: the bin holding the centre base and, around it,
    as many bins upstream as downstream (an even count takes one more upstream, so that it is symmetric about the
    centre position, which starts the centre bin)."""
    return (window_bp // 2) // bin_bp - bins // 2


def read_sidecar(weights: str) -> dict:
    """Optional `enpact_predictor.json` next to local weights: window_bp and other predictor facts."""
    path = Path(weights) / SIDECAR
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise EnpactError(f"{path}: invalid JSON ({err})")
    return {}


def read_track_names(weights: str, head: str, n_tracks: int) -> list[str]:
    """Track names from `tracks.tsv` (index, name) next to local weights, else `<head>_<index>`."""
    path = Path(weights) / "tracks.tsv"
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
    return [f"{head}_{i:04d}" for i in range(n_tracks)]


def load_enformer(weights: str, use_tf_gamma: bool):
    """Load Enformer from a Hugging Face id or a local `save_pretrained` directory."""
    from enformer_pytorch import Enformer

    local = Path(weights)
    if local.exists() and not (local / "config.json").is_file():
        raise EnpactError(f"{local}: not an Enformer checkpoint directory (no config.json)")
    try:
        model = Enformer.from_pretrained(str(local) if local.exists() else weights, use_tf_gamma=use_tf_gamma)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EnpactError(
            f"cannot load Enformer weights '{weights}' ({first_line}); on an offline machine download them first "
            f"(e.g. `huggingface-cli download {OFFICIAL_WEIGHTS} --local-dir DIR`) and pass the directory"
        )
    return model.eval()


class EnformerPredictor:
    """Enformer that returns the mean (or each) of the central `bins` output bins for selected tracks."""

    name = "enformer"

    def __init__(
        self,
        weights: str = OFFICIAL_WEIGHTS,
        device: str = "auto",
        precision: str = "fp32",
        batch_size: int = 4,
        bins: int = 4,
        tracks: str | None = None,
        aggregate: str = "mean",
        head: str = "human",
        window_bp: int | None = None,
        use_tf_gamma: bool | None = None,
    ):
        sidecar = read_sidecar(weights)
        self.window_bp = int(window_bp or sidecar.get("window_bp", OFFICIAL_WINDOW_BP))
        if use_tf_gamma is None:
            use_tf_gamma = bool(sidecar.get("use_tf_gamma", self.window_bp == OFFICIAL_WINDOW_BP))
        self.weights = str(weights)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision)
        self.autocast_dtype = AUTOCAST[self.precision]
        use_tf32(self.precision == "tf32")
        if aggregate not in ("mean", "none"):
            raise EnpactError(f"--aggregate must be 'mean' or 'none' (got '{aggregate}')")
        self.aggregate = aggregate
        self.batch_size = max(1, int(batch_size))
        self.model = load_enformer(self.weights, use_tf_gamma).to(self.device)
        heads = self.model.output_heads
        if head not in heads:
            raise EnpactError(f"Enformer weights '{weights}' have no head '{head}' (heads: {', '.join(heads)})")
        self.head = head
        self.bin_bp = 2 ** int(self.model.config.num_downsamples)
        if self.window_bp % self.bin_bp:
            raise EnpactError(f"window of {self.window_bp} bp is not a multiple of the {self.bin_bp} bp bins")
        total_bins = self.window_bp // self.bin_bp
        target_length = int(self.model.config.target_length)
        if not 1 <= bins <= min(target_length, total_bins):
            raise EnpactError(f"--bins must be between 1 and {min(target_length, total_bins)} (got {bins})")
        self.bins = int(bins)
        self.n_bins = 1 if aggregate == "mean" else self.bins
        all_tracks = read_track_names(self.weights, head, int(heads[head]))
        self.track_index = parse_track_selection(tracks, all_tracks)
        self.track_names = [all_tracks[i] for i in self.track_index]
        self._bin_start = central_bin_start(self.window_bp, self.bin_bp, self.bins)
        linear = self.model.heads[head][0]
        index = torch.as_tensor(self.track_index, device=self.device)
        self.seconds = 0.0  # time spent in predict(), for the runner's timings
        self.windows_predicted = 0
        self._head_weight = linear.weight.detach()[index].contiguous()
        self._head_bias = linear.bias.detach()[index].contiguous()
        log.info(
            "enformer: weights %s, window %d bp, %d central bins (%s), %d tracks, %s on %s, batch %d",
            self.weights, self.window_bp, self.bins, aggregate, len(self.track_names), self.precision,
            self.device, self.batch_size,
        )

    def describe(self) -> dict:
        """Predictor metadata stored with every output."""
        return {
            "predictor": self.name,
            "weights": self.weights,
            "window_bp": self.window_bp,
            "bin_bp": self.bin_bp,
            "bins": self.bins,
            "aggregate": self.aggregate,
            "head": self.head,
            "tracks": list(self.track_names),
            "precision": self.precision,
        }

    @torch.inference_mode()
    def _forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Run one batch on the device; only the central bins reach the pointwise layer and the head."""
        x = windows.to(self.device, non_blocking=True).long()
        one_hot = F.one_hot(x, num_classes=5)[..., :4].float()
        trunk = self.model.trunk
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            h = trunk[4](trunk[3](trunk[2](trunk[1](trunk[0](one_hot)))))
            h = h[:, self._bin_start : self._bin_start + self.bins]
            h = trunk[6](h)
            out = F.softplus(F.linear(h.float(), self._head_weight, self._head_bias))
        if self.aggregate == "mean":
            out = out.mean(dim=1, keepdim=True)
        return out.float()

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Features of uint8 windows (batch, window_bp): float32 (batch, n_bins, n_tracks)."""
        started = time.perf_counter()
        windows = np.ascontiguousarray(windows, dtype=np.uint8)
        if windows.ndim != 2 or windows.shape[1] != self.window_bp:
            raise EnpactError(f"windows must have shape (n, {self.window_bp}); got {windows.shape}")
        out = np.empty((len(windows), self.n_bins, len(self.track_names)), dtype=np.float32)
        start = 0
        while start < len(windows):
            stop = min(start + self.batch_size, len(windows))
            try:
                out[start:stop] = self._forward(torch.from_numpy(windows[start:stop])).cpu().numpy()
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise EnpactError("GPU out of memory at batch size 1; use a GPU with more memory")
                torch.cuda.empty_cache()
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("GPU out of memory: batch size halved to %d", self.batch_size)
                continue
            start = stop
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - started
        self.windows_predicted += len(windows)
        return out
