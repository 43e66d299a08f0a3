"""Calibration after the last training step: BatchNorm statistics and the thresholds a model keeps.

The separation, detection and segmentation thresholds are measured on the
model's own training labels (never raised above 0.5) and stored in its
configuration, where prediction takes them from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ..config import PredictConfig, TrainConfig
from .labels import (
    IGNORE,
    TASKS,
)
from .predict import iter_plane_probabilities
from .sampling import PatchSampler
from .training_set import PreparedSet


def recalibrate_batchnorm(
    model: torch.nn.Module,
    sampler: PatchSampler,
    device: torch.device,
    batches: int,
    amp: bool = False,
) -> None:
    """Re-estimate the BatchNorm running statistics with the final weights.

    During training the running mean and variance follow the weights with a
    lag (an exponential average over the last few batches, taken while the
    weights were still moving). With a large learning rate the lag can leave
    statistics that no longer match the network: the model is right on a
    training batch and predicts almost nothing in eval mode. Averaging the
    statistics over ``batches`` fresh training batches with the weights
    frozen removes the lag (no gradient, no weight changes).
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or batches <= 0:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the recalibration batches
    model.train()
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for _ in range(batches):
                x, _ = sampler.batch()
                model(torch.from_numpy(x).to(device))
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.eval()


# Only lowered, never raised above the usual 0.5: pixel F1 rewards a thin,
# precise interface line, but a line with gaps cuts no objects apart, so a
# confident head is better left at 0.5 (measured: raising it merged touching
# objects in the demo and lowered AJI on most benchmark runs).
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 11))  # 0.05 ... 0.5


def calibration_sampler(prepared: PreparedSet, config: TrainConfig, step: int) -> PatchSampler:
    """Patches for :func:`calibrate_separation_threshold`, drawn from ``(seed, step)``.

    Independent of the training draws, so that a saved model and its
    training set give the same threshold again (benchmarks rescore saved
    models this way).
    """
    rng = np.random.default_rng([config.seed, step])
    return PatchSampler(prepared.images, prepared.targets, prepared.strong, config, rng)


def calibrate_separation_threshold(
    model: torch.nn.Module,
    sampler: PatchSampler,
    device: torch.device,
    batches: int,
    amp: bool = False,
) -> float | None:
    """Interface probability threshold that best reproduces the separation labels.

    Why: the separation class is rare (well under 1 % of the pixels), and on
    some trainings the network ranks interface pixels correctly but its
    interface probability never reaches 0.5, so a fixed 0.5 would cut no
    touching objects apart. Instead the threshold is the one of
    :data:`THRESHOLD_GRID` (0.05 to 0.5) with the best pixel F1 on
    ``batches`` fresh training patches (eval mode, weights frozen).

    Returns
    -------
    float or None
        The threshold; None when the model has no separation output or the
        patches hold no labelled interface pixel.
    """
    if batches <= 0 or "separation" not in getattr(model, "tasks", ()):
        return None
    probabilities, truth = task_probabilities(model, sampler, device, batches, "separation", amp)
    return best_f1_threshold(probabilities, truth)


#: Share of its labelled inner pixels a detection head must call object at 0.5
#: for its argmax to stay the seed rule (see :func:`calibrate_detection_threshold`).
DETECTION_RESCUE_RECALL = 0.5


def calibrate_detection_threshold(
    model: torch.nn.Module,
    sampler: PatchSampler,
    device: torch.device,
    batches: int,
    amp: bool = False,
) -> float | None:
    """Object probability threshold of the detection head that best reproduces the inner regions.

    Why: the detection head learns the painted inner regions, whose edge
    inside each object is arbitrary, against everything unpainted, so on
    some data sets it ranks inner pixels right while their probability
    stays below 0.5 (measured on the phase-contrast cells of
    docs/benchmarks.md: 13 % of the painted pixels above 0.5 on its own
    training patches). The argmax then finds no seed, and touching objects
    are not split. The threshold is the one of :data:`THRESHOLD_GRID`
    (0.05 to 0.5) with the best pixel F1 against the detection labels of
    ``batches`` fresh training patches; it is only lowered, and only for a
    head that calls fewer than :data:`DETECTION_RESCUE_RECALL` of its
    labelled inner pixels object at 0.5: for a confident head a lower
    threshold only merges seeds (measured on all four data sets of
    docs/benchmarks.md, *Defaults only*: instance F1 lower on the
    phase-contrast cells and the glands, level on the nuclei).

    Returns
    -------
    float or None
        The threshold; None when the model has no detection output, the
        patches hold no labelled inner pixel, or 0.5 is best (the argmax stays).
    """
    if batches <= 0 or "detection" not in getattr(model, "tasks", ()):
        return None
    probabilities, truth = task_probabilities(model, sampler, device, batches, "detection", amp)
    if not truth.any() or np.mean(probabilities[truth] > 0.5) >= DETECTION_RESCUE_RECALL:
        return None  # a confident head: its argmax finds the seeds
    best = best_f1_threshold(probabilities, truth)
    return None if best is None or best >= THRESHOLD_GRID[-1] else best


