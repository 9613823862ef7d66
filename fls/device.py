"""Pick the torch device: CUDA when present (the paper's runs used GPUs), CPU otherwise, or as told."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    pass


def resolve_device(name: str | None = "auto") -> torch.device:
    """``None``/``"auto"`` -> ``cuda`` if available else ``cpu``; anything else must be a usable torch device."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"device: '{name}' is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device: '{name}' requested but CUDA is not available on this machine (use cpu or auto)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device: '{name}' requested but MPS is not available on this machine")
    return dev
