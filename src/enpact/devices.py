"""Which torch device a `--device` value means: one rule for the predictors and the EnPACT models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from enpact.errors import EnpactError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str) -> "torch.device":
    """'auto' picks CUDA when a GPU is visible, else the CPU; cpu, cuda and cuda:N as given ('cuda' without a
    visible GPU is an error)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise EnpactError(f"device must be cpu, cuda or auto (got '{device}')")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EnpactError(f"--device {device} was requested but no CUDA GPU is visible: use --device cpu or auto, "
                          "or check the container's GPU flags")
    return torch.device(device)
