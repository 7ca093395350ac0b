"""Enformer (enformer-pytorch) as an EnPACT predictor: central bins and selected tracks only, on the device."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from enpact.errors import EnpactError
from enpact.predictors.base import aggregate_bins, read_sidecar, read_track_names
from enpact.predictors.torch_model import TorchPredictor

log = logging.getLogger(__name__)

OFFICIAL_WINDOW_BP = 196_608
OFFICIAL_WEIGHTS = "EleutherAI/enformer-official-rough"

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


class EnformerPredictor(TorchPredictor):
    """Enformer that returns the mean (or each) of the central `bins` output bins for selected tracks."""

    name = "enformer"
    default_weights = OFFICIAL_WEIGHTS
    default_window_bp = OFFICIAL_WINDOW_BP

    def __init__(
        self,
        weights: str | None = None,
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
        super().__init__(self.choose_weights(weights), batch_size, bins, tracks, aggregate, precision)
        window = self.input_length(self.weights, window_bp)
        if use_tf_gamma is None:
            use_tf_gamma = bool(read_sidecar(self.weights).get("use_tf_gamma", window == OFFICIAL_WINDOW_BP))
        self.use_device(device)
        self.model = load_enformer(self.weights, use_tf_gamma).to(self.device)
        heads = self.model.output_heads
        if head not in heads:
            raise EnpactError(f"Enformer weights '{weights}' have no head '{head}' (heads: {', '.join(heads)})")
        self.head = head
        self.setup(window, 2 ** int(self.model.config.num_downsamples), int(self.model.config.target_length),
                   read_track_names(self.weights, head, int(heads[head])))
        linear = self.model.heads[head][0]
        self.select_head(linear.weight, linear.bias)
        log.info(
            "enformer: weights %s, window %d bp, %d central bins (%s), %d tracks, %s on %s, batch %d",
            self.weights, self.window_bp, self.bins, aggregate, len(self.track_names), self.precision,
            self.device, self.batch_size,
        )

    def options(self) -> dict[str, Any]:
        """Enformer's own option: the output head (human or mouse)."""
        return {"head": self.head}

    @torch.inference_mode()
    def _forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Run one batch on the device; only the central bins reach the pointwise layer and the head."""
        x = windows.to(self.device, non_blocking=True).long()
        one_hot = F.one_hot(x, num_classes=5)[..., :4].float()
        trunk = self.model.trunk
        with self.autocast():
            h = trunk[4](trunk[3](trunk[2](trunk[1](trunk[0](one_hot)))))
            h = h[:, self.bin_start : self.bin_start + self.bins]
            h = trunk[6](h)
            out = F.softplus(F.linear(h.float(), self._head_weight, self._head_bias))
        return aggregate_bins(out, self.aggregate).float()