def task_probabilities(
    model: torch.nn.Module,
    sampler: PatchSampler,
    device: torch.device,
    batches: int,
    task: str,
    amp: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Probability of not being background, and the label, of every labelled pixel of a task.

    ``batches`` patches are drawn from ``sampler``; the model is run in eval
    mode with frozen weights (its mode is restored). For separation the
    probability is that of the interface class.

    Returns
    -------
    probabilities : ndarray
        ``float32``, one value per pixel labelled for ``task``.
    truth : ndarray
        ``bool``, True where that pixel is labelled object (or interface).
    """
    index = TASKS.index(task)
    was_training = model.training
    model.eval()
    probabilities, labels = [], []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for _ in range(batches):
            x, t = sampler.batch()
            logits = model(torch.from_numpy(x).to(device))[task]
            objects = 1 - torch.softmax(logits.float(), dim=1)[:, 0].cpu().numpy()
            valid = t[:, index] != IGNORE
            probabilities.append(objects[valid])
            labels.append(t[:, index][valid] >= 1)
    model.train(was_training)
    return np.concatenate(probabilities), np.concatenate(labels)


# The segmentation threshold is lowered only when, at 0.5, the weak images'
# object area falls short of the strong images' ratio by more than this
# fraction. The strong images' ratio is itself an estimate: with inner
# regions of 30-70 % of each object and about a hundred objects on the
# strong images it varies by a few percent between draws, and a shortfall
# within that is no evidence of under-segmentation.
AREA_SHORTFALL_TOLERANCE = 0.1


# At most this many weak images, at most this many pixels per side of each
# (a central window) and about this many pixels in all are predicted to
# measure their object area, so the calibration stays short next to
# training on large sets and slides (it runs after the last step, without
# progress of its own).
CALIBRATION_IMAGES = 48


CALIBRATION_WINDOW = 1024


CALIBRATION_PIXELS = 4 * 1024 * 1024


def calibrate_segmentation_threshold(
    model: torch.nn.Module,
    prepared: PreparedSet,
    config: PredictConfig,
    device: torch.device,
    time_limit: float | None = None,
) -> float | None:
    """Object probability threshold that segments weak images as fully as strong ones.

    Why: the segmentation head learns object boundaries from the strong
    images only. It fits them, but on the images without an exact mask it
    tends to keep only the part of each object it is sure of, which is too
    little (measured on GlaS with 8 of 85 images strong: pixel precision
    0.89, recall 0.70). The labels hold a yardstick for how much is
    missing: the user's inner regions. On the strong images the exact
    masks cover some ratio ``r`` of the painted inner area (about 2 for
    inner regions of 30-70 % of each object); the same annotator's inner
    regions on the other images should be covered the same ``r`` times.
    The threshold is the one of :data:`THRESHOLD_GRID` (0.05 to 0.5) whose
    object area (pixels with background probability below ``1 - t``) on
    the detection-labelled images without exact mask, predicted as
    :func:`~napari_lazyunet.core.predict.predict` does, comes closest to
    ``r`` times their inner area. It is left at 0.5 (None) while the
    shortfall there is under :data:`AREA_SHORTFALL_TOLERANCE` of ``r``.

    Like the separation threshold it is only ever lowered: object area also
    counts false detections away from any object, so matching areas
    upwards would shrink correct objects to pay for them (measured on a
    BBBC039 model that was not under-segmenting: pixel Dice 0.915 -> 0.866
    with a grid up to 0.95).

    Returns
    -------
    float or None
        The threshold; None when the model has no detection and
        segmentation outputs, when the set lacks a strong image with inner
        regions or a detection-labelled image without exact mask, or when
        0.5 is best (the weak images are segmented as fully as the strong
        ones: the argmax stays).
    """
    measured = segmentation_area_ratios(model, prepared, config, device, time_limit)
    if measured is None:
        return None
    target, ratios = measured
    if ratios[-1] >= (1 - AREA_SHORTFALL_TOLERANCE) * target:
        return None
    # Ties go to the highest threshold, the one that changes the least.
    errors = np.abs(ratios - target)
    best = len(THRESHOLD_GRID) - 1 - int(np.argmin(errors[::-1]))
    return None if best == len(THRESHOLD_GRID) - 1 else float(THRESHOLD_GRID[best])


def segmentation_area_ratios(
    model: torch.nn.Module,
    prepared: PreparedSet,
    config: PredictConfig,
    device: torch.device,
    time_limit: float | None = None,
) -> tuple[float, np.ndarray] | None:
    """Exact-to-inner area ratio of the strong images, object-to-inner of the weak ones.

    The first is counted on the labels of every strong image with inner
    regions. The second is measured on the detection-labelled images
    without exact mask (at most :data:`CALIBRATION_IMAGES` and about
    :data:`CALIBRATION_PIXELS` pixels, evenly spread over the set, each cut
    to its central :data:`CALIBRATION_WINDOW` pixels per side), predicted
    tile by tile with ``config`` in eval mode: the segmented object area at
    each threshold of :data:`THRESHOLD_GRID` over the inner area.

    Returns
    -------
    (float, ndarray) or None
        The strong images' ratio, and the weak images' ratio per threshold;
        None when the model lacks detection or segmentation outputs or the
        set lacks one of the two kinds of image.
    """
    if not {"detection", "segmentation"} <= set(getattr(model, "tasks", ())):
        return None
    detection_index, segmentation_index = TASKS.index("detection"), TASKS.index("segmentation")
    exact = strong_inner = 0
    weak = []
    for index, (target, strong) in enumerate(zip(prepared.targets, prepared.strong, strict=True)):
        detection = target[detection_index]
        if np.all(detection == IGNORE):
            continue  # no inner regions painted on this image
        if strong:
            exact += int(np.count_nonzero(target[segmentation_index] >= 1))
            strong_inner += int(np.count_nonzero(detection >= 1))
        else:
            weak.append(index)
    if strong_inner == 0 or not weak:
        return None
    windows = {i: _central_window(prepared.images[i].shape[-2:], CALIBRATION_WINDOW) for i in weak}
    mean_pixels = np.mean(
        [(w[0].stop - w[0].start) * (w[1].stop - w[1].start) for w in windows.values()]
    )
    count = min(CALIBRATION_IMAGES, max(1, int(CALIBRATION_PIXELS // mean_pixels)))
    if len(weak) > count:
        weak = [weak[i] for i in np.linspace(0, len(weak) - 1, count).astype(int)]
    weak_inner = 0
    weak_area = np.zeros(len(THRESHOLD_GRID), np.int64)
    grid = np.asarray(THRESHOLD_GRID, np.float32)
    was_training = model.training
    model.eval()
    begun = time.perf_counter()
    try:
        for index in weak:
            if time_limit is not None and weak_inner and time.perf_counter() - begun > time_limit:
                break  # measured on the images predicted so far (spread over the set)
            window = windows[index]
            image = prepared.images[index][(slice(None), *window)]
            *_, (_, _, probs) = iter_plane_probabilities(model, image, config, device)
            objects = 1 - probs["segmentation"][0]
            inner = prepared.targets[index][detection_index][window] >= 1
            weak_inner += int(np.count_nonzero(inner))
            weak_area += np.array([np.count_nonzero(objects > t) for t in grid])
    finally:
        model.train(was_training)
    if weak_inner == 0:
        return None
    return exact / strong_inner, weak_area / weak_inner


def _central_window(shape: tuple[int, int], size: int) -> tuple[slice, slice]:
    """Slices of the central ``size x size`` window of ``shape`` (whole axes if smaller)."""
    return tuple(
        slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size)) for n in shape
    )


def best_f1_threshold(
    probabilities: np.ndarray, truth: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID
) -> float | None:
    """The threshold of ``grid`` whose ``probabilities > t`` best matches ``truth`` (pixel F1).

    Ties go to the lowest threshold. None when ``truth`` has no positive.
    """
    probabilities, truth = np.ravel(probabilities), np.ravel(truth).astype(bool)
    n_true = int(np.count_nonzero(truth))
    if n_true == 0:
        return None
    best, best_f1 = None, -1.0
    for threshold in grid:
        predicted = probabilities > threshold
        tp = int(np.count_nonzero(predicted & truth))
        f1 = 2 * tp / (int(np.count_nonzero(predicted)) + n_true)
        if f1 > best_f1:
            best, best_f1 = float(threshold), f1
    return best
