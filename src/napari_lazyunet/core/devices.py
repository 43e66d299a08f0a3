"""Choice of the torch device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
        or (
            device.type == "cuda"
            and torch.cuda.is_available()
            and (device.index or 0) < torch.cuda.device_count()
        )
        or (device.type == "mps" and "mps" in usable)
    )
    if not ok:
        raise RuntimeError(
            f"device {name!r} is not available on this machine; available: {usable} (or use 'auto')"
        )
    return device


def flushing_denormals() -> bool:
    """Whether this thread flushes denormal floats to zero now.

    Torch has a setter (:func:`torch.set_flush_denormal`) but no getter: a
    float32 denormal that survives the conversion from Python tells.
    """
    return torch.tensor([1e-40], dtype=torch.float32).item() == 0.0


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Flush denormal floats to zero inside the block, then restore this thread's setting.

    Denormals appear in small weights and gradients and make CPU convolutions
    several times slower; flushing them costs no accuracy. Restoring the
    setting keeps the caller's process as it was (numpy and other libraries
    of the same thread see it too).
    """
    before = flushing_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not before:
            torch.set_flush_denormal(False)
