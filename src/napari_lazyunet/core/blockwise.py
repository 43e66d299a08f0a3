"""Prediction of one large plane block by block, into zarr arrays, in bounded memory.

Three passes over the plane, each holding one block (plus its margins) at a time:

1. **Label maps**: every block (at most :data:`MAX_BLOCK` pixels a side),
   with half a tile of context, through the network
   (:func:`~.predict.iter_label_blocks`); its segmentation, detection and
   separation written into their output arrays.
2. **Instances**: every block's core window, extended by a margin of one
   tile on every side, read back from those arrays and turned into instances
   (:func:`~.instances.instances_from_outputs`). Only the core is written,
   with ids made unique by an offset. Each block also records what it saw
   of the one-pixel ring around its core.
3. **Seams**: two ids that meet across a block border are one object when
   both blocks saw that pair of pixels in one object; those ids are merged
   (union-find) and the output renumbered ``1..N`` chunk by chunk.

An object cut by a block border is thus whole in the output whenever the two
blocks agree on it, which they do when it lies well inside both blocks'
windows (the margin is a tile, which covers several objects). Where they
disagree the object stays cut along the border, and the result counts it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import NormalizationConfig, PredictConfig
from .devices import denormals_flushed
from .inference import inference_network
from .instances import instances_from_outputs
from .predict import PredictEvent, block_starts, iter_label_blocks

__all__ = ["BlockwiseResult", "iter_block_instances", "iter_predict_blockwise"]

# Blocks of a plane predicted into zarr have at most this many pixels per
# side (plus their margins), whatever ``PredictConfig.block_size`` says: the
# network's pass holds about 40 bytes per pixel of a block (probabilities,
# weights, the normalised crop) and the instance step about 50 per pixel of
# its window, so 2048 keeps both near 300 MB.
MAX_BLOCK = 2048


@dataclass(frozen=True)
class BlockwiseResult:
    """What :func:`iter_predict_blockwise` wrote, in numbers.

    Attributes
    ----------
    n_instances : int
        Instances in the output, numbered ``1..n_instances``.
    instance_classes : dict of int to int
        Class ``1..C`` of each instance.
    seam_splits : int
        Pairs of pixels across a block border that one block saw in one
        object and the other in two: objects left cut along a border.
    """

    n_instances: int
    instance_classes: dict[int, int] = field(default_factory=dict)
    seam_splits: int = 0


class _UnionFind:
    """Merges of integer ids, with path halving."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        parent = self.parent
        while parent.get(i, i) != i:
            parent[i] = parent.get(parent[i], parent[i])
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _BlockBorder:
    """The ids a block wrote along its core's edges, and what it saw just outside them.

    ``inside[side]`` are the output ids on the core's outermost row / column,
    ``outside[side]`` the ids this block gave the pixels one step further out
    (0 where they belong to no object that reaches into the core).
    """

    inside: dict[str, np.ndarray]
    outside: dict[str, np.ndarray]


def _block_instances(arrays, core, margin, shape, config):
    """Instances of a core window from the label maps of the window extended by ``margin``."""
    (y0, y1), (x0, x1) = (core[0].start, core[0].stop), (core[1].start, core[1].stop)
    wy0, wx0 = max(0, y0 - margin), max(0, x0 - margin)
    wy1, wx1 = min(shape[0], y1 + margin), min(shape[1], x1 + margin)
    window = (slice(wy0, wy1), slice(wx0, wx1))

    def read(task):
        return None if task not in arrays else np.asarray(arrays[task][window])

    separation = read("separation") if config.separate_touching else None
    labels, classes = instances_from_outputs(
        read("segmentation"),
        separation=separation,
        detection=read("detection"),
        min_size=config.min_instance_size,
    )
    return labels, classes, (wy0, wx0)


def _write_core(labels, classes, origin, core, shape, offset, output):
    """Write the core's instances with ids ``offset + 1..``; return the border and id classes."""
    wy0, wx0 = origin
    local = (
        slice(core[0].start - wy0, core[0].stop - wy0),
        slice(core[1].start - wx0, core[1].stop - wx0),
    )
    inner = labels[local]
    present = np.unique(inner)
    present = present[present > 0]
    lookup = np.zeros(int(labels.max()) + 1, np.int64)
    lookup[present] = offset + np.arange(1, len(present) + 1)
    output[core] = lookup[inner].astype(output.dtype)

    ly, lx = local
    inside = {
        "top": lookup[inner[0, :]],
        "bottom": lookup[inner[-1, :]],
        "left": lookup[inner[:, 0]],
        "right": lookup[inner[:, -1]],
    }
    outside = {}
    if core[0].start > 0:
        outside["top"] = lookup[labels[ly.start - 1, lx]]
    if core[0].stop < shape[0]:
        outside["bottom"] = lookup[labels[ly.stop, lx]]
    if core[1].start > 0:
        outside["left"] = lookup[labels[ly, lx.start - 1]]
    if core[1].stop < shape[1]:
        outside["right"] = lookup[labels[ly, lx.stop]]
    id_classes = {int(lookup[i]): classes[int(i)] for i in present}
    return _BlockBorder(inside, outside), id_classes


def _merge_seams(borders: dict[tuple[int, int], _BlockBorder], block: int, merges: _UnionFind):
    """Merge the ids that both blocks of a border saw as one object; count disagreements."""
    splits = 0
    for (by, bx), border in borders.items():
        for side, neighbour_key, facing in (
            ("bottom", (by + block, bx), "top"),
            ("right", (by, bx + block), "left"),
        ):
            neighbour = borders.get(neighbour_key)
            if neighbour is None or side not in border.outside:
                continue
            mine, theirs = border.inside[side], neighbour.inside[facing]
            mine_sees, theirs_see = border.outside[side], neighbour.outside[facing]
            # Each block numbers its own objects: it says "one object" across
            # the border when it gave the pixel beyond its core its own id.
            both = (mine > 0) & (theirs > 0)
            mine_joined, theirs_joined = mine_sees == mine, theirs_see == theirs
            agree = both & mine_joined & theirs_joined
            splits += int(np.count_nonzero(both & (mine_joined != theirs_joined)))
            for a, b in set(zip(mine[agree].tolist(), theirs[agree].tolist(), strict=True)):
                merges.union(a, b)
    return splits


