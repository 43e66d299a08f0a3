"""Exact masks from rough inner regions, by GrabCut run object by object.

The paper makes its few exact (strong) labels by growing the painted inner
regions with GrabCut and correcting the result by hand. One GrabCut call on
the whole image, seeded with every inner region at once, fails where the
paper says it does: touching objects merge, and a single colour model cannot
describe every object and every stretch of background. Here each object gets
its own GrabCut in a crop around it:

- its inner region (and the user's sure-foreground scribbles given to it) is
  sure foreground;
- the inner regions of the other objects, pixels painted as explicit
  background and sure-background scribbles are sure background;
- so are pixels farther from the inner region than the margin (at least
  ``margin`` pixels, more for thick inner regions); the crop is the box of
  the inner region grown by that margin;
- a band around the inner region starts as probable foreground and the rest
  of the crop as probable background.

The margin and the band grow with the object, so the crop grows with it;
crops larger than about 110 x 110 pixels run GrabCut on a downsampled copy
(slightly blurred, so that it sees the colour of regions rather than of
single nuclei; the mask is upsampled and smoothed back), so no object costs
much more than that. GrabCut iterates until its mask settles (at most ``iterations``), and
objects are refined in parallel threads (OpenCV releases the GIL). Each grown
mask keeps only the part connected to its seed, with enclosed holes filled.
Where two grown objects claim the same pixel, a watershed of the image
gradient flooded from all seeds decides, so objects never overlap. User
scribbles are finally written over the result, so they are always respected
exactly.

Intensities: OpenCV's GrabCut needs 8-bit, 3-channel images; see
:func:`~napari_lazyunet.core.uint8_image.image_to_uint8` for the conversion.

This module checks the inputs, finds the objects and their scribbles, runs
one GrabCut per object in threads and settles the overlaps; one object's
GrabCut, with the constants it was tuned with, is in :mod:`.grabcut_object`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from .grabcut_object import ObjectInputs, keep_seeded, refine_object, union_box
from .labels import as_label_array, inner_region_ids, painted_regions
from .uint8_image import image_to_uint8

__all__ = ["GrabCutResult", "image_to_uint8", "refine_with_grabcut"]


@dataclass(frozen=True)
class GrabCutResult:
    """Refined masks and how long they took.

    Attributes
    ----------
    instances : ndarray
        ``int32`` ``(Y, X)``: 0 = background, otherwise the id of the object
        (the id of its inner region, see :func:`refine_with_grabcut`).
    classes : ndarray
        ``uint8`` ``(Y, X)`` exact class mask: 0 = background, ``1..C`` = the
        class painted in the object's inner region.
    object_ids : tuple of int
        Ids of the refined objects, in the order of ``timings_per_object``.
    timings_per_object : list of float
        Wall-clock seconds spent on each object (crop, GrabCut, cleanup) in
        its thread.
    total_seconds : float
        Wall-clock seconds of the whole call.
    cpu_timings_per_object : list of float
        CPU seconds of the thread that refined each object: unlike the
        wall-clock timings, they do not grow when other programs compete for
        the CPUs.
    """

    instances: np.ndarray
    classes: np.ndarray
    object_ids: tuple[int, ...]
    timings_per_object: list[float]
    total_seconds: float
    cpu_timings_per_object: list[float] = field(default_factory=list)


def _check_label_image(array, shape, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.shape != shape:
        raise ValueError(
            f"{what} has shape {array.shape} but the image is {shape}; "
            "it must cover the image pixel for pixel"
        )
    return as_label_array(array, what)


def _seed_ids(
    detection: np.ndarray, instances: np.ndarray | None, is_class: np.ndarray
) -> np.ndarray:
    """Object id of every inner-region pixel (0 elsewhere)."""
    if instances is not None:
        return np.where(is_class, instances, 0).astype(np.int64)
    return inner_region_ids(detection, np.unique(detection[is_class])).astype(np.int64)


def _scribble_owner(sure_foreground: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Object id for each sure-foreground pixel.

    Integer scribbles carry the object id; a boolean mask is split into
    connected scribbles, each joining the object whose inner region is nearest.
    """
    if sure_foreground.dtype != bool:
        owner = sure_foreground.astype(np.int64)
        known = np.unique(seeds)
        unknown = np.setdiff1d(np.unique(owner), known)
        if unknown.size:
            raise ValueError(
                f"sure_foreground holds ids {unknown[:10].tolist()} that are no object's "
                "inner region; paint scribbles with the id of the object they belong to, "
                "or pass a boolean mask to attach each scribble to the nearest object"
            )
        return owner
    owner = np.zeros(seeds.shape, dtype=np.int64)
    if not sure_foreground.any() or not seeds.any():
        return owner
    distance, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    nearest = seeds[iy, ix]
    scribbles, _ = painted_regions(sure_foreground)
    for index, sl in enumerate(ndi.find_objects(scribbles), start=1):
        here = scribbles[sl] == index
        closest = np.argmin(np.where(here, distance[sl], np.inf))
        owner[sl][here] = nearest[sl].flat[closest]
    return owner


