"""Intensity normalisation, channel layout and resizing, shared by training and prediction.

The same function runs at training and at prediction time, with the settings
saved in the model file, so a model never sees intensities scaled differently
from what it learned on. When a model works at another resolution than the
images it is given (``PredictConfig.input_scale``), planes are resized on the
way in and the probabilities brought back to the plane's size on the way out
(:func:`resize_plane`, :func:`resize_channels`).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import NormalizationConfig
from .labels import LabelError


def to_channels_first(image: np.ndarray, in_channels: int) -> np.ndarray:
    """Return a ``(C, Y, X)`` float32 copy of a ``(Y, X)`` or ``(Y, X, C)`` plane.

    Parameters
    ----------
    image : ndarray
        One plane, channels last.
    in_channels : int
        Channels the model expects.

    Returns
    -------
    ndarray
        ``(in_channels, Y, X)`` float32.
    """
    image = np.asarray(image)
    if image.ndim == 2 and in_channels == 1:
        return image[None].astype(np.float32)
    if image.ndim == 3 and image.shape[-1] == in_channels:
        return np.moveaxis(image, -1, 0).astype(np.float32)
    raise LabelError(
        f"image plane of shape {image.shape} does not have {in_channels} channel(s); "
        "give (Y, X) for gray or (Y, X, C) with channels last, matching model.in_channels"
    )


# Percentiles of huge planes are estimated on a regular subsample of about this
# many pixels, so that normalising a whole-slide image never copies it whole.
MAX_SAMPLES = 4_000_000


def normalization_bounds(
    image: np.ndarray, config: NormalizationConfig, in_channels: int, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel intensities mapped to 0 and 1, each shaped ``(C, 1, 1)``.

    Planes with more than :data:`MAX_SAMPLES` pixels are sampled on a regular
    grid (deterministic), which changes percentiles negligibly. With
    ``scale < 1`` the bounds are those of the plane shrunk by ``scale``
    (shrinking averages pixels and narrows the percentiles), approximated on
    the sample when the grid is finer than the shrunk pixels.
    """
    if config.mode == "fixed":
        lo = np.full((in_channels, 1, 1), config.low, np.float32)
        hi = np.full((in_channels, 1, 1), config.high, np.float32)
        return lo, hi
    if config.mode == "none":
        return np.zeros((in_channels, 1, 1), np.float32), np.ones((in_channels, 1, 1), np.float32)
    height, width = np.shape(image)[:2]
    stride = max(1, int(np.ceil(np.sqrt(height * width / MAX_SAMPLES))))
    sample = to_channels_first(np.asarray(image[::stride, ::stride]), in_channels)
    if scale * stride < 1:
        sample = resize_channels(sample, scaled_shape(sample.shape[-2:], scale * stride))
    flat = sample.reshape(sample.shape[0], -1)
    if config.mode == "percentile":
        lo, hi = np.percentile(flat, [config.low, config.high], axis=1)
    else:
        lo, hi = flat.min(axis=1), flat.max(axis=1)
    if config.min_range is not None:
        floor = np.broadcast_to(np.asarray(config.min_range, np.float64), lo.shape)
        hi = np.maximum(hi, lo + floor)
    return lo.astype(np.float32)[:, None, None], hi.astype(np.float32)[:, None, None]


# The floor on the stretched range (``NormalizationConfig.min_range``) that
# training stores: this fraction of the training images' median range.
MIN_RANGE_FRACTION = 0.25


def apply_normalization(
    image: np.ndarray, bounds: tuple[np.ndarray, np.ndarray], in_channels: int
) -> np.ndarray:
    """``(C, Y, X)`` float32 copy of a plane (or a crop of it) scaled by ``bounds``."""
    lo, hi = bounds
    data = to_channels_first(image, in_channels)
    # A constant channel would divide by zero; leave it at 0 instead.
    scale = np.where(hi - lo > 1e-12, hi - lo, 1.0).astype(np.float32)
    return ((data - lo) / scale).astype(np.float32)


def normalize_image(image: np.ndarray, config: NormalizationConfig, in_channels: int) -> np.ndarray:
    """Normalise one plane to the network's input range, channels first.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)`` or ``(Y, X, C)``, any numeric dtype.
    config : NormalizationConfig
        Mode and bounds (see its docstring).
    in_channels : int
        Channels the model expects.

    Returns
    -------
    ndarray
        ``(C, Y, X)`` float32, roughly within [0, 1] (not clipped, so that
        outliers keep their order).
    """
    bounds = normalization_bounds(image, config, in_channels)
    return apply_normalization(image, bounds, in_channels)


# ----------------------------------------------------------------------------- resizing
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