def iter_predict_blockwise(
    model: torch.nn.Module,
    plane,
    outputs: Mapping[str, object],
    *,
    in_channels: int,
    normalization: NormalizationConfig,
    config: PredictConfig,
    device: torch.device,
) -> Iterator[PredictEvent]:
    """Predict one large plane block by block into zarr (or any sliceable) arrays.

    Parameters
    ----------
    model : torch.nn.Module
        A network from :func:`~napari_lazyunet.core.model.build_model`.
    plane : array-like
        ``(Y, X)`` or ``(Y, X, C)``, read one block at a time (a dask or zarr
        array, a memory map).
    outputs : mapping of str to array
        ``(Y, X)`` arrays to write, zero-filled: ``"segmentation"`` (uint8)
        and ``"instances"`` (int32) always, ``"detection"`` and
        ``"separation"`` (uint8) when the model predicts them.
    in_channels, normalization, config, device
        As for :func:`~napari_lazyunet.core.predict.iter_predict`.

    Yields
    ------
    PredictEvent
        Progress over the three passes; the last event's ``result`` is a
        :class:`BlockwiseResult`.
    """
    config = config.with_defaults()
    config = dataclasses.replace(config, block_size=min(config.block_size, MAX_BLOCK))
    shape = tuple(plane.shape[:2])
    block = config.block_size
    starts = block_starts(shape, block)
    # Both passes use blocks of this size (iter_block_instances caps it the same way).
    total = 2 * len(starts) + len(_chunk_windows(outputs["instances"]))
    done = 0
    with denormals_flushed():
        model = inference_network(model, device)
        for window, *maps in iter_label_blocks(
            model, plane, in_channels, normalization, config, device
        ):
            for task, value in zip(("segmentation", "detection", "separation"), maps, strict=True):
                if value is not None and task in outputs:
                    outputs[task][window] = value
            done += 1
            yield PredictEvent(0, 1, done, total)

    yield from iter_block_instances(outputs, config, done, total)


def iter_block_instances(
    outputs: Mapping[str, object],
    config: PredictConfig,
    done: int = 0,
    total: int | None = None,
) -> Iterator[PredictEvent]:
    """Passes 2 and 3: instances block by block from label maps already in ``outputs``.

    Parameters
    ----------
    outputs : mapping of str to array
        ``"segmentation"`` (and ``"detection"``, ``"separation"`` when
        present) filled; ``"instances"`` (int32, zero-filled) is written.
    config : PredictConfig
        ``block_size`` (at most :data:`MAX_BLOCK`), ``tile_size`` and
        ``input_scale`` (the margin is one tile in the plane's pixels), ``min_instance_size``,
        ``separate_touching``; defaults filled.
    done, total : int
        Where the progress of the caller's earlier passes stands.

    Yields
    ------
    PredictEvent
        Progress; the last event's ``result`` is a :class:`BlockwiseResult`.
    """
    instances = outputs["instances"]
    shape = tuple(instances.shape)
    block = min(config.block_size, MAX_BLOCK)
    starts = block_starts(shape, block)
    chunks = _chunk_windows(instances)
    if total is None:
        total = len(starts) + len(chunks)
    margin = int(np.ceil(config.tile_size / config.input_scale))  # a whole tile: objects fit
    borders: dict[tuple[int, int], _BlockBorder] = {}
    classes: dict[int, int] = {}
    offset = 0
    for by, bx in starts:
        core = (slice(by, min(by + block, shape[0])), slice(bx, min(bx + block, shape[1])))
        labels, label_classes, origin = _block_instances(outputs, core, margin, shape, config)
        borders[(by, bx)], id_classes = _write_core(
            labels, label_classes, origin, core, shape, offset, instances
        )
        classes.update(id_classes)
        offset += len(id_classes)
        done += 1
        yield PredictEvent(0, 1, done, total)

    merges = _UnionFind()
    splits = _merge_seams(borders, block, merges)
    roots = np.array([merges.find(i) for i in range(1, offset + 1)], np.int64)
    lookup = np.zeros(offset + 1, np.int64)
    if offset:
        _, new_ids = np.unique(roots, return_inverse=True)
        lookup[1:] = new_ids + 1
    # The class of a merged object: that of its first part (the parts of one
    # object agree on it except where the seam itself is ambiguous).
    merged_classes: dict[int, int] = {}
    for old in range(offset, 0, -1):
        merged_classes[int(lookup[old])] = classes[old]
    for chunk in chunks:
        values = np.asarray(instances[chunk])
        instances[chunk] = lookup[values].astype(values.dtype)
        done += 1
        yield PredictEvent(0, 1, done, total)
    result = BlockwiseResult(len(merged_classes), dict(sorted(merged_classes.items())), splits)
    yield PredictEvent(0, 1, total, total, result)


def _chunk_windows(array) -> list[tuple[slice, slice]]:
    """The windows of the chunks of a 2-D array (one window for an array without chunks)."""
    chunks = getattr(array, "chunks", None) or array.shape
    return [
        (slice(y, min(y + chunks[0], array.shape[0])), slice(x, min(x + chunks[1], array.shape[1])))
        for y in range(0, array.shape[0], chunks[0])
        for x in range(0, array.shape[1], chunks[1])
    ]
