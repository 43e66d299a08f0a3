"""Tile grid and the Gaussian weights used to blend overlapping tiles."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``.

    Consecutive tiles share about ``overlap * tile`` pixels; the last tile is
    aligned with the end so no tile sticks out (``length >= tile`` assumed).
    """
    if length <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_grid(
    shape: tuple[int, int], tile: tuple[int, int], overlap: float
) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the ``tile``-shaped tiles covering a ``shape`` image."""
    return [
        (y, x)
        for y in tile_starts(shape[0], tile[0], overlap)
        for x in tile_starts(shape[1], tile[1], overlap)
    ]


def tile_shape(shape: tuple[int, int], tile: int) -> tuple[int, int]:
    """Tile size actually used: ``tile`` per axis, or the whole axis when it is shorter."""
    return min(tile, shape[0]), min(tile, shape[1])


def gaussian_weight(tile: tuple[int, int], sigma_fraction: float = 0.125) -> np.ndarray:
    """``tile``-shaped Gaussian centred on the tile, the paper's blending weight.

    Predictions near a tile's border see less context and are less reliable;
    weighting by a Gaussian centred on the tile lets the neighbouring tile,
    which sees that region near its own centre, dominate there. The minimum
    is clamped above zero so that every pixel keeps some weight.
    """
    profiles = []
    for length in tile:
        axis = np.arange(length, dtype=np.float64) - (length - 1) / 2
        profiles.append(np.exp(-0.5 * (axis / (sigma_fraction * length)) ** 2))
    weight = np.outer(profiles[0], profiles[1])
    weight /= weight.max()
    return np.maximum(weight, 1e-3).astype(np.float32)
