"""Tiled inference with Gaussian-weighted blending of overlapping tiles.

Only one batch of tiles is on the device at a time, so memory for the
network grows with the tile size, not the image size; the per-pixel
accumulators (probabilities and weights) live in host memory. Stacks
(Z or T planes, any number of leading axes) are predicted plane by plane.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch

from ..config import NormalizationConfig, PredictConfig
from .devices import denormals_flushed
from .inference import inference_network, input_layout
from .instances import instances_from_outputs
from .labels import LabelError, check_image_values
from .normalize import (
    apply_normalization,
    normalization_bounds,
    normalize_image,
    resize_channels,
    resize_plane,
    scaled_shape,
)
from .tiling import gaussian_weight, tile_grid, tile_shape


@dataclass(frozen=True)
class Prediction:
    """What a model predicts for one image or stack.

    Attributes
    ----------
    probabilities : dict of ndarray
        Per task, ``(..., K, Y, X)`` float32 softmax probabilities
        (``K = C + 1`` for detection / segmentation, 2 for separation).
        Empty for planes predicted block by block (larger than
        ``PredictConfig.block_size``), where keeping them would defeat the
        purpose of bounded memory.
    segmentation : ndarray
        ``(..., Y, X)`` uint8 class map (0 background, 1..C).
    detection : ndarray or None
        ``(..., Y, X)`` uint8 class map of the under-segmented inner regions.
    separation : ndarray or None
        ``(..., Y, X)`` uint8, 1 where an interface between touching objects is predicted.
    instances : ndarray
        ``(..., Y, X)`` int32 instance labels (0 background), numbered per plane.
    instance_classes : list of dict
        Per plane, ``{instance id: class}``.
    """

    probabilities: dict[str, np.ndarray]
    segmentation: np.ndarray
    detection: np.ndarray | None
    separation: np.ndarray | None
    instances: np.ndarray
    instance_classes: list[dict[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class PredictEvent:
    """Progress of :func:`iter_predict`; the last event carries the result."""

    plane: int
    n_planes: int
    tiles_done: int
    tiles_total: int
    result: Prediction | None = None

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]."""
        per_plane = self.tiles_done / max(self.tiles_total, 1)
        return min(1.0, (self.plane + per_plane) / max(self.n_planes, 1))


# A gray model's input whose last axis has at most this many entries (and is
# shorter than the axis before it) is an image with channels last, not a stack
# of planes this narrow.
MAX_CHANNELS_LAST = 8


