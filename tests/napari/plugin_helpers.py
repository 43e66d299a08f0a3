"""Helpers shared by the plugin tests (imported as a plain module: tests/napari is on sys.path)."""

from __future__ import annotations

import numpy as np

PLUGIN = "napari-lazyunet"


def errors(shown: list[tuple[str, ...]]) -> list[str]:
    """Messages of the error notifications (entries start with severity and message)."""
    return [entry[1] for entry in shown if entry[0].lower() == "error"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two foreground masks."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)
