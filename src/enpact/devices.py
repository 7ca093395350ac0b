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


def autocast_dtype(precision: str) -> "torch.dtype | None":
    """The autocast dtype of a precision name: None for fp32 and tf32 (full-width tensors), bf16 or fp16."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def use_tf32(enabled: bool) -> None:
    """TF32 matmuls and convolutions on CUDA (a lower precision: off unless asked for)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
