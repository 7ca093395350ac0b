"""What a predictor built on a PyTorch model shares: the device and precision it runs at, the selected rows of its
output head, numpy in and out of `forward`, CUDA out-of-memory handling and synchronisation for the timings."""

from __future__ import annotations

import abc

import numpy as np
import torch

from enpact.devices import autocast_dtype, resolve_device, use_tf32
from enpact.predictors.base import SequencePredictor


class TorchPredictor(SequencePredictor):
    """A SequencePredictor whose subclass implements `_forward(torch windows) -> torch features` on `self.device`."""

    def use_device(self, device: str) -> None:
        """Resolve the device and set the autocast dtype and TF32 from the precision (call before loading)."""
        self.device = resolve_device(device)
        self.autocast_dtype = autocast_dtype(self.precision)
        use_tf32(self.precision == "tf32")

    def autocast(self) -> torch.autocast:
        """Autocast to the precision's dtype (disabled at fp32 and tf32)."""
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                              enabled=self.autocast_dtype is not None)

    def select_head(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Keep the rows of an output head (linear or 1x1 convolution) for the tracks `track_index` names, so that
        only those tracks are computed."""
        index = torch.as_tensor(self.track_index, device=weight.device)
        self._head_weight = weight.detach()[index].contiguous()
        self._head_bias = bias.detach()[index].contiguous()

    @abc.abstractmethod
    def _forward(self, windows: torch.Tensor) -> torch.Tensor:
        """One batch of uint8 windows (on the CPU) -> float32 (batch, n_bins, len(track_index)) features."""

    def forward(self, windows: np.ndarray) -> np.ndarray:
        """One batch through the model, on the device."""
        return self._forward(torch.from_numpy(windows)).cpu().numpy()

    def out_of_memory_errors(self) -> tuple[type[BaseException], ...]:
        """CUDA out of memory."""
        return (torch.cuda.OutOfMemoryError,)

    def after_out_of_memory(self) -> None:
        """Release the failed batch's memory."""
        torch.cuda.empty_cache()

    def synchronize(self) -> None:
        """Wait for the GPU."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
