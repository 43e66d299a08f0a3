"""Lazy labels simulated from exact instance masks.

The benchmarks and the built-in sample need the cheap labels a user would
paint (a rough inner region per object, scribbles where touching objects
meet) for images whose exact instances are known. Everything here is a pure
function of the instance image and a seed, so experiments are reproducible.

Instance images are ``(Y, X)`` integer arrays: 0 = background, every other
value is one object.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

# The four "forward" neighbour offsets; with their mirror images they make the
# 8-neighbourhood, so each neighbouring pixel pair is visited exactly once.
_FORWARD_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _check_instances(instances: np.ndarray) -> np.ndarray:
    instances = np.asarray(instances)
    if instances.ndim != 2:
        raise ValueError(
            f"instances must be a (Y, X) label image, got shape {instances.shape}; "
            "process stacks plane by plane"
        )
    if not (np.issubdtype(instances.dtype, np.integer) or instances.dtype == bool):
        raise ValueError(
            f"instances must hold integer ids, got dtype {instances.dtype}; "
            "convert with .astype(np.int32)"
        )
    if instances.size and instances.min() < 0:
        raise ValueError("instances must not contain negative ids; 0 is background")
    return instances


def _check_range(fraction_range: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in fraction_range)
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"fraction_range={fraction_range} is invalid; use 0 < low <= high <= 1")
    return low, high


def _neighbour_pairs(instances: np.ndarray):
    """Yield ``(a, b, sa, sb)``: values of every 8-neighbour pixel pair and their slices."""
    ny, nx = instances.shape
    for dy, dx in _FORWARD_OFFSETS:
        ya = slice(0, ny - dy)
        yb = slice(dy, ny)
        if dx >= 0:
            xa, xb = slice(0, nx - dx), slice(dx, nx)
        else:
            xa, xb = slice(-dx, nx), slice(0, nx + dx)
        yield instances[ya, xa], instances[yb, xb], (ya, xa), (yb, xb)


def _between_objects(instances: np.ndarray) -> np.ndarray:
    """Pixels that have an 8-neighbour belonging to a *different* object."""
    mask = np.zeros(instances.shape, dtype=bool)
    for a, b, sa, sb in _neighbour_pairs(instances):
        differ = (a != b) & (a != 0) & (b != 0)
        mask[sa] |= differ
        mask[sb] |= differ
    return mask


def depth_map(instances: np.ndarray) -> np.ndarray:
    """Distance of every object pixel to the boundary of its own object.

    Boundaries are background, the image border and the contact lines between
    different objects, so one Euclidean distance transform serves all objects
    at once (instead of one transform per object).

    Parameters
    ----------
    instances : ndarray
        ``(Y, X)`` instance ids, 0 = background.

    Returns
    -------
    ndarray
        ``float64`` ``(Y, X)``; 0 on background.
    """
    instances = _check_instances(instances)
    inside = (instances != 0) & ~_between_objects(instances)
    # Pad with background so that objects cut by the image border shrink away
    # from the border too: a painted inner region never hugs the frame.
    padded = np.pad(inside, 1, constant_values=False)
    depth = ndi.distance_transform_edt(padded)[1:-1, 1:-1]
    # Contact pixels were excluded above; they still belong to their object,
    # as its shallowest layer.
    return np.where(instances != 0, depth, 0.0)


def shrink_instances(
    instances: np.ndarray,
    fraction_range: tuple[float, float] = (0.3, 0.7),
    seed: int | None = 0,
) -> np.ndarray:
    """Replace each object by its inner region, as a lazy annotator would paint it.

    Object ``i`` keeps a random fraction ``f_i ~ U(fraction_range)`` of its
    area: the pixels deepest inside it (largest distance to its boundary,
    see :func:`depth_map`). At least the deepest pixel is always kept, so no
    object disappears.

    Parameters
    ----------
    instances : ndarray
        ``(Y, X)`` integer instance ids, 0 = background.
    fraction_range : (float, float)
        Bounds of the kept area fraction, ``0 < low <= high <= 1``.
    seed : int or None
        Seed of the random fractions (drawn in increasing id order).

    Returns
    -------
    ndarray
        Same shape and dtype, same ids, each object reduced to its inner region.
    """
    instances = _check_instances(instances)
    low, high = _check_range(fraction_range)
    out = np.zeros_like(instances)
    flat = instances.ravel()
    fg = np.flatnonzero(flat)
    if fg.size == 0:
        return out
    ids, inverse, areas = np.unique(flat[fg], return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    fractions = rng.uniform(low, high, size=ids.size)
    keep_counts = np.clip(np.round(fractions * areas).astype(np.int64), 1, areas)

    depth = depth_map(instances).ravel()[fg]
    # Group pixels by object, deepest first; within a group the rank of a
    # pixel is its position minus the group start.
    order = np.lexsort((-depth, inverse))
    starts = np.concatenate(([0], np.cumsum(areas)[:-1]))
    grouped = inverse[order]
    rank = np.arange(order.size) - starts[grouped]
    kept = order[rank < keep_counts[grouped]]
    out.flat[fg[kept]] = flat[fg[kept]]
    return out


def _class_lookup(
    instances: np.ndarray,
    instance_classes: Mapping[int, int] | np.ndarray | None,
) -> np.ndarray:
    """Class value (uint8) for every pixel of ``instances``; 0 on background."""
    if instance_classes is None:
        return (instances != 0).astype(np.uint8)
    if isinstance(instance_classes, Mapping):
        ids = np.unique(instances)
        ids = ids[ids != 0]
        missing = [int(i) for i in ids if int(i) not in instance_classes]
        if missing:
            raise ValueError(
                f"instance_classes has no class for object ids {missing[:10]}; "
                "give a class 1..C for every object"
            )
        lut = np.zeros(int(instances.max()) + 1, dtype=np.int64)
        for i in ids:
            lut[i] = int(instance_classes[int(i)])
        classes = lut[instances]
    else:
        classes = np.asarray(instance_classes)
        if classes.shape != instances.shape:
            raise ValueError(
                f"class image has shape {classes.shape} but instances are {instances.shape}; "
                "they must match pixel for pixel"
            )
        classes = np.where(instances != 0, classes, 0)
    if classes.size and (classes.min() < 0 or classes.max() > 255):
        raise ValueError("classes must lie in 1..255")
    if np.any((instances != 0) & (classes == 0)):
        raise ValueError("every object pixel needs a class 1..C; found class 0 inside an object")
    return classes.astype(np.uint8)


def detection_from_instances(
    instances: np.ndarray,
    instance_classes: Mapping[int, int] | np.ndarray | None = None,
    fraction_range: tuple[float, float] = (0.3, 0.7),
    seed: int | None = 0,
) -> np.ndarray:
    """Painted detection layer: the inner region of each object, valued by its class.

    Parameters
    ----------
    instances : ndarray
        ``(Y, X)`` integer instance ids, 0 = background.
    instance_classes : dict or ndarray or None
        Class ``1..C`` of each object, as ``{id: class}`` or as a class image
        of the same shape (read inside each object). ``None``: every object
        is class 1.
    fraction_range : (float, float)
        Bounds of the kept area fraction, see :func:`shrink_instances`.
    seed : int or None
        Seed of the random fractions.

    Returns
    -------
    ndarray
        ``uint8`` ``(Y, X)``: 0 = not painted, ``1..C`` = class of the inner region.
    """
    instances = _check_instances(instances)
    classes = _class_lookup(instances, instance_classes)
    inner = shrink_instances(instances, fraction_range, seed)
    return np.where(inner != 0, classes, 0).astype(np.uint8)


def touching_pairs(instances: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of objects that touch in the 8-neighbourhood.

    Parameters
    ----------
    instances : ndarray
        ``(Y, X)`` integer instance ids, 0 = background.

    Returns
    -------
    set of (int, int)
        ``(i, j)`` with ``i < j`` for every pair of touching objects.
    """
    instances = _check_instances(instances)
    codes = []
    for a, b, _, _ in _neighbour_pairs(instances):
        differ = (a != b) & (a != 0) & (b != 0)
        if np.any(differ):
            lo = np.minimum(a[differ], b[differ]).astype(np.int64)
            hi = np.maximum(a[differ], b[differ]).astype(np.int64)
            codes.append(np.unique(np.stack([lo, hi], axis=1), axis=0))
    if not codes:
        return set()
    pairs = np.unique(np.concatenate(codes), axis=0)
    return {(int(i), int(j)) for i, j in pairs}


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def interface_scribbles(instances: np.ndarray, distance: int = 2) -> np.ndarray:
    """Scribbles on the interfaces between touching objects.

    A pixel (object or background) is marked when it lies within
    ``distance`` pixels of two different objects that touch each other.
    Objects separated by a gap of background are not marked: their boundary
    is visible and needs no scribble.

    Parameters
    ----------
    instances : ndarray
        ``(Y, X)`` integer instance ids, 0 = background.
    distance : int
        Half-width of the scribble in pixels (>= 1).

    Returns
    -------
    ndarray
        ``uint8`` ``(Y, X)``: 1 = interface, 0 = not interface.
    """
    instances = _check_instances(instances)
    if distance < 1:
        raise ValueError(f"distance must be at least 1 pixel, got {distance}")
    out = np.zeros(instances.shape, dtype=np.uint8)
    pairs = touching_pairs(instances)
    if not pairs:
        return out
    ids = instances.astype(np.int64)
    big = int(ids.max()) + 1
    footprint = _disk(int(distance))
    # Largest and smallest object id within the disk: where they differ, the
    # pixel is near two different objects (background is excluded from the
    # minimum by mapping it above every id).
    high = ndi.maximum_filter(ids, footprint=footprint, mode="constant", cval=0)
    low = ndi.minimum_filter(
        np.where(ids == 0, big, ids), footprint=footprint, mode="constant", cval=big
    )
    near_two = (high != 0) & (low != big) & (high != low)
    touching = np.array([i * big + j for i, j in pairs], dtype=np.int64)
    codes = low[near_two] * big + high[near_two]
    out[near_two] = np.isin(codes, touching)
    return out
