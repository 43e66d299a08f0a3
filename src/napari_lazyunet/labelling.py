"""Training labels from plain arrays: the free functions of the scripting facade.

:func:`make_labels` pairs per-image label arrays (detection, separation,
segmentation, with the strong and sparse flags) into
:class:`~napari_lazyunet.core.labels.ImageLabels`, as
:meth:`napari_lazyunet.api.LazyUNet.fit` does with its per-task arguments;
:func:`refine` grows exact masks from painted inner regions with GrabCut.
Both are re-exported by :mod:`napari_lazyunet.api`, the place to import them from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .core.grabcut import GrabCutResult, refine_with_grabcut
from .core.labels import ImageLabels, LabelError

__all__ = ["ArrayOrList", "make_labels", "refine"]

ArrayOrList = np.ndarray | Sequence[np.ndarray | None] | None


def _as_list(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        return [images]
    return [np.asarray(image) for image in images]


def _per_image(values: ArrayOrList, n: int, what: str) -> list[Any]:
    if values is None:
        return [None] * n
    if isinstance(values, np.ndarray):
        values = [values]
    values = list(values)
    if len(values) != n:
        raise LabelError(f"{n} image(s) but {len(values)} {what} entries; give one per image")
    return values


def make_labels(
    n_images: int,
    detection: ArrayOrList = None,
    separation: ArrayOrList = None,
    segmentation: ArrayOrList = None,
    strong: Sequence[bool] | None = None,
    sparse: Sequence[bool] | None = None,
) -> list[ImageLabels]:
    """Pair per-image label arrays into :class:`ImageLabels`.

    Parameters
    ----------
    n_images : int
        Number of images.
    detection, separation, segmentation : array, list of (array or None), or None
        Per-image label arrays (``None`` where an image lacks that label).
    strong : list of bool, optional
        Which segmentation masks are exact. Default: every image that has one.
    sparse : list of bool, optional
        Images whose unpainted detection pixels are unknown rather than
        background. Default: none.

    Returns
    -------
    list of ImageLabels
    """
    det = _per_image(detection, n_images, "detection")
    sep = _per_image(separation, n_images, "separation")
    seg = _per_image(segmentation, n_images, "segmentation")
    strong_flags = (
        [s is not None for s in seg] if strong is None else _per_image(strong, n_images, "strong")
    )
    sparse_flags = [False] * n_images if sparse is None else _per_image(sparse, n_images, "sparse")
    return [
        ImageLabels(
            detection=None if d is None else np.asarray(d),
            separation=None if s is None else np.asarray(s),
            segmentation=None if g is None else np.asarray(g),
            strong=bool(st),
            detection_complete=not bool(sp),
        )
        for d, s, g, st, sp in zip(det, sep, seg, strong_flags, sparse_flags, strict=True)
    ]


def refine(image: np.ndarray, detection: np.ndarray, **options: Any) -> GrabCutResult:
    """Exact instance and class masks grown from inner regions with GrabCut.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)`` gray (any integer or float dtype) or ``(Y, X, 3)`` RGB.
    detection : ndarray
        Painted inner regions, ``1..C`` = class, 0 = not labelled.
    **options
        Passed to :func:`~napari_lazyunet.core.grabcut.refine_with_grabcut`
        (``iterations``, ``margin``, ``sure_foreground``, ``sure_background``, ...).

    Returns
    -------
    GrabCutResult
        ``.instances`` and ``.classes`` masks (and timings).
    """
    return refine_with_grabcut(np.asarray(image), np.asarray(detection), **options)
