"""Settings derived from the data fingerprint, the device and the time budget.

Every field of the configuration left at None ("auto") is filled here, each
with the reason it got its value, so that ``lazyunet train PROJECT -o MODEL``
with no other option trains a model that suits the user's images on the
machine at hand. A field the user set is never changed.

The rules, and the measurements behind their constants:

- **input scale**: objects are resized to about :data:`TARGET_DIAMETER`
  pixels across, as cellpose rescales by diameter. The hand-tuned benchmark
  settings (docs/benchmarks.md) put GlaS glands (median diameter 115 px) at
  a quarter of their size, 29 px, and left BBBC039 nuclei (28 px) as they
  are; 30 px reproduces both. Within :data:`SCALE_DEAD_ZONE` of 1 the images
  are left alone (resampling costs detail and gains nothing).
- **depth**: the smallest depth whose receptive field covers
  :data:`CONTEXT_DIAMETERS` object diameters (an object and its neighbours).
- **patch size**: :data:`PATCH_DIAMETERS` object diameters, a multiple of
  ``2 ** depth``, at least 64 px (CPU) or 256 px (GPU, the paper's).
- **width, batch**: 8 and 8 on a CPU (the hand-tuned ``cpu`` benchmark
  settings); on a GPU 32 and 16, less with under 12 GB of memory.
- **learning rate**: 1e-3 for width <= 16 (measured for those widths in the
  benchmarks), else the paper's 2e-4.
- **steps**: not chosen here; training runs as many as fit in the time
  budget, from the step time it measures (:mod:`.train`).
- **smallest instance**: a fifth of the area of the 5th-percentile object, at
  least a fiftieth of the median object's.
- **intensity inversion**: on when the labels show both polarities.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from ..config import LazyUNetConfig
from .fingerprint import DataFingerprint

TARGET_DIAMETER = 30.0
SCALE_DEAD_ZONE = (0.75, 1.34)
# Images are shrunk, never enlarged: enlarging small objects costs steps in
# a fixed time budget (the square of the factor per patch of the same
# objects). Measured on DSB2018 nuclei (16 px): enlarged 1.92x, instance F1
# 0.250 in 10 minutes; at their own size 0.615 (docs/benchmarks.md).
SCALE_LIMITS = (0.05, 1.0)
CONTEXT_DIAMETERS = 4.0
PATCH_DIAMETERS = 2.25
CPU_BUDGET_MINUTES = 15.0
GPU_BUDGET_MINUTES = 60.0
DEFAULT_MIN_INSTANCE = 10


@dataclass(frozen=True)
class Choice:
    """One setting chosen automatically.

    Attributes
    ----------
    field : str
        ``section.name`` of the configuration field, e.g. ``predict.input_scale``.
    value : object
        The value chosen.
    reason : str
        Why, in a few words.
    """

    field: str
    value: Any
    reason: str

    def to_dict(self) -> dict:
        """Plain dict (JSON-serialisable)."""
        return {"field": self.field, "value": self.value, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.field} = {self.value} ({self.reason})"


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def receptive_field(depth: int) -> int:
    """Receptive field in pixels of the contracting path of ``depth`` levels.

    Two 3x3 convolutions per level and 2x2 pooling between levels:
    ``1 + 5 (2**depth - 1) + 4 * 2**depth``.
    """
    return 1 + 5 * (2**depth - 1) + 4 * 2**depth


def _gpu_memory_gb(device: torch.device) -> float:
    if device.type != "cuda":
        return 0.0
    return torch.cuda.get_device_properties(device).total_memory / 1e9


def choose_input_scale(fingerprint: DataFingerprint) -> tuple[float, str]:
    """Input scale that brings the median object to :data:`TARGET_DIAMETER`."""
    diameter = fingerprint.diameter_median
    if diameter is None:
        return 1.0, "object size unknown (no inner region or exact mask)"
    scale = TARGET_DIAMETER / diameter
    if SCALE_DEAD_ZONE[0] <= scale <= SCALE_DEAD_ZONE[1]:
        return 1.0, f"objects {diameter:.0f} px across, near the {TARGET_DIAMETER:g} px target"
    scale = min(max(scale, SCALE_LIMITS[0]), SCALE_LIMITS[1])
    scale = float(f"{scale:.3g}")
    return scale, (
        f"objects {diameter:.0f} px across become {diameter * scale:.0f} px "
        f"(target {TARGET_DIAMETER:g} px)"
    )


def choose_settings(
    config: LazyUNetConfig, fingerprint: DataFingerprint, device: torch.device
) -> tuple[LazyUNetConfig, list[Choice]]:
    """Fill every auto (None) field of ``config`` except ``train.steps``.

    Parameters
    ----------
    config : LazyUNetConfig
        Configuration with the user's settings; None fields are chosen.
    fingerprint : DataFingerprint
        What the training set's labels say (:func:`.fingerprint.measure_fingerprint`).
    device : torch.device
        Where training runs.

    Returns
    -------
    config : LazyUNetConfig
        The completed configuration (``train.steps`` stays None when it was:
        training fits the steps into ``train.time_budget``).
    choices : list of Choice
        One entry per field filled here.
    """
    choices: list[Choice] = []
    chosen: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "predict": {}}
    gpu = device.type == "cuda"
    memory = _gpu_memory_gb(device)

    def choose(section: str, name: str, value, reason: str):
        """``value`` for ``section.name`` unless the user set it; returns the value in force."""
        current = getattr(getattr(config, section), name)
        if current is not None:
            return current
        chosen[section][name] = value
        choices.append(Choice(f"{section}.{name}", value, reason))
        return value

    scale_value, scale_reason = choose_input_scale(fingerprint)
    scale = choose("predict", "input_scale", scale_value, scale_reason)
    diameter = (fingerprint.diameter_median or TARGET_DIAMETER / scale) * scale

    depth_value = next(
        (d for d in range(2, 6) if receptive_field(d) >= CONTEXT_DIAMETERS * diameter), 5
    )
    depth = choose(
        "model",
        "depth",
        depth_value,
        f"receptive field {receptive_field(depth_value)} px covers "
        f"{CONTEXT_DIAMETERS:g} objects of {diameter:.0f} px",
    )
    multiple = 2**depth
    floor = 256 if gpu else 64
    wanted = max(floor, PATCH_DIAMETERS * diameter, 4 * multiple)
    largest = max(fingerprint.median_shape) * scale
    patch_value = int(math.ceil(min(wanted, max(largest, floor)) / multiple) * multiple)
    patch_value = int(math.ceil(patch_value / 16) * 16)
    choose(
        "train",
        "patch_size",
        patch_value,
        f"{patch_value / diameter:.1f} object diameters, a multiple of 2**depth",
    )
    if gpu:
        width_value, batch_value = (32, 16) if memory >= 12 else (16, 8)
        device_words = f"{device.type} with {memory:.0f} GB"
    else:
        width_value, batch_value = 8, 8
        device_words = "CPU"
    width = choose("model", "base_channels", width_value, f"fits the {device_words}")
    choose("train", "batch_size", batch_value, f"fits the {device_words}")
    choose(
        "train",
        "learning_rate",
        1e-3 if width <= 16 else 2e-4,
        "measured for narrow networks" if width <= 16 else "the paper's rate for wide networks",
    )
    if config.train.steps is None:
        choose(
            "train",
            "time_budget",
            GPU_BUDGET_MINUTES if gpu else CPU_BUDGET_MINUTES,
            f"default on {device.type}",
        )
    if not gpu:
        cores = available_cores()
        choose("train", "num_threads", cores, f"{cores} core(s) available")
    # Measured on the one benchmark set that mixes polarities (DSB2018, one
    # seed each, docs/benchmarks.md): at the images' own scale inversion
    # raised instance F1 from 0.417 to 0.615 at equal steps; enlarged 1.92x
    # it lowered it (0.445 -> 0.250).
    invert = 0.5 if fingerprint.polarity == "mixed" else 0.0
    choose(
        "train",
        "invert_intensity",
        invert,
        "objects are brighter than the background on some images, darker on others"
        if invert
        else f"contrast polarity {fingerprint.polarity}",
    )
    if fingerprint.diameter_p05 is None:
        min_size, why = DEFAULT_MIN_INSTANCE, "object size unknown"
    else:
        # Painted fragments make the 5th percentile unreliable on some sets:
        # never less than a fiftieth of the median object.
        area = math.pi / 4 * fingerprint.diameter_p05**2
        median_area = math.pi / 4 * fingerprint.diameter_median**2
        min_size = max(4, int(round(max(0.2 * area, 0.02 * median_area))))
        why = (
            f"a fifth of the smallest objects' area ({area:.0f} px), at least a fiftieth "
            f"of the median ({median_area:.0f} px)"
        )
    choose("predict", "min_instance_size", min_size, why)
    resolved = config.replace(**chosen)
    return resolved, choices


def configure_training(
    config: LazyUNetConfig,
    images,
    labels,
    device: torch.device,
    names=None,
) -> tuple[LazyUNetConfig, DataFingerprint, list[Choice]]:
    """Validate a training set, measure its fingerprint and fill the auto fields.

    Also stores the floor of the normalisation range
    (``normalization.min_range``, a fraction
    :data:`~napari_lazyunet.core.normalize.MIN_RANGE_FRACTION` of the
    training images' median range) when it is unset and the mode stretches
    each image. Calling it on a completed configuration changes nothing.

    Parameters
    ----------
    config : LazyUNetConfig
        The user's configuration (None fields are chosen).
    images, labels : sequences
        The training images and their :class:`~.labels.ImageLabels`.
    device : torch.device
        Where training will run.
    names : sequence of str, optional
        Image names for error messages.

    Returns
    -------
    config : LazyUNetConfig
    fingerprint : DataFingerprint
    choices : list of Choice

    Raises
    ------
    LabelError
        Invalid images or labels.
    """
    from .fingerprint import measure_fingerprint
    from .labels import validate_training_set
    from .normalize import MIN_RANGE_FRACTION

    model = config.model
    validate_training_set(images, labels, model.n_classes, model.in_channels, names, False)
    fingerprint = measure_fingerprint(images, labels, model.n_classes, model.in_channels)
    config, choices = choose_settings(config, fingerprint, device)
    norm = config.normalization
    if norm.min_range is None and norm.mode in ("percentile", "minmax"):
        floor = tuple(float(f"{MIN_RANGE_FRACTION * r:.4g}") for r in fingerprint.intensity_range)
        config = config.replace(normalization={"min_range": floor})
        choices.append(
            Choice(
                "normalization.min_range",
                list(floor),
                f"{MIN_RANGE_FRACTION:g} of the training images' median intensity range: an "
                "image without objects is not stretched to full contrast",
            )
        )
    return config, fingerprint, choices
