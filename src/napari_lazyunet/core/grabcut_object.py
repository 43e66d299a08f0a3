"""GrabCut of one object, in a crop around its inner region.

:func:`refine_object` seeds GrabCut with the object's inner region (and its
sure-foreground scribbles) as sure foreground, every other object and the
sure background as sure background, a band around the inner region as
probable foreground and the rest of the crop as probable background; the
margin and the band grow with the inner region. Large crops run on a
downsampled, slightly blurred copy (:func:`grabcut_foreground`). The grown
mask keeps only the part connected to the seed, with enclosed holes filled.
The constants below were chosen with ``benchmarks/grabcut.py``; the whole
method is described in :mod:`.grabcut`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from .labels import painted_regions

__all__ = [
    "ObjectInputs",
    "crop_box",
    "grabcut_foreground",
    "keep_seeded",
    "refine_object",
    "union_box",
]

# How far an object may grow beyond its inner region (pixels farther away are
# sure background) and the band that starts as probable foreground, as
# multiples of the inner region's inner radius r (its largest distance to
# its own edge). An inner region covering a third of a disc lies ~0.8 r
# inside the disc's edge; elongated objects grow farther. Chosen on GlaS and
# BBBC039 (benchmarks/grabcut.py): margins of 1.0, 1.25, 2.0 and 2.5 r and
# bands of 0.25 and 0.5 r did worse.
_MARGIN_SCALE = 1.5
_BAND_SCALE = 0.8
# Larger crops run GrabCut on a copy downsampled to about this many pixels (the
# mask is upsampled and smoothed back); beyond it GrabCut costs much more and
# gains little.
_MAX_PIXELS = 110 * 110
# GrabCut stops iterating when fewer than this fraction of the pixels change.
_SETTLED = 1e-3
# Gaussian smoothing (sigma, in pixels of the GrabCut grid) of the mask before
# thresholding it back at full resolution.
_SMOOTH = 1.0
# Downsampled crops (large, textured objects such as glands) are blurred with
# this sigma (pixels of the GrabCut grid) before GrabCut, so that it models
# the colour of regions rather than of single nuclei: +0.02 Dice on GlaS.
# Small objects keep their sharp edges (a blur cost 0.01 Dice on BBBC039).
_PRE_BLUR = 1.0
# Fewer pixels than this on either side and GrabCut cannot fit its colour
# models (5 Gaussians each); the object then keeps its inner region.
_MIN_SAMPLES = 20


def crop_box(sl: tuple[slice, slice], pad: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The box ``sl`` grown by ``pad`` pixels on every side, clipped to ``shape``."""
    return tuple(
        slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(sl, shape, strict=True)
    )  # type: ignore[return-value]


def union_box(a: tuple[slice, slice], b: tuple[slice, slice] | None) -> tuple[slice, slice]:
    """The smallest box holding ``a`` and ``b`` (``a`` when ``b`` is None)."""
    if b is None:
        return a
    return tuple(
        slice(min(s.start, t.start), max(s.stop, t.stop)) for s, t in zip(a, b, strict=True)
    )  # type: ignore[return-value]


