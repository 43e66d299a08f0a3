"""How far objects reach beyond their painted inner regions.

An inner region is painted inside its object, so the object's boundary lies
somewhere around it. The strong images say how far: there every object has
both an inner region and an exact mask. Measured in units of each inner
region's own size (the radius of the disc of its area), the exact masks of
the strong images extend at most some ``reach`` beyond their inner regions.
On an image whose every object has an inner region (a *complete* detection
layer), a pixel farther than ``reach`` from every inner region is then
background with the same confidence, although nobody drew its boundary.
A complete detection layer with no inner region at all (explicit background
painted on an image without objects) says that its whole image is
background.

:func:`reach_ratios` measures the normalised distances on a strong image,
:func:`within_reach` marks what may still be object on another one. Both
work on the loss targets of :mod:`.labels` (``>= 1`` = object class,
``0`` = background, :data:`~.labels.IGNORE` = unlabelled) and return new
arrays.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from .labels import IGNORE, TASKS, painted_regions


class ReachUnknownWarning(UserWarning):
    """No strong image has inner regions, so the reach of objects cannot be measured."""


def inner_components(detection: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected inner regions of a detection target (every pixel ``>= 1``)."""
    return painted_regions(detection >= 1)


def normalised_distance(detection: np.ndarray, limit: float) -> np.ndarray:
    """Distance of every pixel to the inner regions, in units of their size.

    For a pixel ``p`` this is ``min_c d(p, c) / r_c`` over the inner regions
    ``c``, with ``r_c = sqrt(area_c / pi)``; 0 inside an inner region. Each
    region is measured in a window reaching ``limit * r_c`` (plus two
    pixels) around it, so values above ``limit`` are reported as ``inf``.

    Parameters
    ----------
    detection : ndarray
        ``(Y, X)`` detection target.
    limit : float
        Largest normalised distance of interest (> 0).

    Returns
    -------
    ndarray
        ``float32``, same shape.
    """
    labelled, count = inner_components(detection)
    distance = np.full(detection.shape, np.inf, np.float32)
    if count == 0:
        return distance
    height, width = detection.shape
    for index, region in enumerate(ndimage.find_objects(labelled), start=1):
        if region is None:
            continue
        mask = labelled[region] == index
        radius = float(np.sqrt(np.count_nonzero(mask) / np.pi))
        margin = int(np.ceil(limit * radius)) + 2
        ys = slice(max(0, region[0].start - margin), min(height, region[0].stop + margin))
        xs = slice(max(0, region[1].start - margin), min(width, region[1].stop + margin))
        outside = (labelled[ys, xs] != index).astype(np.uint8)
        # Exact Euclidean distance to the nearest pixel of this region.
        window = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        np.minimum(distance[ys, xs], window / radius, out=distance[ys, xs])
    return distance


# Normalised distances of strong-image object pixels are measured up to
# this many inner radii; a pixel farther from every inner region than that
# belongs to an object nobody painted, which says nothing about reach.
MEASURE_LIMIT = 6.0


def reach_ratios(detection: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """Normalised distances of a strong image's object pixels to its inner regions.

    Parameters
    ----------
    detection, segmentation : ndarray
        ``(Y, X)`` detection and (exact) segmentation targets of one image.

    Returns
    -------
    ndarray
        One ``float32`` value per object pixel of ``segmentation`` within
        :data:`MEASURE_LIMIT` inner radii of an inner region (empty when
        the image has no inner region or no object).
    """
    objects = segmentation >= 1
    if not objects.any() or not np.any(detection >= 1):
        return np.zeros(0, np.float32)
    values = normalised_distance(detection, MEASURE_LIMIT)[objects]
    return values[np.isfinite(values)]


def object_reach(ratios: np.ndarray, quantile: float = 0.99, margin: float = 1.5) -> float | None:
    """The reach: ``margin`` times a high ``quantile`` of the strong images' ratios.

    The quantile keeps a few stray pixels (an object painted twice as
    small as the rest) from setting the reach alone; the margin allows for
    objects on other images reaching a little farther than those measured.
    None without any measured pixel.
    """
    ratios = np.asarray(ratios, np.float32)
    if ratios.size == 0:
        return None
    return float(margin * np.quantile(ratios, quantile))


def within_reach(detection: np.ndarray, reach: float) -> np.ndarray:
    """Pixels that may belong to a painted object: within ``reach`` inner radii.

    Everything else on an image with a complete detection layer is
    background beyond reasonable doubt.
    """
    return normalised_distance(detection, reach) <= reach


def far_background_targets(
    targets: list[np.ndarray], strong: list[bool]
) -> tuple[list[np.ndarray], float | None]:
    """Segmentation targets with the far background of weak images labelled.

    Parameters
    ----------
    targets : list of ndarray
        ``(3, Y, X)`` loss targets (:func:`.labels.training_targets`).
    strong : list of bool
        Which images carry an exact mask.

    Returns
    -------
    targets : list of ndarray
        New arrays: on every image without exact mask whose detection layer
        is complete (no unlabelled pixel) and holds inner regions, the
        segmentation pixels beyond the reach are background (0); pixels
        within it keep their label (unlabelled, or what another rule gave).
        A complete detection layer without any inner region (only explicit
        background painted: an image with no object) makes every
        segmentation pixel of its image background, whatever the reach.
        Other images are returned as given.
    reach : float or None
        The reach measured on the strong images; None when no strong image
        has inner regions, and then only the images without object are
        labelled.
    """
    detection_index, segmentation_index = TASKS.index("detection"), TASKS.index("segmentation")
    measured = [
        reach_ratios(target[detection_index], target[segmentation_index])
        for target, is_strong in zip(targets, strong, strict=True)
        if is_strong
    ]
    reach = object_reach(np.concatenate(measured)) if measured else None
    out = []
    for target, is_strong in zip(targets, strong, strict=True):
        detection = target[detection_index]
        complete = not np.any(detection == IGNORE)
        has_objects = bool(np.any(detection >= 1))
        # An image with objects needs the reach; one whose annotator found no
        # object at all is background everywhere, however far objects reach.
        if is_strong or not complete or (has_objects and reach is None):
            out.append(target)
            continue
        target = target.copy()
        segmentation = target[segmentation_index]
        far = segmentation == IGNORE
        if has_objects:
            far &= ~within_reach(detection, reach)
        segmentation[far] = 0
        out.append(target)
    return out, reach
