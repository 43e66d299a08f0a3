"""Instances from the three network outputs.

The network predicts a class mask (segmentation), thin interfaces between
touching objects (separation) and shrunken inner regions (detection). None of
them is an instance image on its own; :func:`instances_from_outputs` turns
them into one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential, watershed

from .labels import as_label_array

__all__ = ["instances_from_outputs"]

# 4-connectivity throughout: a one-pixel diagonal interface line must cut a
# region in two, which it does not under 8-connectivity.
_STRUCTURE = ndi.generate_binary_structure(2, 1)


def _as_class_map(array: np.ndarray, name: str, shape: tuple[int, ...] | None) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (Y, X) array, got shape {array.shape}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape} but segmentation is {shape}")
    return as_label_array(array, name).astype(np.intp)


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Copy of ``labels`` with the labels of fewer than ``min_size`` pixels set to 0."""
    if min_size <= 1 or labels.max() == 0:
        return labels.copy()
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    out = labels.copy()
    out[small[labels]] = 0
    return out


# A split between two detection seeds of one region stands without interface
# evidence only where the region narrows between them: where the line they
# share is shorter than this fraction of the smaller part's inscribed
# diameter. Two touching round objects meet along a neck; one large object
# with two seeds would be cut straight across its full width (ratio ~1).
NECK_RATIO = 0.7
# A split is also supported where at least this share of the shared line
# lies within two pixels of predicted interface pixels (an interface the
# threshold only partly recovered still says that two objects touch there).
INTERFACE_SUPPORT = 0.25