def split_planes(image: np.ndarray, in_channels: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Reshape an image or stack to ``(N, Y, X[, C])`` planes and the leading shape.

    The one check of an input's layout against the model's channels: a gray
    model takes ``(..., Y, X)`` (a trailing channel axis of length 1 is
    dropped) and refuses channels-last colour or multichannel images, which
    would otherwise be read as a stack of narrow planes; a model with ``C``
    channels takes ``(..., Y, X, C)``.
    """
    image = np.asarray(image)
    if image.size == 0:
        raise LabelError(
            f"image of shape {image.shape} is empty; check that the right file is read"
        )
    plane_ndim = 2 if in_channels == 1 else 3
    if in_channels == 1 and image.ndim >= 3:
        channels = image.shape[-1]
        if channels == 1:
            image = image[..., 0]
        elif channels <= MAX_CHANNELS_LAST and channels < image.shape[-2]:
            kind = "RGB(A)" if channels in (3, 4) else f"an image with {channels} channels"
            raise LabelError(
                f"image of shape {image.shape} looks like {kind} (channels last) but the model "
                "expects gray images (in_channels=1); convert it to gray or use a model "
                f"trained on {channels}-channel images"
            )
    if image.ndim < plane_ndim or (in_channels > 1 and image.shape[-1] != in_channels):
        raise LabelError(
            f"image of shape {image.shape} does not fit a model with in_channels={in_channels}: "
            "expected (..., Y, X) for gray or (..., Y, X, C) with channels last"
        )
    leading = image.shape[: image.ndim - plane_ndim]
    return image.reshape((-1, *image.shape[len(leading) :])), leading


def _plane_name(index: int, n_planes: int) -> str:
    return "image" if n_planes == 1 else f"plane {index} of the image"


def iter_plane_probabilities(
    model: torch.nn.Module,
    plane: np.ndarray,
    config: PredictConfig,
    device: torch.device,
) -> Iterator[tuple[int, int, dict[str, np.ndarray] | None]]:
    """Blend tile predictions of one normalised ``(C, Y, X)`` plane.

    Yields ``(tiles_done, tiles_total, None)`` after every batch of tiles and
    finally ``(total, total, probabilities)`` with ``(K, Y, X)`` arrays per task.
    """
    shape = plane.shape[-2:]
    tile = tile_shape(shape, config.tile_size)
    corners = tile_grid(shape, tile, config.overlap)
    weight = gaussian_weight(tile)
    sums: dict[str, np.ndarray] = {}
    weight_sum = np.zeros(shape, np.float32)
    use_amp = device.type == "cuda"
    for start in range(0, len(corners), config.batch_size):
        batch_corners = corners[start : start + config.batch_size]
        batch = np.stack([plane[:, y : y + tile[0], x : x + tile[1]] for y, x in batch_corners])
        with torch.inference_mode(), torch.autocast(device.type, enabled=use_amp):
            inputs = torch.from_numpy(batch).to(device)
            outputs = model(inputs.contiguous(memory_format=input_layout(device)))
        for task, logits in outputs.items():
            probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
            acc = sums.setdefault(task, np.zeros((probs.shape[1], *shape), np.float32))
            for (y, x), p in zip(batch_corners, probs, strict=True):
                acc[:, y : y + tile[0], x : x + tile[1]] += p * weight
        for y, x in batch_corners:
            weight_sum[y : y + tile[0], x : x + tile[1]] += weight
        done = min(start + config.batch_size, len(corners))
        if done < len(corners):
            yield done, len(corners), None
    for acc in sums.values():
        acc /= weight_sum  # in place: a second copy of every map would double the peak memory
    yield len(corners), len(corners), sums


@dataclass
class _PlaneMaps:
    """Label maps of one plane, and its probabilities when they were kept."""

    segmentation: np.ndarray
    detection: np.ndarray | None
    separation: np.ndarray | None
    probabilities: dict[str, np.ndarray] | None = None


def _iter_scaled_probabilities(model, raw, normalise, config, device):
    """:func:`iter_plane_probabilities` of a raw plane (or crop) at ``config.input_scale``.

    The plane is resized before it is normalised, as the training images of a
    model trained on resized images were; the probabilities come back at the
    plane's own size.
    """
    shape = raw.shape[:2]
    scaled = config.input_scale != 1
    if scaled:
        raw = resize_plane(raw, scaled_shape(shape, config.input_scale))
    for done, total, probs in iter_plane_probabilities(model, normalise(raw), config, device):
        if probs is not None and scaled:
            probs = {task: resize_channels(p, shape) for task, p in probs.items()}
        yield done, total, probs


def segmentation_map(probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class map ``(Y, X)`` uint8 from segmentation probabilities ``(K, Y, X)``.

    ``threshold`` None: the most probable class, background included. A
    number: object where the probability of not being background exceeds
    it, labelled with its most probable object class (see
    ``PredictConfig.segmentation_threshold``).
    """
    if threshold is None:
        return probabilities.argmax(0).astype(np.uint8)
    objects = (1 - probabilities[0]) > threshold
    classes = probabilities[1:].argmax(0).astype(np.uint8) + 1
    return np.where(objects, classes, 0).astype(np.uint8)


def _label_maps(
    probs: dict[str, np.ndarray], config: PredictConfig, window=(slice(None), slice(None))
) -> tuple:
    seg = segmentation_map(
        probs["segmentation"][(slice(None), *window)], config.segmentation_threshold
    )
    det = (
        segmentation_map(probs["detection"][(slice(None), *window)], config.detection_threshold)
        if "detection" in probs
        else None
    )
    sep = (
        (probs["separation"][(1, *window)] > config.separation_threshold).astype(np.uint8)
        if "separation" in probs
        else None
    )
    return seg, det, sep


def iter_label_blocks(
    model: torch.nn.Module,
    plane,
    in_channels: int,
    normalization: NormalizationConfig,
    config: PredictConfig,
    device: torch.device,
    name: str = "image",
) -> Iterator[tuple[tuple[slice, slice], np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Label maps of a large plane, block by block.

    Each block of ``config.block_size`` pixels is extended by half a tile of
    context on every side (:func:`block_context`), tiled and blended like a
    small image, and only its own window is kept, so seams between blocks
    see nearly the neighbourhood they have in the whole image. Only one
    block is read from ``plane`` at a time, so a lazily read plane (dask,
    zarr, memory map) is never loaded whole.

    Parameters
    ----------
    model, in_channels, normalization, config, device
        As for :func:`iter_predict` (``config`` with its defaults filled).
    plane : array-like
        ``(Y, X)`` or ``(Y, X, C)``; anything that slices like an ndarray.
    name : str
        How errors name the plane.

    Yields
    ------
    window : tuple of slice
        The block's place in the plane.
    segmentation, detection, separation : ndarray or None
        The block's label maps (see :class:`Prediction`).
    """
    shape = plane.shape[:2]
    bounds = normalization_bounds(plane, normalization, in_channels, config.input_scale)
    # One network tile of context, in the plane's pixels.
    # Half a tile of context, in the plane's pixels: more than the network's
    # reach beyond a pixel at the depths used, and a quarter of the extra
    # work a whole tile costs.
    block, halo = config.block_size, block_context(config)
    for by, bx in block_starts(shape, block):
        y0, x0 = max(0, by - halo), max(0, bx - halo)
        y1, x1 = min(shape[0], by + block + halo), min(shape[1], bx + block + halo)
        crop = np.asarray(plane[y0:y1, x0:x1])
        check_image_values(crop, name)
        *_, (_, _, probs) = _iter_scaled_probabilities(
            model,
            crop,
            lambda part: apply_normalization(part, bounds, in_channels),
            config,
            device,
        )
        height, width = min(block, shape[0] - by), min(block, shape[1] - bx)
        window = (slice(by - y0, by - y0 + height), slice(bx - x0, bx - x0 + width))
        yield (slice(by, by + height), slice(bx, bx + width)), *_label_maps(probs, config, window)


def block_context(config: PredictConfig) -> int:
    """Pixels of context around each block of :func:`iter_label_blocks`: half a tile."""
    return int(np.ceil(config.tile_size / 2 / config.input_scale))


def block_starts(shape: tuple[int, int], block: int) -> list[tuple[int, int]]:
    """Top-left corners of the ``block`` x ``block`` blocks that cover ``shape``, row by row."""
    return [(y, x) for y in range(0, shape[0], block) for x in range(0, shape[1], block)]


def _iter_blocks(model, plane, in_channels, normalization, config, device, index, n_planes):
    """Predict a large plane block by block into arrays; returns its :class:`_PlaneMaps`."""
    shape = plane.shape[:2]
    total = len(block_starts(shape, config.block_size))
    seg = np.zeros(shape, np.uint8)
    det = sep = None
    blocks = iter_label_blocks(
        model, plane, in_channels, normalization, config, device, _plane_name(index, n_planes)
    )
    for done, (target, b_seg, b_det, b_sep) in enumerate(blocks, start=1):
        seg[target] = b_seg
        if b_det is not None:
            det = np.zeros(shape, np.uint8) if det is None else det
            det[target] = b_det
        if b_sep is not None:
            sep = np.zeros(shape, np.uint8) if sep is None else sep
            sep[target] = b_sep
        yield PredictEvent(index, n_planes, done, total)
    return _PlaneMaps(seg, det, sep)


def iter_predict(
    model: torch.nn.Module,
    image: np.ndarray,
    *,
    in_channels: int,
    normalization: NormalizationConfig,
    config: PredictConfig,
    device: torch.device,
) -> Iterator[PredictEvent]:
    """Predict an image or stack, yielding progress; the last event holds the result.

    Parameters
    ----------
    model : torch.nn.Module
        A network from :func:`~napari_lazyunet.core.model.build_model`.
    image : ndarray
        ``(..., Y, X)`` gray or ``(..., Y, X, C)`` channels last. A
        memory-mapped array is only read block by block when its planes are
        larger than ``config.block_size``.
    in_channels : int
        Channels the model expects.
    normalization : NormalizationConfig
        The normalisation the model was trained with.
    config : PredictConfig
        Tile size, overlap, batch size, block size, minimum instance size,
        separation threshold.
    device : torch.device
        Where to run the network (the model is moved there).

    Yields
    ------
    PredictEvent
        Progress; ``result`` is set on the last one only. Closing the
        generator stops after the current batch of tiles.
    """
    config = config.with_defaults()  # a model that was never trained leaves some to training
    planes, leading = split_planes(image, in_channels)
    with denormals_flushed():
        model = inference_network(model, device)
        normalise = partial(normalize_image, config=normalization, in_channels=in_channels)
        results: list[_PlaneMaps] = []
        for index, plane in enumerate(planes):
            if max(plane.shape[:2]) > config.block_size:
                maps = yield from _iter_blocks(
                    model, plane, in_channels, normalization, config, device, index, len(planes)
                )
                results.append(maps)
                continue
            check_image_values(plane, _plane_name(index, len(planes)))
            for done, total, probs in _iter_scaled_probabilities(
                model, plane, normalise, config, device
            ):
                if probs is None:
                    yield PredictEvent(index, len(planes), done, total)
                else:
                    maps = _label_maps(probs, config)
                    results.append(_PlaneMaps(*maps, probabilities=probs))
    result = _assemble(results, leading, config)
    yield PredictEvent(len(planes) - 1, len(planes), 1, 1, result)


def _assemble(
    results: list[_PlaneMaps], leading: tuple[int, ...], config: PredictConfig
) -> Prediction:
    """Instances from per-plane label maps, everything reshaped to the input's stack."""
    instances, classes = [], []
    for maps in results:
        inst, inst_classes = instances_from_outputs(
            maps.segmentation,
            separation=maps.separation if config.separate_touching else None,
            detection=maps.detection,
            min_size=config.min_instance_size,
        )
        instances.append(inst.astype(np.int32, copy=False))
        classes.append(inst_classes)

    def restack(arrays: list[np.ndarray | None]) -> np.ndarray | None:
        if arrays[0] is None:
            return None
        if len(arrays) == 1 and not leading:
            return arrays[0]
        stacked = np.stack(arrays)
        return stacked.reshape(leading + stacked.shape[1:])

    probabilities = {}
    if all(maps.probabilities is not None for maps in results):
        probabilities = {
            task: restack([maps.probabilities[task] for maps in results])
            for task in results[0].probabilities
        }
    return Prediction(
        probabilities=probabilities,
        segmentation=restack([m.segmentation for m in results]),
        detection=restack([m.detection for m in results]),
        separation=restack([m.separation for m in results]),
        instances=restack(instances),
        instance_classes=classes,
    )


def predict(model: torch.nn.Module, image: np.ndarray, **kwargs) -> Prediction:
    """Blocking twin of :func:`iter_predict` (same arguments), returns the :class:`Prediction`."""
    result = None
    for event in iter_predict(model, image, **kwargs):
        result = event.result
    assert result is not None
    return result
