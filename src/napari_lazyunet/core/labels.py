"""The one place that owns the meaning of label values.

What the user paints (napari Labels layers, TIFF files) and what the loss
sees (integer targets with an ignore value) are kept apart here, so that no
other module has to know that 0 means "not labelled".

Painted values
--------------
detection
    0 = not labelled; ``1..C`` = class of the object whose inner region is
    painted; ``C + 1`` = explicit background (useful on sparse images, and
    the way to label an image without any object: an all-0 layer means
    "not labelled").
    On a *complete* image (the default, the paper's choice) every unpainted
    pixel counts as background ("rest"); on a *sparse* image only painted
    pixels count.
separation
    0 = not interface, 1 = interface between two touching objects. An image
    without a separation array (``None``) carries no separation label at all.
segmentation
    Exact class mask: 0 = background, ``1..C`` = class. Counts only on images
    flagged *strong*.

Targets for the loss
--------------------
``int64`` arrays with :data:`IGNORE` (-1) where a pixel does not count,
``0`` for background / not interface and ``1..C`` for the classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

LABEL_SCHEME_VERSION = 1
IGNORE = -1
#: The three tasks, in the order of the network's outputs and of the loss targets;
#: label folders, labels layers and probability outputs use the same order.
TASKS = ("detection", "segmentation", "separation")
#: What a prediction returns per image: the three tasks and the separated instances.
OUTPUTS = (*TASKS, "instances")


class LabelError(ValueError):
    """Labels that cannot be trained on; the message names the input and the fix."""


class WeakLabelsOnlyWarning(UserWarning):
    """No strong image: segmentation will learn from weak labels only."""


@dataclass(frozen=True)
class ImageLabels:
    """The lazy labels of one image.

    Parameters
    ----------
    detection : ndarray or None
        Inner regions, ``(Y, X)`` integers (see module docstring).
    separation : ndarray or None
        Interface scribbles, ``(Y, X)``, 0 / 1.
    segmentation : ndarray or None
        Exact class mask, ``(Y, X)``; used only when ``strong``.
    strong : bool
        The segmentation mask is exact and complete.
    detection_complete : bool
        Unpainted detection pixels are background (True, default) or unknown
        (False, "sparse").
    """

    detection: np.ndarray | None = None
    separation: np.ndarray | None = None
    segmentation: np.ndarray | None = None
    strong: bool = False
    detection_complete: bool = True

    @property
    def has_detection(self) -> bool:
        return self.detection is not None and bool(np.any(self.detection))

    @property
    def has_separation(self) -> bool:
        return self.separation is not None

    @property
    def has_segmentation(self) -> bool:
        return self.strong and self.segmentation is not None


def background_value(n_classes: int) -> int:
    """Painted value of explicit background in the detection layer (``C + 1``)."""
    return n_classes + 1


def spatial_shape(image: np.ndarray, in_channels: int) -> tuple[int, int]:
    """(Y, X) of a single-plane image given its channel count (channels last)."""
    if in_channels == 1:
        if image.ndim == 2:
            return image.shape  # type: ignore[return-value]
        if image.ndim == 3 and image.shape[-1] == 1:
            return image.shape[:2]  # type: ignore[return-value]
    elif image.ndim == 3 and image.shape[-1] == in_channels:
        return image.shape[:2]  # type: ignore[return-value]
    raise LabelError(
        f"image of shape {image.shape} does not match the model's in_channels={in_channels}: "
        "expected (Y, X) for gray or (Y, X, C) with channels last; "
        "set model.in_channels to the number of channels of your images"
    )


def as_label_array(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` as non-negative integer labels: the one check of painted and read labels.

    Booleans and integers pass as they are; floats that hold whole numbers
    (as some readers return) are converted to ``int64``.

    Parameters
    ----------
    array : array-like
        The labels.
    what : str
        How messages name them, e.g. ``"detection labels of img_003"``.

    Returns
    -------
    ndarray
        Integer or boolean labels.

    Raises
    ------
    LabelError
        Fractional or non-numeric values, or negative values.
    """
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0)):
            raise LabelError(
                f"{what} have dtype {array.dtype} with fractional values; labels must be "
                "integers (0 = not labelled): convert with .astype(np.uint8)"
            )
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise LabelError(
            f"{what} contain negative values (min {array.min()}); "
            "use 0 for 'not labelled' and positive values"
        )
    return array


