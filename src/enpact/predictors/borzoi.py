"""Borzoi and Flashzoi (borzoi-pytorch) as an EnPACT predictor: 32 bp bins, stranded track pairs, central bins and
selected tracks only, on the device.

Borzoi (Linder et al. 2025) reads 524,288 bp and predicts 7,611 human tracks (RNA-seq coverage per strand, CAGE per
strand, DNase/ATAC, ChIP) in 32 bp bins. Flashzoi is the same network retrained with rotary embeddings and
FlashAttention-2: faster on a GPU, but its attention kernel runs in bf16 or fp16 on CUDA only.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from enpact.errors import EnpactError
from enpact.predictors.base import SIDECAR, aggregate_bins, read_track_names
from enpact.predictors.torch_model import TorchPredictor

log = logging.getLogger(__name__)

OFFICIAL_WINDOW_BP = 524_288
BORZOI_WEIGHTS = "johahi/borzoi-replicate-0"
FLASHZOI_WEIGHTS = "johahi/flashzoi-replicate-0"
FLASH_PRECISIONS = ("bf16", "fp16")   # FlashAttention-2 kernels take half-width tensors only
TARGETS_FILE = "targets.txt"           # Borzoi's track table (identifier, strand_pair, description, ...)
HEADS = {"human": "human_head", "mouse": "mouse_head"}   # head -> its module in the network
SCALES = ("squashed", "coverage")      # Borzoi's training scale, or coverage with the squashing undone


def flash_attention_available(device: str) -> bool:
    """Whether Flashzoi's attention kernel can run: a CUDA device and the flash-attn package."""
    if device == "cpu" or not torch.cuda.is_available():
        return False
    return importlib.util.find_spec("flash_attn") is not None


def read_targets(path: Path | str) -> tuple[list[str], list[int]]:
    """Track identifiers and strand mates of a Borzoi targets table (its index column, identifier, strand_pair)."""
    import pandas as pd

    try:
        table = pd.read_table(path, index_col=0)
    except (OSError, ValueError) as err:
        raise EnpactError(f"{path}: cannot read the Borzoi targets table ({err})")
    missing = {"identifier", "strand_pair"} - set(table.columns)
    if missing:
        raise EnpactError(f"{path}: the Borzoi targets table has no column {sorted(missing)[0]}")
    mates = pd.to_numeric(table["strand_pair"], errors="coerce")
    if mates.isna().any() or not mates.between(0, len(table) - 1).all():
        row = int(np.flatnonzero((mates.isna() | ~mates.between(0, len(table) - 1)).to_numpy())[0])
        raise EnpactError(f"{path}: line {row + 2}: strand_pair '{table['strand_pair'].iloc[row]}' is not a row of "
                          "the table")
    mates = mates.astype(np.int64).to_numpy()
    if not (mates[mates] == np.arange(len(mates))).all():
        row = int(np.flatnonzero(mates[mates] != np.arange(len(mates)))[0])
        raise EnpactError(f"{path}: line {row + 2}: track {row}'s strand mate does not name it back")
    return table["identifier"].astype(str).tolist(), mates.tolist()


def targets_file(weights: str, head: str) -> Path | None:
    """The track table of a head: `targets_<head>.txt` or (human) `targets.txt` next to local weights, else the human
    table borzoi-pytorch ships; None when there is none."""
    candidates = [Path(weights) / f"targets_{head}.txt"]
    if head == "human":
        candidates.append(Path(weights) / TARGETS_FILE)
        candidates.append(Path(str(importlib.util.find_spec("borzoi_pytorch").submodule_search_locations[0]))
                          / "precomputed" / TARGETS_FILE)
    return next((path for path in candidates if path.is_file()), None)


