"""Frozen, validated configuration objects with a JSON round-trip.

Every tunable of the engine lives here, so that a model file carries the exact
settings it was trained with and a widget only has to build one of these.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCHEDULES = ("constant", "cosine")
NORMALIZATION_MODES = ("percentile", "minmax", "fixed", "none")


# Fields that older versions had and this one dropped: model files that
# carry them still load (the values only mattered while training).
# ``intensity_jitter`` (a random gain and offset per patch) lowered GlaS
# pixel Dice in the benchmarks (docs/benchmarks-history.md) and was never on by default.
RETIRED_KEYS = {"train": ("intensity_jitter",)}


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field and the fix."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class NormalizationConfig:
    """How raw intensities become network input (saved with the model).

    Parameters
    ----------
    mode : {"percentile", "minmax", "fixed", "none"}
        ``percentile``: per image and channel, map the ``low`` / ``high``
        percentiles to 0 / 1 (robust to hot pixels, the default).
        ``minmax``: per image and channel, map min / max to 0 / 1.
        ``fixed``: map ``low`` / ``high`` given as intensities to 0 / 1 for
        every image (use when absolute intensity carries meaning).
        ``none``: use values as they are.
    low, high : float
        Percentiles (``percentile``) or intensities (``fixed``).
    min_range : tuple of float or None
        ``percentile`` and ``minmax``: the smallest intensity range per
        channel that an image is stretched over. Training sets it to a
        fraction of the training images' typical range
        (:data:`napari_lazyunet.core.normalize.MIN_RANGE_FRACTION`), so an
        image without objects, whose percentiles span only its noise, is
        not stretched into a bright image that looks full of objects.
        None: no floor.
    """

    mode: str = "percentile"
    low: float = 1.0
    high: float = 99.8
    min_range: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check(
            self.mode in NORMALIZATION_MODES,
            f"normalization.mode={self.mode!r} is unknown; use one of {NORMALIZATION_MODES}",
        )
        _check(
            self.high > self.low,
            f"normalization.high ({self.high}) must be greater than normalization.low ({self.low})",
        )
        if self.mode == "percentile":
            _check(
                0 <= self.low < self.high <= 100,
                "percentile normalization needs 0 <= low < high <= 100",
            )
        if self.min_range is not None:
            object.__setattr__(self, "min_range", tuple(float(r) for r in self.min_range))
            _check(
                len(self.min_range) >= 1 and all(r >= 0 for r in self.min_range),
                f"normalization.min_range must be non-negative values, got {self.min_range}",
            )


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the network.

    Parameters
    ----------
    in_channels : int
        Image channels: 1 for gray, 3 for RGB, more for multichannel.
    class_names : tuple of str
        Names of the object classes (``C = len(class_names)``). Label value
        ``k`` in the detection and segmentation layers means
        ``class_names[k - 1]``.
    base_channels : int or None
        Width of the first level; doubles at every level down (the paper
        uses 64). None: chosen for the device when training starts
        (:mod:`napari_lazyunet.core.autoconfig`).
    depth : int or None
        Number of 2x2 poolings in the contracting path (the paper uses 4).
        None: the smallest depth whose receptive field covers the objects
        with their surroundings, chosen when training starts.
    multitask : bool
        True: the paper's multi-task U-Net (detection, segmentation,
        separation). False: a plain single-task U-Net of the same encoder
        that only predicts segmentation (the baseline).
    """

    in_channels: int = 1
    class_names: tuple[str, ...] = ("class 1", "class 2")
    base_channels: int | None = None
    depth: int | None = None
    multitask: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        _check(self.in_channels >= 1, f"model.in_channels must be >= 1, got {self.in_channels}")
        _check(len(self.class_names) >= 1, "model.class_names needs at least one class")
        _check(
            len(set(self.class_names)) == len(self.class_names),
            f"model.class_names must be distinct, got {self.class_names}",
        )
        _check(
            self.base_channels is None or 2 <= self.base_channels <= 512,
            f"model.base_channels must be within [2, 512] (or None: auto), "
            f"got {self.base_channels}",
        )
        _check(
            self.depth is None or 1 <= self.depth <= 6,
            f"model.depth must be between 1 and 6 (or None: auto), got {self.depth}",
        )

    @property
    def n_classes(self) -> int:
        """Number of object classes ``C`` (background excluded)."""
        return len(self.class_names)

    @property
    def is_resolved(self) -> bool:
        """True when the architecture is fixed (no field left to auto-configuration)."""
        return self.base_channels is not None and self.depth is not None


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


