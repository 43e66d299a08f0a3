"""Resizing channel-first arrays between a plane's size and the network's scale.

Used when a model works at another resolution than the images it is given
(``PredictConfig.input_scale``): planes are shrunk or enlarged on the way in
and the probabilities are brought back to the plane's size on the way out.
"""

from __future__ import annotations

import cv2
import numpy as np


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """``(Y, X)`` of a plane of ``shape`` resized by ``scale`` (at least 1 x 1)."""
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def resize_channels(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize every channel of a ``(K, Y, X)`` array to ``shape``, as float32.

    Shrinking averages the pixels it merges (area interpolation, which does
    not alias fine texture); enlarging interpolates linearly.
    """
    if tuple(array.shape[-2:]) == tuple(shape):
        return array.astype(np.float32, copy=False)
    shrinking = shape[0] <= array.shape[-2] and shape[1] <= array.shape[-1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    size = (int(shape[1]), int(shape[0]))  # OpenCV takes (width, height)
    return np.stack(
        [
            cv2.resize(channel.astype(np.float32, copy=False), size, interpolation=interpolation)
            for channel in array
        ]
    )


def resize_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a ``(Y, X)`` or ``(Y, X, C)`` image plane to ``shape``, as float32.

    Same interpolation rule as :func:`resize_channels`; the channels stay last.
    """
    data = np.asarray(plane).astype(np.float32, copy=False)
    if data.ndim == 2:
        return resize_channels(data[None], shape)[0]
    return np.moveaxis(resize_channels(np.moveaxis(data, -1, 0), shape), 0, -1)