def _resolve_overlaps(image8, seeds, owner, results, out, count):
    """Give each pixel claimed by several objects to one of them, by watershed."""
    contested = count > 1
    involved, box = [], None
    for label, crop, grown, _ in results:
        if np.any(grown & contested[crop]):
            involved.append((label, crop, grown))
            box = union_box(crop, box)
    if box is None:
        return
    gray = image8[box].astype(np.float32).mean(axis=-1)
    gradient = ndi.gaussian_gradient_magnitude(gray, 1.0)
    markers = np.where(owner[box] != 0, owner[box], seeds[box])
    flooded = watershed(gradient, markers, mask=count[box] > 0)
    for label, crop, grown in involved:
        local = tuple(
            slice(s.start - b.start, s.stop - b.start) for s, b in zip(crop, box, strict=True)
        )
        wins = grown & contested[crop] & (flooded[local] == label)
        out[crop][wins] = label
    # A contested pixel flooded by an object that did not claim it keeps the
    # claim that was written last; then drop pieces cut off from their seed.
    for label, crop, _ in involved:
        mine = out[crop] == label
        seed = (seeds[crop] == label) | (owner[crop] == label)
        out[crop][mine & ~keep_seeded(mine, seed)] = 0


def refine_with_grabcut(
    image: np.ndarray,
    detection: np.ndarray,
    *,
    instances: np.ndarray | None = None,
    sure_foreground: np.ndarray | None = None,
    sure_background: np.ndarray | None = None,
    iterations: int = 5,
    margin: int = 20,
    n_threads: int | None = None,
    only_labels: Iterable[int] | None = None,
    background_value: int | None = None,
) -> GrabCutResult:
    """Grow painted inner regions into exact object masks with per-object GrabCut.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)`` gray or ``(Y, X, C)`` channels last; any numeric dtype
        (converted to 8 bits by :func:`image_to_uint8`: uint8 as is, other
        dtypes by a per-channel 0.5 / 99.5 percentile stretch).
    detection : ndarray
        Painted detection layer ``(Y, X)``: 0 = not labelled, ``1..C`` =
        class of the object whose inner region is painted.
    instances : ndarray, optional
        ``(Y, X)`` object ids of the inner regions. Object ``i`` is made of
        the pixels where ``instances == i`` and ``detection`` holds a class;
        its class is the most frequent one there. Without it, objects are the
        8-connected components of each class value of ``detection``, numbered
        ``1..N`` class by class.
    sure_foreground : ndarray, optional
        User scribbles that must belong to an object. Integer ``(Y, X)``: the
        value is the id of the object (0 = no scribble); boolean: each
        connected scribble joins the object whose inner region is nearest.
        A scribble may lie anywhere; it is always part of its object in the
        result.
    sure_background : ndarray, optional
        ``(Y, X)``, nonzero = must be background. Like pixels painted with
        ``background_value``, it wins over inner regions and over
        ``sure_foreground`` where both are set.
    iterations : int
        Maximum GrabCut iterations per object; it stops earlier once fewer
        than 0.1% of the crop's pixels change.
    margin : int
        How far, in pixels, an object may grow beyond its inner region (and
        its sure-foreground scribbles) at least; for thick inner regions the
        margin grows to 1.5 times the inner region's inner radius. Pixels
        beyond it are sure background.
    n_threads : int, optional
        Threads refining objects in parallel; ``None`` = number of CPUs, 1 =
        no thread pool.
    only_labels : iterable of int, optional
        Refine only the objects with these ids (e.g. the object under the
        cursor). The others still count as sure background, but are absent
        from the result.
    background_value : int, optional
        Value of ``detection`` that marks explicit background (``C + 1`` in
        the label conventions); such pixels are sure background and not a class.

    Returns
    -------
    GrabCutResult
        Non-overlapping ``instances`` and ``classes``, and timings.

    Notes
    -----
    Nothing is modified in place: the inputs are only read (OpenCV writes into
    its own copies of the masks).
    """
    start = time.perf_counter()
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if margin < 1:
        raise ValueError(f"margin must be at least 1 pixel, got {margin}")
    if n_threads is not None and n_threads < 1:
        raise ValueError(f"n_threads must be at least 1 (or None), got {n_threads}")
    image8 = image_to_uint8(image)
    shape = image8.shape[:2]
    detection = _check_label_image(detection, shape, "detection")
    is_class = detection != 0
    hard_background = np.zeros(shape, dtype=bool)
    if background_value is not None:
        is_background = detection == background_value
        is_class &= ~is_background
        hard_background |= is_background
    if instances is not None:
        instances = _check_label_image(instances, shape, "instances")
    if is_class.any() and detection[is_class].max() > 255:
        raise ValueError("detection classes must lie in 1..255")
    seeds = _seed_ids(detection, instances, is_class)
    if sure_background is not None:
        hard_background |= _check_label_image(sure_background, shape, "sure_background") != 0
    if sure_foreground is not None:
        fg = _check_label_image(sure_foreground, shape, "sure_foreground")
        owner = _scribble_owner(fg, seeds)
        owner[hard_background] = 0
    else:
        owner = np.zeros(shape, dtype=np.int64)
    seeds[hard_background] = 0

    # Class of every object: the most frequent class painted in its inner region.
    labels = np.unique(seeds)
    labels = labels[labels != 0]
    if only_labels is not None:
        labels = np.intersect1d(labels, np.fromiter(only_labels, dtype=np.int64))
    seed_boxes = ndi.find_objects(seeds)
    scribble_boxes = ndi.find_objects(owner)
    tasks = []
    for k in labels:
        box = seed_boxes[k - 1]
        if k <= len(scribble_boxes) and scribble_boxes[k - 1] is not None:
            box = union_box(box, scribble_boxes[k - 1])
        tasks.append((int(k), box))
    inputs = ObjectInputs(image8, seeds, owner, hard_background, int(iterations), int(margin))
    threads = min(n_threads or os.cpu_count() or 1, max(len(tasks), 1))
    if threads == 1:
        results = [refine_object(inputs, k, box) for k, box in tasks]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(lambda task: refine_object(inputs, *task), tasks))

    out = np.zeros(shape, dtype=np.int32)
    count = np.zeros(shape, dtype=np.uint8)
    for label, crop, grown, _ in results:
        out[crop][grown] = label
        count[crop] += grown
    if np.any(count > 1):
        _resolve_overlaps(image8, seeds, owner, results, out, count)
    # Scribbles are the user's last word.
    selected = np.isin(owner, labels)
    out[selected] = owner[selected]
    out[hard_background] = 0

    classes = np.zeros(shape, dtype=np.uint8)
    for label, crop, _, _ in results:
        painted = detection[crop][seeds[crop] == label]
        value = np.bincount(painted.astype(np.int64)).argmax() if painted.size else 1
        classes[crop][out[crop] == label] = value
    return GrabCutResult(
        instances=out,
        classes=classes,
        object_ids=tuple(label for label, _, _, _ in results),
        timings_per_object=[seconds for _, _, _, (seconds, _) in results],
        total_seconds=time.perf_counter() - start,
        cpu_timings_per_object=[cpu for _, _, _, (_, cpu) in results],
    )
