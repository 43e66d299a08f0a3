"""Images as OpenCV's GrabCut needs them: 8 bits, 3 channels, C-contiguous.

:func:`image_to_uint8` is the one conversion: uint8 as it is, bool as 0 / 255,
any other dtype stretched per channel between two percentiles, and the
channels repeated, padded or cut to three.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PERCENTILES", "image_to_uint8"]

#: Percentiles of the per-channel stretch to 8 bits (images that are not uint8).
PERCENTILES = (0.5, 99.5)


def image_to_uint8(image: np.ndarray) -> np.ndarray:
    """Convert an image to the 8-bit, 3-channel array GrabCut needs.

    Normalisation:

    - ``uint8`` values are used as they are;
    - ``bool`` becomes 0 / 255;
    - any other dtype (``uint16``, other integers, floats) is stretched per
      channel so that its 0.5th percentile maps to 0 and its 99.5th
      percentile to 255, clipped, over the whole image (so all objects see
      the same scale). A constant channel becomes 0. NaN counts as the low
      end.

    Channels: ``(Y, X)`` and ``(Y, X, 1)`` are repeated to three channels,
    ``(Y, X, 2)`` gets a third channel of zeros, ``(Y, X, 3)`` is used as it
    is and only the first three channels of ``(Y, X, C > 3)`` are used (e.g.
    RGBA loses its alpha).

    Parameters
    ----------
    image : ndarray
        ``(Y, X)`` or ``(Y, X, C)``, channels last.

    Returns
    -------
    ndarray
        New C-contiguous ``uint8`` array ``(Y, X, 3)``; the input is never modified.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] < 1:
        raise ValueError(
            f"image must be (Y, X) or (Y, X, C) with channels last, got shape {image.shape}"
        )
    if image.dtype == np.uint8:
        out = image
    elif image.dtype == bool:
        out = image.astype(np.uint8) * 255
    elif np.issubdtype(image.dtype, np.number):
        data = image.astype(np.float32)
        out = np.empty(data.shape, dtype=np.uint8)
        for c in range(data.shape[-1]):
            channel = data[..., c]
            finite = channel[np.isfinite(channel)]
            if finite.size == 0:
                out[..., c] = 0
                continue
            lo, hi = np.percentile(finite, PERCENTILES)
            if not hi > lo:
                lo, hi = float(finite.min()), float(finite.max())
            if not hi > lo:
                out[..., c] = 0
                continue
            scaled = (np.nan_to_num(channel, nan=lo) - lo) * (255.0 / (hi - lo))
            out[..., c] = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"image has non-numeric dtype {image.dtype}")
    n = out.shape[-1]
    if n == 1:
        out = np.repeat(out, 3, axis=-1)
    elif n == 2:
        out = np.concatenate([out, np.zeros_like(out[..., :1])], axis=-1)
    elif n > 3:
        out = out[..., :3]
    return np.array(out, dtype=np.uint8, order="C", copy=True)
