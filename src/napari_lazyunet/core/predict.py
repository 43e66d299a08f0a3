"""Tiled inference with Gaussian-weighted blending of overlapping tiles.

Only one batch of tiles is on the device at a time, so memory for the
network grows with the tile size, not the image size; the per-pixel
accumulators (probabilities and weights) live in host memory. Stacks
(Z or T planes, any number of leading axes) are predicted plane by plane.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import NormalizationConfig, PredictConfig
from .labels import LabelError
from .normalize import normalize_image
from .postprocess import instances_from_outputs
from .tiling import gaussian_weight, tile_grid, tile_shape


@dataclass(frozen=True)
class Prediction:
    """What a model predicts for one image or stack.

    Attributes
    ----------
    probabilities : dict of ndarray
        Per task, ``(..., K, Y, X)`` float32 softmax probabilities
        (``K = C + 1`` for detection / segmentation, 2 for separation).
    segmentation : ndarray
        ``(..., Y, X)`` uint8 class map (0 background, 1..C).
    detection : ndarray or None
        ``(..., Y, X)`` uint8 class map of the under-segmented inner regions.
    separation : ndarray or None
        ``(..., Y, X)`` uint8, 1 where an interface between touching objects is predicted.
    instances : ndarray
        ``(..., Y, X)`` int32 instance labels (0 background).
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


def split_planes(image: np.ndarray, in_channels: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Reshape an image or stack to ``(N, Y, X[, C])`` planes and the leading shape."""
    image = np.asarray(image)
    plane_ndim = 2 if in_channels == 1 else 3
    if in_channels == 1 and image.ndim == 3 and image.shape[-1] in (3, 4) and image.shape[0] > 4:
        raise LabelError(
            f"image of shape {image.shape} looks like RGB(A) but the model expects gray "
            "images (in_channels=1); convert it to gray or use a model trained on RGB"
        )
    if image.ndim < plane_ndim or (in_channels > 1 and image.shape[-1] != in_channels):
        raise LabelError(
            f"image of shape {image.shape} does not fit a model with in_channels={in_channels}: "
            "expected (..., Y, X) for gray or (..., Y, X, C) with channels last"
        )
    leading = image.shape[: image.ndim - plane_ndim]
    return image.reshape((-1,) + image.shape[len(leading):]), leading


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
            outputs = model(torch.from_numpy(batch).to(device))
        for task, logits in outputs.items():
            probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
            acc = sums.setdefault(task, np.zeros((probs.shape[1],) + shape, np.float32))
            for (y, x), p in zip(batch_corners, probs, strict=True):
                acc[:, y : y + tile[0], x : x + tile[1]] += p * weight
        for y, x in batch_corners:
            weight_sum[y : y + tile[0], x : x + tile[1]] += weight
        done = min(start + config.batch_size, len(corners))
        if done < len(corners):
            yield done, len(corners), None
    yield len(corners), len(corners), {task: acc / weight_sum for task, acc in sums.items()}


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
        ``(..., Y, X)`` gray or ``(..., Y, X, C)`` channels last.
    in_channels : int
        Channels the model expects.
    normalization : NormalizationConfig
        The normalisation the model was trained with.
    config : PredictConfig
        Tile size, overlap, batch size, minimum instance size.
    device : torch.device
        Where to run the network (the model is moved there).

    Yields
    ------
    PredictEvent
        Progress; ``result`` is set on the last one only. Closing the
        generator stops after the current batch of tiles.
    """
    planes, leading = split_planes(image, in_channels)
    torch.set_flush_denormal(True)  # see train.py: denormals slow CPU convolutions
    model = model.to(device).eval()
    per_plane: list[dict[str, np.ndarray]] = []
    for index, plane in enumerate(planes):
        normalised = normalize_image(plane, normalization, in_channels)
        for done, total, probs in iter_plane_probabilities(model, normalised, config, device):
            if probs is None:
                yield PredictEvent(index, len(planes), done, total)
            else:
                per_plane.append(probs)
                last_total = total
    result = _assemble(per_plane, leading, config)
    yield PredictEvent(len(planes) - 1, len(planes), last_total, last_total, result)


def _assemble(
    per_plane: list[dict[str, np.ndarray]], leading: tuple[int, ...], config: PredictConfig
) -> Prediction:
    """Label maps and instances from per-plane probabilities, reshaped to the input's stack."""
    maps: dict[str, list[np.ndarray]] = {"segmentation": [], "detection": [], "separation": []}
    instances, classes = [], []
    for probs in per_plane:
        seg = probs["segmentation"].argmax(0).astype(np.uint8)
        det = probs["detection"].argmax(0).astype(np.uint8) if "detection" in probs else None
        sep = (probs["separation"][1] > 0.5).astype(np.uint8) if "separation" in probs else None
        inst, inst_classes = instances_from_outputs(
            seg, separation=sep, detection=det, min_size=config.min_instance_size
        )
        for name, value in (("segmentation", seg), ("detection", det), ("separation", sep)):
            maps[name].append(value)
        instances.append(inst.astype(np.int32))
        classes.append(inst_classes)

    def restack(arrays: list[np.ndarray | None]) -> np.ndarray | None:
        if arrays[0] is None:
            return None
        stacked = np.stack(arrays)
        return stacked.reshape(leading + stacked.shape[1:])

    probabilities = {
        task: restack([p[task] for p in per_plane]) for task in per_plane[0]
    }
    return Prediction(
        probabilities=probabilities,
        segmentation=restack(maps["segmentation"]),
        detection=restack(maps["detection"]),
        separation=restack(maps["separation"]),
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
