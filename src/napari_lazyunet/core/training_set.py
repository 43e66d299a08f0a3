"""A labelled set made ready for training: validated, scaled, normalised, with loss targets.

:func:`prepare_set` runs once per training (and once for the validation
set); :func:`evaluate_set` scores a prepared set during training.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..config import LazyUNetConfig
from ..evaluation.metrics import dice_per_class
from .labels import (
    IGNORE,
    TASKS,
    ImageLabels,
    spatial_shape,
    training_targets,
    validate_training_set,
)
from .normalize import normalize_image, resize_plane, scaled_shape
from .predict import iter_plane_probabilities, segmentation_map
from .weak_targets import ReachUnknownWarning, far_background_targets


@dataclass(frozen=True)
class PreparedSet:
    """Normalised images and loss targets, ready for the sampler."""

    images: list[np.ndarray]
    targets: list[np.ndarray]
    strong: list[bool]


def prepare_set(
    images: Sequence[np.ndarray],
    labels: Sequence[ImageLabels],
    config: LazyUNetConfig,
    names: Sequence[str] | None = None,
    warn_weak_only: bool = True,
) -> PreparedSet:
    """Validate a labelled set and turn it into normalised images and targets.

    For a single-task model whose ``baseline_target`` is ``"detection"``, the
    detection regions take the place of the segmentation target (the weak
    labels baseline). With ``config.predict.input_scale`` other than 1 the
    images and targets are resized by it first (:func:`scale_training_pair`),
    so the model learns at the scale it will predict at. The weak-image
    segmentation labels of ``config.train`` (``segmentation_from_inner``,
    ``segmentation_far_background``) are added last. ``warn_weak_only``
    warns about the mix of labels of a training set: no strong image
    (``WeakLabelsOnlyWarning``), or, with the far background asked for, no
    strong image with inner regions to measure it on
    (``ReachUnknownWarning``); off for validation sets.
    """
    model_cfg = config.model
    validate_training_set(
        images, labels, model_cfg.n_classes, model_cfg.in_channels, names, warn_weak_only
    )
    prepared_images, targets = [], []
    input_scale = config.predict.with_defaults().input_scale
    for image, lab in zip(images, labels, strict=True):
        shape = spatial_shape(np.asarray(image), model_cfg.in_channels)
        target = training_targets(lab, shape, model_cfg.n_classes)
        if not model_cfg.multitask and config.train.baseline_target == "detection":
            target = target[[0, 0, 2]]
        if input_scale != 1:
            image, target = scale_training_pair(image, target, input_scale)
        prepared_images.append(normalize_image(image, config.normalization, model_cfg.in_channels))
        targets.append(target)
    strong = [bool(np.any(t[1] != IGNORE)) for t in targets]
    if model_cfg.multitask and config.train.segmentation_from_inner:
        for target, is_strong in zip(targets, strong, strict=True):
            if not is_strong:
                # An inner region lies inside its object: a sure positive for
                # segmentation too. Everything else stays unknown.
                inner = target[0] >= 1
                target[1][inner] = target[0][inner]
    if model_cfg.multitask and config.train.segmentation_far_background:
        targets, reach = far_background_targets(targets, strong)
        if reach is None and any(strong) and warn_weak_only:
            also = (
                " Inner regions alone then teach segmentation on those images, which "
                "tends to make objects too large when few images are strong."
                if config.train.segmentation_from_inner
                else ""
            )
            warnings.warn(
                "no strong image has inner regions painted, so how far objects reach beyond "
                "them cannot be measured and no far background is labelled on the other "
                "images with objects; paint the inner regions of the strong images too." + also,
                ReachUnknownWarning,
                stacklevel=2,
            )
    return PreparedSet(prepared_images, targets, strong)


def scale_training_pair(
    image: np.ndarray, target: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resize a training image and its ``(3, Y, X)`` targets by ``scale``.

    The image is resized as prediction resizes it (:func:`.resize.resize_plane`).
    Detection and segmentation targets take the nearest pixel's value; an
    interface pixel of the separation target survives when any pixel it
    merges is one, so thin scribbles are not lost when shrinking (pixels
    where the separation task is unlabelled stay unlabelled).
    """
    shape = scaled_shape(np.shape(image)[:2], scale)
    size = (shape[1], shape[0])
    nearest = [
        cv2.resize(task.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)
        for task in target
    ]
    separation = nearest[2]
    interface = cv2.resize((target[2] == 1).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    separation[(interface > 0) & (separation != IGNORE)] = 1
    return resize_plane(image, shape), np.stack(nearest).astype(np.int64)


def evaluate_set(
    model: torch.nn.Module, prepared: PreparedSet, config: LazyUNetConfig, device: torch.device
) -> dict[str, float]:
    """Validation scores: mean per-pixel loss over labelled pixels, and segmentation Dice.

    Images are predicted with the same tiled inference as :mod:`.predict`, so
    validation of large images needs no more memory than prediction.
    """
    was_training = model.training
    model.eval()
    nll_sum, nll_count, dices = 0.0, 0, []
    for image, target in zip(prepared.images, prepared.targets, strict=True):
        *_, (_, _, probs) = iter_plane_probabilities(model, image, config.predict, device)
        for index, task in enumerate(TASKS):
            if task not in probs:
                continue
            valid = target[index] != IGNORE
            if not valid.any():
                continue
            chosen = np.take_along_axis(probs[task], np.clip(target[index], 0, None)[None], 0)[0]
            nll_sum += float(-np.log(np.clip(chosen[valid], 1e-7, 1.0)).sum())
            nll_count += int(valid.sum())
        if np.any(target[1] != IGNORE):
            per_class = dice_per_class(
                segmentation_map(probs["segmentation"], config.predict.segmentation_threshold),
                target[1],
                config.model.n_classes,
            )
            dices.append(float(np.mean(list(per_class.values()))))
    model.train(was_training)
    scores = {"val_loss": nll_sum / max(nll_count, 1)}
    if dices:
        scores["val_dice"] = float(np.mean(dices))
    return scores


def split_validation(
    strong: Sequence[bool], fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Split image indices into training and validation sets.

    Parameters
    ----------
    strong : sequence of bool
        Per labelled image, whether it has an exact (strong) segmentation.
    fraction : float
        Share of images held out for validation: rounded, at least one image
        when ``fraction > 0`` and there are two images or more, and at least
        one image always stays for training.
    seed : int
        Seed of the random choice.

    Returns
    -------
    train, validation : list of int
        Sorted indices. When there are strong images, at least one of them
        stays in the training set (the few exact masks are what the
        segmentation task learns boundaries from).

    Examples
    --------
    >>> split_validation([False] * 5, 0.4)
    ([0, 1, 3], [2, 4])
    >>> split_validation([True, False, False], 0.34)
    ([0, 1], [2])
    >>> split_validation([True], 0.5)
    ([0], [])
    >>> split_validation([False] * 5, 0.05)
    ([0, 1, 3, 4], [2])
    """
    n_images = len(strong)
    n_val = int(round(fraction * n_images))
    if fraction > 0 and n_images >= 2:
        n_val = max(n_val, 1)  # a share was asked for: hold out something
    n_val = min(n_val, max(n_images - 1, 0))
    order = [int(k) for k in np.random.default_rng(seed).permutation(n_images)]
    strong_ids = [k for k in order if strong[k]]
    if strong_ids:
        # Keep the first strong image (in random order) for training.
        order.remove(strong_ids[0])
        order.append(strong_ids[0])
    return sorted(order[n_val:]), sorted(order[:n_val])
