"""The ``predict`` section of the configuration: tiled inference and the instance step.

Import :class:`PredictConfig` from :mod:`napari_lazyunet.config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .checks import DEVICES, _check

__all__ = ["PredictConfig"]


@dataclass(frozen=True)
class PredictConfig:
    """Tiled inference settings.

    Parameters
    ----------
    tile_size : int
        Side of the square tiles fed to the network; memory use scales with
        it, not with the image size.
    overlap : float
        Fraction of a tile shared with its neighbour (0 <= overlap < 1). 0.125
        gave the instance F1 of 0.25 on every benchmark dataset (GlaS, BBBC039,
        DSB2018, Usiigaci) in 0.6-1.0x the time (``benchmarks/tile_overlap.py``).
    batch_size : int
        Tiles per forward pass.
    device : str
        As in :class:`~napari_lazyunet.config.TrainConfig`.
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
        each block plus a margin of half a tile of context is tiled and blended,
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
    overlap: float = 0.125
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
