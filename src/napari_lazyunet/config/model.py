"""The ``model`` and ``normalization`` sections of the configuration: the network and its input.

:class:`ModelConfig` is the network's architecture, :class:`NormalizationConfig`
how raw intensities become its input; both are saved with the model. Import
them from :mod:`napari_lazyunet.config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import _check

__all__ = ["NORMALIZATION_MODES", "ModelConfig", "NormalizationConfig"]

NORMALIZATION_MODES = ("percentile", "minmax", "fixed", "none")


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
