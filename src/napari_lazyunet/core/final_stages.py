"""What runs after the last training step, or when training is stopped early.

In order: BatchNorm statistics re-estimated with the final weights, the
separation, detection and segmentation thresholds calibrated on the model's
own training labels (each stage only where the configuration asks for it),
then the health checks that warn when a finished training did not learn.
Each stage is announced by a :class:`~napari_lazyunet.core.train_events.CalibrationEvent`.
The measurements themselves are in :mod:`.calibrate` and :mod:`.health`;
this module decides which stages run and in what order.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator

import torch

from ..config import LazyUNetConfig
from .calibrate import (
    THRESHOLD_GRID,
    calibrate_detection_threshold,
    calibrate_segmentation_threshold,
    calibrate_separation_threshold,
    calibration_sampler,
    recalibrate_batchnorm,
)
from .fingerprint import DataFingerprint
from .health import TrainingHealthWarning, health_messages, labelled_recall
from .sampling import PatchSampler
from .train_events import CalibrationEvent
from .training_set import PreparedSet

__all__ = ["iter_final_stages"]


def iter_final_stages(
    model: torch.nn.Module,
    config: LazyUNetConfig,
    prepared: PreparedSet,
    sampler: PatchSampler,
    device: torch.device,
    amp: bool,
    *,
    started: float,
    step: int,
    history: list[dict],
    first_record: int,
    steps_done: int | None,
    interfaces_labelled: bool,
    fingerprint: DataFingerprint,
    on_calibrated: Callable[[LazyUNetConfig], None],
) -> Iterator[CalibrationEvent]:
    """Final BatchNorm statistics, the thresholds they give, then the health checks;
    a :class:`CalibrationEvent` before each stage.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (its BatchNorm statistics are updated in place).
    config : LazyUNetConfig
        The run's configuration.
    prepared : PreparedSet
        The training set, calibrated on.
    sampler : PatchSampler
        The training's patch sampler (draws the BatchNorm batches).
    device : torch.device
        Where the model runs.
    amp : bool
        Run in bfloat16 autocast (CUDA mixed precision).
    started : float
        ``time.perf_counter()`` when training started: calibration gets at
        most a twentieth of the time training took, and events report the
        seconds since then.
    step : int
        Steps done in all (seeds the calibration samplers).
    history : list of dict
        The training log; the records from ``first_record`` on are this call's.
    first_record : int
        Index of this call's first record in ``history``.
    steps_done : int or None
        Steps this call took when it completed its plan; None when it was
        stopped early.
    interfaces_labelled : bool
        Whether any training image has interface labels.
    fingerprint : DataFingerprint
        The training set's fingerprint (its object size spread).
    on_calibrated : callable
        Called with the configuration holding the calibrated thresholds,
        before the health checks.

    Yields
    ------
    CalibrationEvent
        Before each stage.

    Warns
    -----
    TrainingHealthWarning
        One per sign that the training did not learn.
    """
    tcfg = config.train
    stages = ["BatchNorm statistics"]
    if tcfg.calibrate_separation and config.predict.separate_touching:
        stages.append("separation threshold")
    if tcfg.calibrate_detection:
        stages.append("detection threshold")
    if tcfg.calibrate_segmentation:
        stages.append("segmentation threshold")
    stages.append("health checks")

    def stage(name: str) -> CalibrationEvent:
        return CalibrationEvent(
            name, stages.index(name), len(stages), time.perf_counter() - started
        )

    yield stage("BatchNorm statistics")
    recalibrate_batchnorm(model, sampler, device, tcfg.recalibration_batches, amp)
    # Calibration gets at most a twentieth of the time training took.
    calibration_time = max(2.0, 0.05 * (time.perf_counter() - started))
    calibrated = {}
    if "separation threshold" in stages:
        yield stage("separation threshold")
        calibrated["separation_threshold"] = calibrate_separation_threshold(
            model,
            calibration_sampler(prepared, tcfg, step),
            device,
            tcfg.recalibration_batches,
            amp,
        )
    if "detection threshold" in stages:
        yield stage("detection threshold")
        calibrated["detection_threshold"] = calibrate_detection_threshold(
            model,
            calibration_sampler(prepared, tcfg, step + 2),
            device,
            tcfg.recalibration_batches,
            amp,
        )
    if "segmentation threshold" in stages:
        yield stage("segmentation threshold")
        calibrated["segmentation_threshold"] = calibrate_segmentation_threshold(
            model, prepared, config.predict, device, time_limit=calibration_time
        )
    calibrated = {key: value for key, value in calibrated.items() if value is not None}
    calibrated["separate_touching"] = config.predict.separate_touching
    config = config.replace(predict=calibrated)
    on_calibrated(config)
    yield stage("health checks")
    recall = labelled_recall(
        model,
        calibration_sampler(prepared, tcfg, step + 1),
        device,
        max(1, tcfg.recalibration_batches // 4),
        config,
        amp,
    )
    spread = (
        fingerprint.diameter_p95 / fingerprint.diameter_p05 if fingerprint.diameter_p05 else None
    )
    messages = health_messages(
        history[first_record:],
        steps_done,
        config,
        recall,
        n_strong=sum(prepared.strong),
        interfaces_labelled=interfaces_labelled,
        size_spread=spread,
        grid_floor=THRESHOLD_GRID[0],
    )
    for message in messages:
        # Level 3: this generator, iter_train that drives it, iter_train's consumer.
        warnings.warn(message, TrainingHealthWarning, stacklevel=3)