def _shared_lines(
    parts: np.ndarray, near_interface: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every 4-neighbour pair of pixels in two different parts.

    Returns the ``(n, 2)`` part labels of each pair (smaller first) and
    whether either pixel lies near an interface.
    """
    pairs, support = [], []
    for first, second in (
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ):
        a, b = parts[first], parts[second]
        touching = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.stack([np.minimum(a, b)[touching], np.maximum(a, b)[touching]], axis=1))
        if near_interface is None:
            support.append(np.zeros(int(touching.sum()), bool))
        else:
            support.append((near_interface[first] | near_interface[second])[touching])
    return np.concatenate(pairs), np.concatenate(support).astype(float)


def _seed_groups(
    core: np.ndarray, seeds: np.ndarray, separation: np.ndarray, neck_ratio: float | None
) -> np.ndarray:
    """Seed labels of one core, with the seeds whose split is unsupported merged.

    ``core`` is a boolean crop of one core, ``seeds`` the seed labels in it
    (``0`` elsewhere), ``separation`` the interface pixels of the crop.
    Returns the seed label image with merged seeds sharing one label.
    """
    ids = np.unique(seeds[seeds > 0])
    if neck_ratio is None or len(ids) < 2:
        return seeds
    # A one-pixel frame of background, so that distances in a core that
    # fills its crop are measured to the core's own edge.
    core, seeds, separation = (np.pad(a, 1) for a in (core, seeds, separation))
    distance = ndi.distance_transform_edt(core)
    parts = watershed(-distance, seeds, mask=core, connectivity=1)
    near_interface = ndi.binary_dilation(separation, iterations=2) if separation.any() else None
    parent = {int(i): int(i) for i in ids}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    inscribed = {int(i): 2 * float(distance[parts == i].max()) for i in ids}
    pairs, support = _shared_lines(parts, near_interface)
    if not len(pairs):
        return seeds[1:-1, 1:-1]
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    length = np.bincount(inverse.ravel(), minlength=len(unique))
    near = np.bincount(inverse.ravel(), weights=support, minlength=len(unique))
    for (i, j), n, n_near in zip(unique, length, near, strict=True):
        neck = n < neck_ratio * min(inscribed[int(i)], inscribed[int(j)])
        interface = n_near >= INTERFACE_SUPPORT * n
        if not (neck or interface):
            parent[find(int(i))] = find(int(j))
    lookup = np.zeros(int(seeds.max()) + 1, np.intp)
    for i in ids:
        lookup[int(i)] = find(int(i))
    return lookup[seeds][1:-1, 1:-1]


def _markers(
    foreground: np.ndarray,
    separation: np.ndarray,
    detection: np.ndarray | None,
    min_size: int,
    neck_ratio: float | None = NECK_RATIO,
) -> np.ndarray:
    """Seed labels for the watershed, see :func:`instances_from_outputs`."""
    cores, _ = ndi.label(foreground & ~separation, structure=_STRUCTURE)
    cores = _drop_small(cores, min_size)
    if detection is None:
        return cores
    seeds, n_seeds = ndi.label((detection > 0) & (cores > 0), structure=_STRUCTURE)
    seeds = _drop_small(seeds, min_size)
    if not seeds.any():
        return cores
    # Each seed lies inside exactly one core (it is a connected subset of the cores);
    # count the seeds per core.
    seed_ids = np.flatnonzero(np.bincount(seeds.ravel(), minlength=n_seeds + 1)[1:]) + 1
    core_of_seed = np.asarray(ndi.maximum(cores, labels=seeds, index=seed_ids), dtype=np.intp)
    seeds_per_core = np.bincount(core_of_seed, minlength=int(cores.max()) + 1)
    split = seeds_per_core >= 2
    split[0] = False
    if neck_ratio is not None and split.any():
        seeds = seeds.copy()
        boxes = ndi.find_objects(cores)
        for core_id in np.flatnonzero(split):
            box = boxes[core_id - 1]
            core = cores[box] == core_id
            local = np.where(core, seeds[box], 0)
            grouped = _seed_groups(core, local, separation[box], neck_ratio)
            seeds[box] = np.where(core, grouped, seeds[box])
    # Cores with two or more seeds are split by their seeds; the others keep the whole
    # core as marker (one seed adds nothing, and none means detection missed it).
    markers = np.where(split[cores], 0, cores)
    in_split_core = split[cores] & (seeds > 0)
    markers[in_split_core] = seeds[in_split_core] + int(cores.max())
    return markers


def instances_from_outputs(
    segmentation: np.ndarray,
    separation: np.ndarray | None = None,
    detection: np.ndarray | None = None,
    min_size: int = 10,
    neck_ratio: float | None = NECK_RATIO,
) -> tuple[np.ndarray, dict[int, int]]:
    """Instance label image and class of each instance from the network outputs.

    The algorithm:

    1. ``foreground = segmentation > 0``.
    2. *Cores*: 4-connected components of ``foreground & ~separation``.
       Cores smaller than ``min_size`` pixels are dropped as markers (their
       pixels are still assigned in step 4), so that crumbs cut off by a
       ragged interface do not become objects.
    3. With ``detection``: *seeds* are the 4-connected components of
       ``(detection > 0)`` inside the cores, again dropping those under
       ``min_size``. A core that contains two or more seeds is replaced by its
       seeds, which splits touching objects whose interface the separation
       output missed; a core with one or no seed stays a single marker, so a
       missed detection never loses an object. Two seeds of one core stay
       apart only where the evidence supports a boundary between them: the
       core narrows there (the line their parts share, after a watershed of
       the core from the seeds, is shorter than ``neck_ratio`` times the
       smaller part's inscribed diameter) or predicted interface pixels lie
       along that line (:data:`INTERFACE_SUPPORT`); otherwise they are one
       marker, so one large object with two detection blobs is not cut
       along a straight line between them.
    4. The markers grow back into the whole foreground, separation pixels
       included, by a watershed on the negated Euclidean distance transform of
       ``foreground & ~separation``: the flooding meets at necks and on the
       interface lines.
    5. Foreground components that contain no marker (all cores dropped)
       become one instance each.
    6. Instances smaller than ``min_size`` pixels are removed (set to 0) and
       the rest relabelled ``1..N`` consecutively.
    7. The class of an instance is the most frequent ``segmentation`` class
       among its pixels (ties go to the lower class).

    Parameters
    ----------
    segmentation : ndarray
        ``(Y, X)`` class map, ``0`` = background, ``1..C`` = classes.
    separation : ndarray or None
        ``(Y, X)`` interface map, non-zero = interface between touching
        objects. ``None``: no interface.
    detection : ndarray or None
        ``(Y, X)`` predicted inner regions, ``0`` = background and ``1..C`` =
        class (only ``> 0`` is used). A painted detection layer must have its
        explicit background value (``C + 1``) mapped to 0 first.
    min_size : int
        Smallest instance (and marker) in pixels; ``0`` or ``1`` keeps all.
    neck_ratio : float or None
        See step 3 (default :data:`NECK_RATIO`). None: every core with
        several seeds is split by its seeds, evidence or not.

    Returns
    -------
    instances : ndarray of int32
        ``(Y, X)`` labels ``0`` (background) and ``1..N``.
    instance_classes : dict of int to int
        Class ``1..C`` of each instance label.

    Notes
    -----
    The inputs are never modified. Every returned instance is contained in
    the foreground, and every foreground pixel belongs to an instance unless
    its instance was smaller than ``min_size``.
    """
    seg = _as_class_map(segmentation, "segmentation", None)
    shape = seg.shape
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size}")
    sep = (
        np.zeros(shape, dtype=bool)
        if separation is None
        else _as_class_map(separation, "separation", shape) > 0
    )
    det = None if detection is None else _as_class_map(detection, "detection", shape)

    foreground = seg > 0
    if not foreground.any():
        return np.zeros(shape, dtype=np.int32), {}

    markers = _markers(foreground, sep, det, min_size, neck_ratio)
    elevation = -ndi.distance_transform_edt(foreground & ~sep)
    labels = watershed(elevation, markers, mask=foreground, connectivity=1)

    # Foreground components without any marker are left at 0 by the watershed.
    rest, n_rest = ndi.label(foreground & (labels == 0), structure=_STRUCTURE)
    if n_rest:
        labels = np.where(rest > 0, rest + int(labels.max()), labels)

    labels = _drop_small(labels, min_size)
    labels, _, _ = relabel_sequential(labels)
    labels = labels.astype(np.int32)

    n = int(labels.max())
    if n == 0:
        return labels, {}
    k = int(seg.max()) + 1
    votes = np.bincount(labels.ravel().astype(np.intp) * k + seg.ravel(), minlength=(n + 1) * k)
    votes = votes.reshape(n + 1, k)[1:, 1:]  # drop background row and column
    classes = np.argmax(votes, axis=1) + 1
    return labels, {i + 1: int(c) for i, c in enumerate(classes)}