#: Pixels touching by an edge or a corner belong to one painted region.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def painted_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The connected regions of a 2D mask, 8-connected: how one brush stroke is one object.

    Returns
    -------
    labels : ndarray
        ``int32`` region ids ``1..n``, 0 outside the mask.
    n : int
        Number of regions.
    """
    labelled, n = ndi.label(np.asarray(mask, dtype=bool), structure=EIGHT_CONNECTED)
    return labelled.astype(np.int32, copy=False), int(n)


def inner_region_ids(detection: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """One id per painted inner region: the regions of each class value, numbered on.

    Parameters
    ----------
    detection : ndarray
        ``(Y, X)`` detection labels.
    values : iterable of int
        Class values whose regions count (explicit background left out).

    Returns
    -------
    ndarray
        ``int32`` ids ``1..n``, 0 where no region of those values is painted.
    """
    ids = np.zeros(np.shape(detection), dtype=np.int32)
    offset = 0
    for value in values:
        regions, n = painted_regions(np.asarray(detection) == value)
        ids[regions > 0] = regions[regions > 0] + offset
        offset += n
    return ids


def _check_integer_labels(array: np.ndarray, what: str, name: str, max_value: int) -> None:
    array = as_label_array(array, f"{what} labels of {name}")
    if array.size and array.max() > max_value:
        raise LabelError(
            f"{what} labels of {name} contain the value {int(array.max())} but only values "
            f"0..{max_value} are allowed; declare more classes in model.class_names "
            "or repaint the offending pixels"
        )


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_image_values(image: np.ndarray, name: str) -> None:
    """Raise :class:`LabelError` for values the network cannot take.

    Non-numeric dtypes, NaN, infinite values, and float64 values beyond the
    float32 range (the network computes in float32, where they become
    infinite). Used by training (:func:`validate_image`) and prediction alike.
    """
    image = np.asarray(image)
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise LabelError(f"{name} has non-numeric dtype {image.dtype}")
    if not np.issubdtype(image.dtype, np.inexact) or image.size == 0:
        return
    finite = np.isfinite(image)
    if not finite.all():
        n_nan = int(np.count_nonzero(np.isnan(image)))
        n_inf = image.size - int(np.count_nonzero(finite)) - n_nan
        found = " and ".join(
            f"{n} {what} pixel value(s)" for n, what in ((n_nan, "NaN"), (n_inf, "infinite")) if n
        )
        raise LabelError(f"{name} contains {found}; clean or fill them first")
    largest = float(np.abs(image).max())
    if largest > FLOAT32_MAX:
        raise LabelError(
            f"{name} holds values up to {largest:.3g}, beyond the float32 range "
            f"(+/-{FLOAT32_MAX:.3g}) the network computes in; rescale the image first"
        )


def validate_image(image: np.ndarray, name: str, in_channels: int) -> None:
    """Raise :class:`LabelError` for an empty, constant or badly shaped image."""
    image = np.asarray(image)
    if image.size == 0:
        raise LabelError(f"{name} is empty (shape {image.shape}); remove it or load the right file")
    spatial_shape(image, in_channels)
    check_image_values(image, name)
    if image.min() == image.max():
        raise LabelError(
            f"{name} is constant (every pixel is {image.flat[0]}); it carries no information "
            "to learn from: remove it from the training set"
        )


def validate_labels(
    image: np.ndarray, labels: ImageLabels, n_classes: int, in_channels: int, name: str = "image"
) -> None:
    """Check one training pair and raise :class:`LabelError` with a fix in the message.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)`` or ``(Y, X, C)``.
    labels : ImageLabels
        Its labels.
    n_classes : int
        Number of object classes ``C``.
    in_channels : int
        Channels the model expects.
    name : str
        How to call the image in messages (file name, layer name, index).
    """
    validate_image(image, name, in_channels)
    shape = spatial_shape(np.asarray(image), in_channels)
    arrays = {
        "detection": (labels.detection, background_value(n_classes)),
        "separation": (labels.separation, 1),
        "segmentation": (labels.segmentation, n_classes),
    }
    for what, (array, max_value) in arrays.items():
        if array is None:
            continue
        array = np.asarray(array)
        if array.shape != shape:
            raise LabelError(
                f"{what} labels of {name} have shape {array.shape} but the image is {shape}; "
                "labels must cover the image pixel for pixel (same Y, X)"
            )
        _check_integer_labels(array, what, name, max_value)
    if labels.strong and labels.segmentation is None:
        raise LabelError(
            f"{name} is marked strong but has no segmentation mask; "
            "add its exact mask (e.g. refine the inner regions with GrabCut) or unmark it"
        )
    counts = labels.has_detection or labels.has_separation or labels.has_segmentation
    if not counts:
        raise LabelError(
            f"{name} has no label at all (no inner region, no interface scribble, not strong); "
            "paint something (on an image without any object, one stroke of explicit "
            f"background, value {background_value(n_classes)}, in the detection layer says "
            "that the whole image is background) or leave the image out of training"
        )


def validate_training_set(
    images: Sequence[np.ndarray],
    labels: Sequence[ImageLabels],
    n_classes: int,
    in_channels: int,
    names: Sequence[str] | None = None,
    warn_weak_only: bool = True,
) -> None:
    """Validate every pair, then warn when no image is strong (unless ``warn_weak_only=False``)."""
    if len(images) == 0:
        raise LabelError("the training set is empty; give at least one labelled image")
    if len(images) != len(labels):
        raise LabelError(f"{len(images)} images but {len(labels)} label sets; they must pair up")
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    for image, lab, name in zip(images, labels, names, strict=True):
        validate_labels(image, lab, n_classes, in_channels, name)
    if warn_weak_only and not any(lab.has_segmentation for lab in labels):
        warnings.warn(
            "no strong image in the training set: segmentation learns from weak labels only. "
            "Refine a few images with GrabCut and mark them strong for exact boundaries.",
            WeakLabelsOnlyWarning,
            stacklevel=2,
        )


def detection_target(detection: np.ndarray, n_classes: int, complete: bool) -> np.ndarray:
    """Loss target for detection: ``-1`` ignore, ``0`` background, ``1..C`` classes."""
    painted = np.asarray(detection).astype(np.int64)
    target = painted.copy()
    target[painted == background_value(n_classes)] = 0
    if not complete:
        target[painted == 0] = IGNORE
    return target


def separation_target(separation: np.ndarray) -> np.ndarray:
    """Loss target for separation: ``0`` not interface, ``1`` interface."""
    return (np.asarray(separation) > 0).astype(np.int64)


def segmentation_target(segmentation: np.ndarray) -> np.ndarray:
    """Loss target for segmentation: ``0`` background, ``1..C`` classes."""
    return np.asarray(segmentation).astype(np.int64)


def ignored_target(shape: tuple[int, ...]) -> np.ndarray:
    """A target that counts nowhere (the task is unlabelled on this image)."""
    return np.full(shape, IGNORE, dtype=np.int64)


def training_targets(labels: ImageLabels, shape: tuple[int, int], n_classes: int) -> np.ndarray:
    """Stack the three loss targets as ``(3, Y, X)`` int64 in :data:`TASKS` order.

    A task whose label is missing on this image is :data:`IGNORE` everywhere,
    so it contributes nothing to the loss (the paper's per-image indicator).
    """
    det = (
        detection_target(labels.detection, n_classes, labels.detection_complete)
        if labels.has_detection
        else ignored_target(shape)
    )
    seg = (
        segmentation_target(labels.segmentation)
        if labels.has_segmentation
        else ignored_target(shape)
    )
    sep = separation_target(labels.separation) if labels.has_separation else ignored_target(shape)
    return np.stack([det, seg, sep])