def keep_seeded(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Components of ``mask`` that touch ``seed``."""
    components, _ = painted_regions(mask)
    keep = np.unique(components[seed & mask])
    return np.isin(components, keep[keep != 0])


@dataclass(frozen=True)
class ObjectInputs:
    """What every object's GrabCut reads (shared by the threads, never written).

    Attributes
    ----------
    image8 : ndarray
        The image as :func:`~.uint8_image.image_to_uint8` made it, ``(Y, X, 3)``.
    seeds : ndarray
        Object id of every inner-region pixel (0 elsewhere).
    owner : ndarray
        Object id of every sure-foreground scribble pixel (0 elsewhere).
    hard_background : ndarray
        Boolean: pixels that must be background.
    iterations : int
        Most GrabCut iterations per object.
    margin : int
        Least growth in pixels beyond the inner region.
    """

    image8: np.ndarray
    seeds: np.ndarray  # object id of inner-region pixels
    owner: np.ndarray  # object id of sure-foreground scribbles
    hard_background: np.ndarray  # bool
    iterations: int
    margin: int


def refine_object(inputs: ObjectInputs, label: int, box: tuple[slice, slice]):
    """GrabCut of one object; returns ``(label, crop, mask, (seconds, cpu_seconds))``."""
    start, cpu_start = time.perf_counter(), time.thread_time()
    seeds, owner = inputs.seeds, inputs.owner
    own_seed = np.pad(seeds[box] == label, 1)
    radius = float(ndi.distance_transform_edt(own_seed).max())
    reach = max(float(inputs.margin), _MARGIN_SCALE * radius)
    crop = crop_box(box, int(math.ceil(reach)) + 1, seeds.shape)
    seed_c, owner_c = seeds[crop], owner[crop]
    sure_fg = (seed_c == label) | (owner_c == label)
    sure_bg = ((seed_c != 0) | (owner_c != 0) | inputs.hard_background[crop]) & ~sure_fg

    distance = ndi.distance_transform_edt(~sure_fg)
    mask = np.full(seed_c.shape, cv2.GC_PR_BGD, dtype=np.uint8)
    mask[distance <= max(2.0, _BAND_SCALE * radius)] = cv2.GC_PR_FGD
    mask[(distance > reach) | sure_bg] = cv2.GC_BGD
    mask[sure_fg] = cv2.GC_FGD
    grown = grabcut_foreground(inputs.image8[crop], mask, inputs.iterations)
    grown = keep_seeded(grown, sure_fg)
    # Fill enclosed holes (e.g. gland lumina), but never over sure background.
    holes, n_holes = ndi.label(ndi.binary_fill_holes(grown) & ~grown)
    if n_holes:
        blocked = np.unique(holes[sure_bg])
        grown |= (holes > 0) & ~np.isin(holes, blocked[blocked != 0])
    grown &= ~sure_bg
    grown |= sure_fg
    return label, crop, grown, (time.perf_counter() - start, time.thread_time() - cpu_start)


def grabcut_foreground(image: np.ndarray, mask: np.ndarray, iterations: int) -> np.ndarray:
    """Foreground of GrabCut from an initial mask; large crops run at a lower resolution."""
    hard_fg = mask == cv2.GC_FGD
    factor = math.sqrt(mask.size / _MAX_PIXELS)
    if factor > 1.0:
        size = tuple(max(int(round(n / factor)), 1) for n in mask.shape[::-1])
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        work = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    else:
        image, work = np.ascontiguousarray(image), mask.copy()
    n_fg = int(np.count_nonzero(work & 1))  # GC_FGD = 1 and GC_PR_FGD = 3 are odd
    probable = np.count_nonzero(work >= cv2.GC_PR_BGD)
    if n_fg < _MIN_SAMPLES or work.size - n_fg < _MIN_SAMPLES or probable == 0:
        return hard_fg.copy()
    if _PRE_BLUR > 0 and factor > 1.0:
        image = cv2.GaussianBlur(image, (0, 0), _PRE_BLUR)
    bgd_model, fgd_model = np.zeros((1, 65)), np.zeros((1, 65))
    try:
        work, bgd_model, fgd_model = cv2.grabCut(
            image, work, None, bgd_model, fgd_model, 1, cv2.GC_INIT_WITH_MASK
        )
        # One iteration at a time, to stop as soon as the segmentation settles
        # (usually after two or three of them).
        for _ in range(iterations - 1):
            before = work & 1
            work, bgd_model, fgd_model = cv2.grabCut(
                image, work, None, bgd_model, fgd_model, 1, cv2.GC_EVAL
            )
            if np.count_nonzero((work & 1) != before) <= _SETTLED * work.size:
                break
    except cv2.error:  # degenerate colour model (e.g. a flat crop)
        return hard_fg.copy()
    fg = (work & 1).astype(np.float32)
    if factor > 1.0:
        fg = cv2.resize(fg, mask.shape[::-1], interpolation=cv2.INTER_LINEAR)
    if _SMOOTH > 0:
        fg = cv2.GaussianBlur(fg, (0, 0), _SMOOTH * max(factor, 1.0))
    return (fg > 0.5) | hard_fg