def read_squashing(path: Path | str, n_tracks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per track of a Borzoi targets table, how its training targets were squashed: the scale they were multiplied
    by, the soft clip above which they were square-rooted, and the power they were raised to (3/4 for `sum_sqrt`
    tracks, RNA-seq; 1 otherwise)."""
    import pandas as pd

    table = pd.read_table(path, index_col=0)
    missing = {"clip_soft", "scale", "sum_stat"} - set(table.columns)
    if missing:
        raise EnpactError(f"{path}: no column {sorted(missing)[0]}, needed to undo Borzoi's squashing "
                          "(predictor_options scale=coverage); leave scale at squashed")
    if len(table) != n_tracks:
        raise EnpactError(f"{path}: {len(table)} tracks for a head with {n_tracks} tracks")
    power = np.where(table["sum_stat"].astype(str).str.contains("sqrt"), 0.75, 1.0)
    return table["scale"].to_numpy(np.float64), table["clip_soft"].to_numpy(np.float64), power


def unsquash(x: torch.Tensor, scale: torch.Tensor, clip_soft: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """Borzoi's predictions (batch, bins, tracks) back on the coverage scale, per track (the inverse of its target
    transform, as borzoi-pytorch's `undo_squashed_scale`): divide by the scale, undo the soft clip
    (clip + (x - clip)^2 above it), then the power (x^(1/power))."""
    x = x / scale
    x = torch.where(x > clip_soft, (x - clip_soft) ** 2 + clip_soft, x)
    return x ** (1.0 / power)


def head_tracks(weights: str, head: str, n_tracks: int) -> tuple[list[str], list[int] | None]:
    """Track names and strand mates of a head from its track table (`targets_file`), else `tracks.tsv` or
    `<head>_<index>` names without strand mates."""
    path = targets_file(weights, head)
    if path is not None:
        names, mates = read_targets(path)
        if len(names) != n_tracks:
            raise EnpactError(f"{path}: {len(names)} tracks for a {head} head with {n_tracks} tracks")
        return names, mates
    log.warning("borzoi: no track table for the %s head; tracks are unnamed and not paired by strand (put "
                "targets_%s.txt next to the weights)", head, head)
    return read_track_names(weights, head, n_tracks), None


def load_borzoi(weights: str):
    """Load Borzoi or Flashzoi from a Hugging Face id or a local `save_pretrained` directory."""
    from borzoi_pytorch import Borzoi

    local = Path(weights)
    if local.exists() and not (local / "config.json").is_file():
        raise EnpactError(f"{local}: not a Borzoi checkpoint directory (no config.json)")
    try:
        model = Borzoi.from_pretrained(str(local) if local.exists() else weights)
    except ImportError as err:   # a Flashzoi checkpoint builds flash-attn's attention module
        raise EnpactError(f"Borzoi weights '{weights}' are Flashzoi weights, which need the flash-attn package and a "
                          f"CUDA GPU ({err}); use Borzoi weights such as {BORZOI_WEIGHTS} elsewhere")
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EnpactError(
            f"cannot load Borzoi weights '{weights}' ({first_line}); on an offline machine download them first "
            f"(e.g. `huggingface-cli download {BORZOI_WEIGHTS} --local-dir DIR`) and pass the directory"
        )
    return model.eval()


def output_bin_bp(model) -> int:
    """Borzoi's output resolution: the pooling before the U-net, whose upsampling path returns to it (32 bp)."""
    pools = 1 + sum(isinstance(layer, torch.nn.MaxPool1d) for layer in model.res_tower)
    return 2 ** pools


class BorzoiPredictor(TorchPredictor):
    """Borzoi (or Flashzoi) that returns the mean (or each) of the central `bins` 32 bp bins for selected tracks;
    a minus-strand locus reads each stranded track's mate. Values are on Borzoi's squashed training scale, or with
    `scale` coverage, on the coverage scale (unsquashed per bin, before the bins are averaged)."""

    name = "borzoi"
    default_weights = BORZOI_WEIGHTS
    default_window_bp = OFFICIAL_WINDOW_BP

    @classmethod
    def choose_weights(cls, weights: str | None, device: str = "auto", precision: str = "fp32") -> str:
        """The weights given, else Flashzoi where its attention kernel runs (a CUDA GPU with flash-attn, at bf16
        or fp16), else Borzoi."""
        if weights:
            return str(weights)
        if precision in FLASH_PRECISIONS and flash_attention_available(device):
            return FLASHZOI_WEIGHTS
        return BORZOI_WEIGHTS

    def __init__(
        self,
        weights: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        batch_size: int = 2,
        bins: int = 4,
        tracks: str | None = None,
        aggregate: str = "mean",
        head: str = "human",
        window_bp: int | None = None,
        scale: str = "squashed",
    ):
        super().__init__(self.choose_weights(weights, device, precision), batch_size, bins, tracks, aggregate,
                         precision)
        if head not in HEADS:
            raise EnpactError(f"borzoi: head must be human or mouse (got '{head}')")
        if scale not in SCALES:
            raise EnpactError(f"borzoi: scale must be squashed or coverage (got '{scale}')")
        window = self.input_length(self.weights, window_bp)
        self.use_device(device)
        model = load_borzoi(self.weights)
        self.flashed = bool(getattr(model, "flashed", False))
        if self.flashed and (self.device.type != "cuda" or self.precision not in FLASH_PRECISIONS):
            raise EnpactError(f"Borzoi weights '{self.weights}' are Flashzoi weights, whose attention kernel runs in "
                              f"bf16 or fp16 on a CUDA GPU (here: {self.precision} on {self.device}); use Borzoi weights "
                              f"({BORZOI_WEIGHTS}) for fp32 or the CPU")
        module_name = HEADS[head]
        if not hasattr(model, module_name):
            raise EnpactError(f"Borzoi weights '{self.weights}' have no {head} head")
        bin_bp = output_bin_bp(model)
        token_bp = 4 * bin_bp   # two more poolings before the transformer
        if window % token_bp:
            raise EnpactError(f"borzoi: the window ({window:,} bp) must be a multiple of {token_bp} bp")
        # Borzoi is trained to predict only the central bins its crop keeps (6,144 of 16,384: 196,608 bp)
        trained = window // bin_bp if model.crop.target_length == -1 else min(model.crop.target_length,
                                                                               window // bin_bp)
        if self.bins > trained:
            raise EnpactError(f"borzoi: bins {self.bins} reach outside the central {trained:,} bins "
                              f"({trained * bin_bp:,} bp) that Borzoi predicts; set bins (--bins) to at most "
                              f"{trained:,}")
        # every output bin: the central ones are taken here, so windows of any length (a multiple of 128 bp) work
        model.crop.target_length = -1
        self.model = model.to(self.device)
        self.head = head
        linear = getattr(self.model, module_name)
        names, mates = head_tracks(self.weights, head, int(linear.out_channels))
        self.setup(window, bin_bp, trained, names, mates)
        self.select_head(linear.weight, linear.bias)
        self.scale = scale
        self._squashing = None
        if scale == "coverage":
            table = targets_file(self.weights, head)
            if table is None:
                raise EnpactError(f"borzoi: scale=coverage needs the {head} head's track table (targets_{head}.txt "
                                  "with clip_soft, scale and sum_stat) next to the weights")
            self._squashing = tuple(torch.as_tensor(a[self.track_index], dtype=torch.float32, device=self.device)
                                    for a in read_squashing(table, int(linear.out_channels)))
        log.info(
            "borzoi: weights %s%s, window %d bp, %d central %d bp bins (%s), %d tracks%s on the %s scale, %s on %s, "
            "batch %d", self.weights, " (Flashzoi)" if self.flashed else "", self.window_bp, self.bins, self.bin_bp,
            aggregate, len(self.track_names), ", strand-paired" if self.stranded else "", scale, self.precision,
            self.device, self.batch_size,
        )

    @classmethod
    def write_demo_checkpoint(cls, out: Path) -> Path:
        """The tiny random Borzoi of the demo and the tests (write_tiny_checkpoint)."""
        return write_tiny_checkpoint(out)

    def options(self) -> dict[str, Any]:
        """Borzoi's own options: the output head (human or mouse), and the scale when it is not the default."""
        return {"head": self.head, **({"scale": self.scale} if self.scale != "squashed" else {})}

    @torch.inference_mode()
    def _forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Run one batch on the device; only the central bins reach the final convolutions and the head."""
        x = windows.to(self.device, non_blocking=True).long()
        one_hot = F.one_hot(x, num_classes=5)[..., :4].float().transpose(1, 2)   # (batch, 4, window); N = 0
        with self.autocast():
            h = self.model.get_embs_after_crop(one_hot)                          # (batch, dim, window / 32)
            h = self.model.final_joined_convs(h[:, :, self.bin_start : self.bin_start + self.bins])
        out = F.softplus(F.conv1d(h.float(), self._head_weight, self._head_bias)).transpose(1, 2)
        if self._squashing is not None:
            out = unsquash(out, *self._squashing)
        return aggregate_bins(out, self.aggregate).float()


# ---------------------------------------------------------------------------------------------------------
# a tiny random checkpoint in the real format, for the demo and the tests (real weights cannot be bundled)

TINY_WINDOW_BP = 4_096
TINY_SEED = 7


def tiny_config(window_bp: int = TINY_WINDOW_BP) -> dict[str, Any]:
    """BorzoiConfig values of the tiny checkpoint: the real network with a narrow, one-layer transformer (its
    convolution widths and the 7,611-track human head are fixed by the architecture)."""
    return {"dim": 64, "depth": 1, "heads": 2, "attn_dim_key": 8, "attn_dim_value": 16,
            "bins_to_return": window_bp // 32, "enable_mouse_head": False}


def calibrate_batch_norms(model, window_bp: int, n_windows: int = 8):
    """Set every batch norm's running statistics to those of random sequence, so that activations keep unit scale
    through the randomly initialised network (with the initial statistics they shrink ~30x per block and every
    output is softplus(0))."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None    # a cumulative average: the statistics of exactly this batch
    model.eval()
    for norm in norms:
        norm.train()
    windows = torch.randint(0, 4, (n_windows, window_bp))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # the same statistics, to the last bit, on every machine
    try:
        with torch.no_grad():
            model(F.one_hot(windows, num_classes=4).float().transpose(1, 2))
    finally:
        torch.set_num_threads(threads)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def write_tiny_checkpoint(out: Path | str, window_bp: int = TINY_WINDOW_BP, seed: int = TINY_SEED) -> Path:
    """Save a randomly initialised Borzoi with `save_pretrained` (config.json + safetensors) and its
    enpact_predictor.json; an existing complete checkpoint with the same settings is kept. About 140 MB."""
    from borzoi_pytorch import Borzoi
    from borzoi_pytorch.config_borzoi import BorzoiConfig

    out = Path(out)
    sidecar = {"window_bp": int(window_bp), "tiny": True, "seed": int(seed), "config": tiny_config(window_bp)}
    if (out / SIDECAR).is_file() and (out / "config.json").is_file():
        if json.loads((out / SIDECAR).read_text()) == sidecar:
            return out
        raise EnpactError(f"{out}: holds another checkpoint; remove it or choose another folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        torch.manual_seed(seed)
        model = calibrate_batch_norms(Borzoi(BorzoiConfig(**tiny_config(window_bp))), window_bp)
        model.save_pretrained(staging, safe_serialization=True)
        (staging / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("borzoi: tiny random checkpoint written to %s", out)
    return out
