"""The ``train`` section of the configuration: optimisation, sampling, calibration.

Import :class:`TrainConfig` from :mod:`napari_lazyunet.config`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .checks import DEVICES, _check

__all__ = ["LR_SCHEDULES", "TrainConfig"]

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and sampling settings (defaults from the paper where it gives them).

    Parameters
    ----------
    steps : int or None
        Optimiser steps (one batch each). None: as many as fit in
        ``time_budget``, from the step time measured on the first steps.
    time_budget : float or None
        Minutes of wall-clock time for one training call, preparation and
        calibration included, used when ``steps`` is None. None: 15 minutes
        on a CPU, 60 on a GPU.
    batch_size : int or None
        Patches per step (paper: 16). None: chosen for the device (8 on a
        CPU, 16 on a GPU).
    patch_size : int or None
        Side of the square training patches (paper: 256). Images smaller
        than a patch are padded by reflection. None: about two and a quarter
        object diameters at the working scale (at least 64), chosen when
        training starts.
    learning_rate : float or None
        Adam learning rate (paper: 2e-4). None: 1e-3 for narrow networks
        (``base_channels`` <= 16, the rate measured for them), else 2e-4.
    lr_schedule : {"constant", "cosine"}
        ``constant`` keeps ``learning_rate`` throughout (the paper).
        ``cosine`` warms up linearly over the first 5 % of the steps (at most
        100), then decays along a half cosine to 1 % of ``learning_rate`` at
        the last step; short runs end better converged and large rates start
        without the early collapses they otherwise risk. The schedule spans
        the ``steps`` of one training call.
    task_weights : tuple of float
        ``alpha_k`` for (detection, segmentation, separation).
    separation_positive_weight : float
        Cross-entropy weight of the interface class; interfaces are thin and
        rare, so they are up-weighted against "not interface".
    strong_fraction : float
        Minimum share of each batch drawn from strong images (when there are
        any), so the few exact masks are seen regularly.
    scale_range : tuple of float
        Random rescale factors (min, max).
    rotate, flip : bool
        Random rotation by any angle / random flips.
    seed : int
        Seeds sampling, augmentation and initialisation (reproducible on CPU).
    device : {"auto", "cpu", "cuda", "mps"} or str
        ``auto`` picks CUDA, then Apple MPS, then CPU. ``cuda:1`` etc. also work.
    validate_every : int
        Evaluate on the validation set every this many steps (0: never).
    checkpoint_every : int
        Write the checkpoint every this many steps (0: only at the end / on stop).
    checkpoint_interval : float
        Minutes: when training has a checkpoint path, the model file is
        also written whenever this much time has passed since it was last
        written, and after every validation, so a killed run loses at most
        this much training (0: only at the end, on stop, and as
        ``checkpoint_every`` and validation ask). Each file also holds
        Adam's state and the sampler's position, so that loading it and
        training on continues the run.
    mixed_precision : bool
        Use float16/bfloat16 autocast on CUDA (ignored on CPU).
    recalibration_batches : int
        At the end of training (and when it is stopped), the BatchNorm
        statistics are re-estimated over this many training batches with the
        final weights, so eval-mode predictions match what the network
        learned (0: keep the running averages of training).
    calibrate_detection : bool
        At the end of training, set ``predict.detection_threshold`` to the
        object probability threshold whose detection best reproduces the
        painted inner regions of ``recalibration_batches`` training batches
        (pixel F1, lowered from 0.5 only), for multi-task models. A detection
        head that ranks inner regions right but stays below 0.5 would
        otherwise give no seeds to split touching objects.
    calibrate_separation : bool
        At the end of training, set ``predict.separation_threshold`` to the
        interface probability threshold with the best pixel F1 on
        ``recalibration_batches`` training batches (multi-task models whose
        labels have interfaces). Without it the threshold stays 0.5, which
        some trainings never reach although they rank interfaces correctly.
    calibrate_segmentation : bool
        At the end of training, lower ``predict.segmentation_threshold``
        where needed so that, on the training images with inner regions but
        no exact mask, the segmented area is as many times the painted inner
        area as the exact masks are on the strong images (multi-task models
        with both kinds of image; see
        :func:`napari_lazyunet.core.calibrate.calibrate_segmentation_threshold`):
        a segmentation head that learned boundaries from a few strong images
        tends to under-segment the others. Without it, or when nothing needs
        lowering, the threshold stays unset (argmax).
    segmentation_from_inner : bool
        Multi-task models: on images without an exact mask, the painted
        inner regions also count as object pixels for the segmentation task
        (the rest of those images stays unlabelled for it), so the
        segmentation head sees every labelled object, not only those of the
        strong images.
    segmentation_far_background : bool
        Multi-task models: on images without an exact mask whose detection
        layer is complete (every object painted), pixels farther from every
        inner region than the strong images' objects reach beyond theirs
        count as background for the segmentation task, and so does every
        pixel of an image whose complete detection layer holds only
        explicit background (an image without objects; see
        :mod:`napari_lazyunet.core.weak_targets`). Together with
        ``segmentation_from_inner`` the segmentation head then learns object
        and background on every labelled image, and only the band around
        each inner region, where the boundary lies, stays unlabelled.
    num_threads : int or None
        Torch CPU threads during training (restored afterwards). None: the
        CPU cores this process may use; 0: leave torch's default.
    invert_intensity : float or None
        Probability that a training patch has its normalised intensities
        inverted (``1 - x``). None: 0.5 when the labels show objects brighter
        than their background on some images and darker on others (mixed
        contrast polarity, see :mod:`napari_lazyunet.core.fingerprint`),
        else 0 (measured on DSB2018 in docs/benchmarks.md).
    baseline_target : {"segmentation", "detection"}
        What a single-task model (``model.multitask=False``) learns from:
        the strong masks, or the weak detection regions. Ignored by the
        multi-task model, which learns from all three.
    """

    steps: int | None = None
    time_budget: float | None = None
    batch_size: int | None = None
    patch_size: int | None = None
    learning_rate: float | None = None
    lr_schedule: str = "constant"
    task_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    separation_positive_weight: float = 5.0
    strong_fraction: float = 0.25
    scale_range: tuple[float, float] = (0.8, 1.25)
    rotate: bool = True
    flip: bool = True
    seed: int = 0
    device: str = "auto"
    validate_every: int = 100
    checkpoint_every: int = 0
    checkpoint_interval: float = 5.0
    mixed_precision: bool = False
    recalibration_batches: int = 20
    calibrate_detection: bool = True
    calibrate_separation: bool = True
    calibrate_segmentation: bool = True
    segmentation_from_inner: bool = True
    segmentation_far_background: bool = True
    num_threads: int | None = None
    invert_intensity: float | None = None
    baseline_target: str = "segmentation"

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_weights", tuple(float(w) for w in self.task_weights))
        object.__setattr__(self, "scale_range", tuple(float(s) for s in self.scale_range))
        _check(self.steps is None or self.steps >= 1, f"train.steps must be >= 1, got {self.steps}")
        _check(
            self.time_budget is None or 0 < self.time_budget <= 7 * 24 * 60,
            f"train.time_budget must be a positive number of minutes, got {self.time_budget}",
        )
        _check(
            self.batch_size is None or 1 <= self.batch_size <= 4096,
            f"train.batch_size must be within [1, 4096], got {self.batch_size}",
        )
        _check(
            self.patch_size is None
            or (16 <= self.patch_size <= 8192 and self.patch_size % 16 == 0),
            f"train.patch_size must be a multiple of 16 within [16, 8192], got {self.patch_size}",
        )
        _check(
            self.learning_rate is None or self.learning_rate > 0,
            "train.learning_rate must be positive",
        )
        _check(
            self.invert_intensity is None or 0 <= self.invert_intensity <= 1,
            f"train.invert_intensity must be within [0, 1], got {self.invert_intensity}",
        )
        _check(
            self.lr_schedule in LR_SCHEDULES,
            f"train.lr_schedule={self.lr_schedule!r}; use one of {LR_SCHEDULES}",
        )
        _check(
            len(self.task_weights) == 3 and all(w >= 0 for w in self.task_weights),
            "train.task_weights needs three non-negative weights (detection, segmentation, "
            "separation)",
        )
        _check(self.separation_positive_weight > 0, "train.separation_positive_weight must be > 0")
        _check(0 <= self.strong_fraction <= 1, "train.strong_fraction must be within [0, 1]")
        _check(
            len(self.scale_range) == 2 and 0 < self.scale_range[0] <= self.scale_range[1],
            f"train.scale_range must be (min, max) with 0 < min <= max, got {self.scale_range}",
        )
        _check(
            self.device.split(":")[0] in DEVICES,
            f"train.device={self.device!r} is unknown; use one of {DEVICES} (or 'cuda:N')",
        )
        _check(self.validate_every >= 0, "train.validate_every must be >= 0")
        _check(self.checkpoint_every >= 0, "train.checkpoint_every must be >= 0")
        _check(
            math.isfinite(self.checkpoint_interval) and self.checkpoint_interval >= 0,
            "train.checkpoint_interval must be a number of minutes >= 0 (0: no periodic "
            f"writes), got {self.checkpoint_interval}",
        )
        _check(
            self.num_threads is None or 0 <= self.num_threads <= 1024,
            f"train.num_threads must be within [0, 1024], got {self.num_threads}",
        )
        _check(self.recalibration_batches >= 0, "train.recalibration_batches must be >= 0")
        _check(
            self.baseline_target in ("segmentation", "detection"),
            f"train.baseline_target={self.baseline_target!r}; use 'segmentation' or 'detection'",
        )