@dataclass(frozen=True)
class PredictConfig:
    """Tiled inference settings.

    Parameters
    ----------
    tile_size : int
        Side of the square tiles fed to the network; memory use scales with
        it, not with the image size.
    overlap : float
        Fraction of a tile shared with its neighbour (0 <= overlap < 1).
    batch_size : int
        Tiles per forward pass.
    device : str
        As in :class:`TrainConfig`.
    min_instance_size : int or None
        Instances smaller than this many pixels are dropped. None: set by
        training from the objects' measured sizes (a fifth of the area of
        the smallest objects, at least a fiftieth of the median object's);
        10 for a model that was never trained.
    separation_threshold : float
        Interface probability above which a pixel separates two objects
        (0 < t < 1). Training sets it from the training labels
        (``train.calibrate_separation``); lower it when touching objects stay
        merged although the separation probability map shows their
        interfaces.
    detection_threshold : float or None
        As ``segmentation_threshold``, for the detection output (the seeds
        of the instance step). Training may set it
        (``train.calibrate_detection``).
    segmentation_threshold : float or None
        None: each pixel gets the most probable class, background included
        (argmax). A number t in (0, 1): a pixel is an object where the
        probability that it is not background exceeds t, and gets the most
        probable object class. Training may set it
        (``train.calibrate_segmentation``); lower it when objects come out
        smaller than they are, raise it when they come out larger.
    block_size : int
        Planes larger than this (in Y or X) are predicted block by block:
        each block plus a one-tile margin of context is tiled and blended,
        only its label maps are kept, and probabilities are not returned.
        Host memory then grows with the block, not the plane (whole-slide
        images, memory-mapped TIFFs).
    separate_touching : bool
        Cut segmented regions along the predicted interfaces (separation
        output). Training turns it off when no interface was labelled: an
        untrained separation head would cut objects at random.
    input_scale : float or None
        Factor by which every plane is resized before it meets the network
        (e.g. 0.5 when objects are large and finely sampled): training
        resizes its images and labels by it, prediction resizes each plane
        by it and brings every output back to the plane's own size
        (probabilities resized with linear interpolation, label maps and
        instances made from them there). ``min_instance_size`` and
        ``block_size`` count pixels of the plane, ``tile_size`` and the
        training ``patch_size`` pixels of the network's input. 1: no
        resizing. None: chosen by training so that objects are about
        :data:`napari_lazyunet.core.autoconfig.TARGET_DIAMETER` pixels
        across (1 for a model that was never trained).
    """

    tile_size: int = 256
    overlap: float = 0.25
    batch_size: int = 4
    device: str = "auto"
    min_instance_size: int | None = None
    separation_threshold: float = 0.5
    segmentation_threshold: float | None = None
    detection_threshold: float | None = None
    block_size: int = 4096
    separate_touching: bool = True
    input_scale: float | None = None

    def __post_init__(self) -> None:
        _check(
            self.tile_size >= 16 and self.tile_size % 16 == 0,
            f"predict.tile_size must be a multiple of 16 and >= 16, got {self.tile_size}",
        )
        _check(0 <= self.overlap < 1, f"predict.overlap must be within [0, 1), got {self.overlap}")
        _check(self.batch_size >= 1, "predict.batch_size must be >= 1")
        _check(
            self.device.split(":")[0] in DEVICES,
            f"predict.device={self.device!r} is unknown; use one of {DEVICES} (or 'cuda:N')",
        )
        _check(
            self.min_instance_size is None or self.min_instance_size >= 0,
            "predict.min_instance_size must be >= 0",
        )
        _check(
            0 < self.separation_threshold < 1,
            f"predict.separation_threshold must be within (0, 1), got {self.separation_threshold}",
        )
        _check(
            self.detection_threshold is None or 0 < self.detection_threshold < 1,
            "predict.detection_threshold must be None or within (0, 1), "
            f"got {self.detection_threshold}",
        )
        _check(
            self.segmentation_threshold is None or 0 < self.segmentation_threshold < 1,
            "predict.segmentation_threshold must be None or within (0, 1), "
            f"got {self.segmentation_threshold}",
        )
        _check(
            self.input_scale is None or 0.01 <= self.input_scale <= 16,
            f"predict.input_scale must be within [0.01, 16], got {self.input_scale}",
        )
        _check(
            self.block_size >= self.tile_size,
            f"predict.block_size ({self.block_size}) must be >= tile_size ({self.tile_size})",
        )

    def with_defaults(self) -> PredictConfig:
        """Copy with the fields left to training (None) at their untrained defaults."""
        return dataclasses.replace(
            self,
            input_scale=1.0 if self.input_scale is None else self.input_scale,
            min_instance_size=10 if self.min_instance_size is None else self.min_instance_size,
        )


@dataclass(frozen=True)
class LazyUNetConfig:
    """Everything needed to build, train and run a model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LazyUNetConfig:
        """Build from a (possibly partial) nested dict; unknown keys are an error."""
        sections = {
            "model": ModelConfig,
            "train": TrainConfig,
            "predict": PredictConfig,
            "normalization": NormalizationConfig,
        }
        data = {
            name: {k: v for k, v in values.items() if k not in RETIRED_KEYS.get(name, ())}
            if isinstance(values, dict)
            else values
            for name, values in data.items()
        }
        unknown = set(data) - set(sections)
        _check(not unknown, f"unknown config section(s) {sorted(unknown)}; use {sorted(sections)}")
        kwargs = {}
        for name, klass in sections.items():
            values = dict(data.get(name, {}))
            known = {f.name for f in dataclasses.fields(klass)}
            bad = set(values) - known
            _check(not bad, f"unknown key(s) {sorted(bad)} in config section {name!r}")
            kwargs[name] = klass(**values)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> LazyUNetConfig:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def replace(self, **sections: Any) -> LazyUNetConfig:
        """Copy with whole sections or ``section={key: value}`` updates replaced."""
        kwargs = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, dict):
                value = dataclasses.replace(current, **value)
            kwargs[name] = value
        return dataclasses.replace(self, **kwargs)


def describe_thresholds(config: LazyUNetConfig) -> str:
    """The model's decision thresholds in words, e.g. for a "training done" message.

    Empty for a single-task model that keeps the argmax segmentation.
    """
    parts = []
    if config.model.multitask and not config.predict.separate_touching:
        parts.append("no interface cut (no interface labelled)")
    elif config.model.multitask:
        parts.append(f"separation threshold {config.predict.separation_threshold:g}")
    if config.predict.segmentation_threshold is not None:
        parts.append(f"segmentation threshold {config.predict.segmentation_threshold:g}")
    if config.predict.detection_threshold is not None:
        parts.append(f"detection threshold {config.predict.detection_threshold:g}")
    return ", ".join(parts)
