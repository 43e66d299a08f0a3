"""Choice of the torch device (CUDA, then Apple MPS, then CPU) and torch's process-wide settings.

Torch's thread count and its denormal switch belong to the process (the
switch to the calling thread), not to a model: work that changes them puts
back what it found when it ends (:func:`denormals_flushed` for a block,
:class:`TorchSettings` for a training run).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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


@dataclass(frozen=True)
class TorchSettings:
    """Torch's thread count and denormal switch as they were before training changed them.

    Attributes
    ----------
    num_threads : int
        :func:`torch.get_num_threads` before.
    flush_denormal : bool
        Whether this thread flushed denormals before (:func:`flushing_denormals`).
    """

    num_threads: int
    flush_denormal: bool

    @classmethod
    def set_for_training(cls, num_threads: int | None) -> TorchSettings:
        """Remember the current settings, then use ``num_threads`` and flush denormals.

        Parameters
        ----------
        num_threads : int or None
            Threads for torch; ``0`` or ``None`` keeps the current count.

        Returns
        -------
        TorchSettings
            The settings found, for :meth:`restore`.
        """
        threads_before = torch.get_num_threads()
        if num_threads:
            torch.set_num_threads(num_threads)
        # Denormals slow CPU convolutions several times over (see denormals_flushed).
        flushing_before = flushing_denormals()
        torch.set_flush_denormal(True)
        return cls(threads_before, flushing_before)

    def restore(self) -> None:
        """Put torch's thread count and this thread's denormal switch back as they were."""
        torch.set_num_threads(self.num_threads)
        torch.set_flush_denormal(self.flush_denormal)
