"""Choice of the torch device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """Device names usable on this machine, best first (``cpu`` always last)."""
    names = []
    if torch.cuda.is_available():
        names = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` / ``mps`` into a usable device.

    Raises
    ------
    RuntimeError
        When the named device is not available here, with the list of those that are.
    """
    if name == "auto":
        return torch.device(available_devices()[0])
    device = torch.device(name)
    usable = available_devices()
    ok = (
        device.type == "cpu"
        or (device.type == "cuda" and torch.cuda.is_available()
            and (device.index or 0) < torch.cuda.device_count())
        or (device.type == "mps" and "mps" in usable)
    )
    if not ok:
        raise RuntimeError(
            f"device {name!r} is not available on this machine; available: {usable} "
            "(or use 'auto')"
        )
    return device
