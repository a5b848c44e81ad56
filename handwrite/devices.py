"""Which device torch runs on: the CPU, a GPU, or whichever is there."""

from __future__ import annotations

import torch

from .errors import HandwriteError


def resolve_device(device: str, index: int | None = None) -> torch.device:
    """``cpu``, ``cuda[:N]`` or ``auto`` (CUDA when available); ``index`` picks the GPU (a torchrun rank's)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HandwriteError(f"device {device!r}: no CUDA device is available to torch here")
        return torch.device("cuda", index) if index is not None else torch.device(device)
    if device != "cpu":
        raise HandwriteError(f"unknown device {device!r}; choose cpu, cuda or auto")
    return torch.device("cpu")
