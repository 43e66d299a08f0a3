"""Training as a generator: one event per optimiser step, stoppable at any yield.

``iter_train`` trains the given network in place. Closing the generator
(``gen.close()``, or a GUI worker's quit) ends the loop at the next yield and
writes the checkpoint for the weights reached so far, so a stop never loses
work; during the run the checkpoint is also written every
``train.checkpoint_interval`` minutes, so a killed process loses at most
that. A run whose loss or weights stop being finite raises
:class:`TrainingDiverged` and writes nothing more. ``train`` is the blocking
twin for scripts.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import LazyUNetConfig
from .autoconfig import configure_training
from .calibrate import (
    THRESHOLD_GRID,
    calibrate_detection_threshold,
    calibrate_segmentation_threshold,
    calibrate_separation_threshold,
    calibration_sampler,
    recalibrate_batchnorm,
)
from .checkpoint import Checkpoint, TrainingState, check_writable, save_checkpoint
from .devices import flushing_denormals, resolve_device
from .fingerprint import DataFingerprint
from .health import TrainingHealthWarning, health_messages, labelled_recall
from .labels import (
    ImageLabels,
)
from .losses import multitask_loss
from .sampling import PatchSampler
from .schedule import StepBudget, learning_rate_factor
from .training_set import evaluate_set, prepare_set


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became NaN or infinite; the message says what was kept.

    The checkpoint path is never written after this: it keeps the last
    model written with finite weights, or what was there before the run.
    """


@dataclass(frozen=True)
class TrainEvent:
    """Progress after one optimiser step.

    Attributes
    ----------
    step, total_steps : int
        Steps done (counting from 1) and planned.
    loss : float
        Weighted total loss of this step.
    losses : dict of float
        Unweighted loss per task (only tasks the model has).
    validation : dict of float or None
        ``val_loss`` (and ``val_dice`` when the validation set has strong
        images), on the steps where validation ran.
    elapsed : float
        Seconds since training started.
    checkpoint : str or None
        Path of the checkpoint written at this step, if any.
    """

    step: int
    total_steps: int
    loss: float
    losses: dict[str, float]
    validation: dict[str, float] | None
    elapsed: float
    checkpoint: str | None = None

    @property
    def fraction(self) -> float:
        """Progress in [0, 1]."""
        return self.step / self.total_steps


@dataclass(frozen=True)
class CalibrationEvent:
    """Progress of the work after the last step, before the last :class:`TrainEvent`.

    Attributes
    ----------
    stage : str
        What starts now: ``"BatchNorm statistics"``, ``"separation threshold"``,
        ``"detection threshold"``, ``"segmentation threshold"`` or ``"health checks"``.
    done, total : int
        Stages finished and stages in all.
    elapsed : float
        Seconds since training started.
    """

    stage: str
    done: int
    total: int
    elapsed: float

    @property
    def fraction(self) -> float:
        """Progress of the calibration in [0, 1]."""
        return self.done / self.total


def _loss(outputs, targets, config: LazyUNetConfig):
    return multitask_loss(
        outputs,
        targets,
        task_weights=config.train.task_weights,
        separation_positive_weight=config.train.separation_positive_weight,
    )


def iter_train(
    model: torch.nn.Module,
    config: LazyUNetConfig,
    images: Sequence[np.ndarray],
    labels: Sequence[ImageLabels],
    *,
    names: Sequence[str] | None = None,
    validation: tuple[Sequence[np.ndarray], Sequence[ImageLabels]] | None = None,
    checkpoint_path: str | Path | None = None,
    start_step: int = 0,
    history: list[dict] | None = None,
    on_calibrated: Callable[[LazyUNetConfig], None] | None = None,
    training_state: TrainingState | None = None,
    choices: Sequence | None = None,
    fingerprint: DataFingerprint | None = None,
) -> Iterator[TrainEvent]:
    """Train ``model`` in place, yielding a :class:`TrainEvent` after every step.

    Parameters
    ----------
    model : torch.nn.Module
        Network built from ``config.model`` (trained in place).
    config : LazyUNetConfig
        Model, training, prediction (for validation) and normalisation settings.
    images : sequence of ndarray
        Training images, ``(Y, X)`` or ``(Y, X, C)``.
    labels : sequence of ImageLabels
        Their lazy labels.
    names : sequence of str, optional
        Names used in error messages.
    validation : (images, labels), optional
        Held-out set scored every ``config.train.validate_every`` steps and at the end.
    checkpoint_path : path-like, optional
        Where to write the model file: every ``checkpoint_every`` steps, at
        least every ``checkpoint_interval`` minutes, after every validation,
        at the end, and when the generator is closed early; never with
        weights that are not finite. A path that cannot be written is
        refused before anything else is done.
    start_step : int
        Steps already done (to continue a run).
    history : list of dict, optional
        Log to extend (it is appended to in place and saved in the checkpoint).
    training_state : TrainingState, optional
        Adam's state and the sampler's random generator where an earlier
        call stopped (from a model file or the same :class:`LazyUNet`):
        training continues with them, so that on a CPU with the same seed
        and a constant learning rate, ``n`` steps and then ``m`` more give
        the weights of ``n + m`` steps in one call. Updated in place when
        the call ends (and saved in every checkpoint).
    choices : sequence of Choice, optional
        Settings chosen automatically before this call (by
        :func:`.autoconfig.configure_training`), saved in the model file with
        the data fingerprint.
    fingerprint : DataFingerprint, optional
        The training set's fingerprint, when ``config`` was already completed
        from it by :func:`.autoconfig.configure_training` (as
        :meth:`LazyUNet.fit` does). None: it is measured here and the auto
        fields of ``config`` are filled.
    on_calibrated : callable, optional
        Called with the updated config when training ends (or is stopped)
        and calibration (``train.calibrate_separation``,
        ``train.calibrate_segmentation``) has set a new
        ``predict.separation_threshold`` or ``predict.segmentation_threshold``;
        the checkpoint holds them too.

    Yields
    ------
    TrainEvent or CalibrationEvent
        A :class:`TrainEvent` after every step; after the last step, a
        :class:`CalibrationEvent` before each stage of the calibration,
        then the last step's :class:`TrainEvent`.

    Raises
    ------
    LabelError
        Invalid labels (before any step is taken).
    CheckpointError
        ``checkpoint_path`` cannot be written (before any step is taken).
    TrainingDiverged
        The loss or the weights became NaN or infinite (lower the learning
        rate); no checkpoint is written from then on.
    """
    started = time.perf_counter()
    if checkpoint_path is not None:
        checkpoint_path = check_writable(checkpoint_path)
    device = resolve_device(config.train.device)
    if not config.model.is_resolved:
        raise ValueError(
            "the network's width and depth are not set; build the model from a configuration "
            "completed by napari_lazyunet.core.autoconfig.configure_training (LazyUNet.fit "
            "does this)"
        )
    if fingerprint is None:
        config, fingerprint, _ = configure_training(config, images, labels, device, names)
    tcfg = config.train
    prepared = prepare_set(images, labels, config, names)
    # A validation set without strong images is fine (it is scored by its loss).
    val_set = (
        prepare_set(*validation, config, warn_weak_only=False) if validation is not None else None
    )
    interfaces_labelled = any(bool(np.any(t[2] == 1)) for t in prepared.targets)
    if config.model.multitask and not interfaces_labelled:
        # An untrained separation head would cut objects at random.
        config = config.replace(predict={"separate_touching": False})
    threads_before = torch.get_num_threads()
    if tcfg.num_threads:
        torch.set_num_threads(tcfg.num_threads)
    # Denormals slow CPU convolutions several times over (devices.denormals_flushed);
    # the switch and the thread count are restored when training ends.
    flushing_before = flushing_denormals()
    torch.set_flush_denormal(True)
    torch.manual_seed(tcfg.seed)
    rng = _sampler_rng(tcfg.seed, start_step, training_state)
    drawn_state = rng.bit_generator.state
    sampler = PatchSampler(prepared.images, prepared.targets, prepared.strong, tcfg, rng)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.learning_rate)
    _load_optimizer_state(optimizer, training_state)
    budget = StepBudget(tcfg, started)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: learning_rate_factor(tcfg.lr_schedule, done, budget.steps)
    )
    amp = tcfg.mixed_precision and device.type == "cuda"
    history = history if history is not None else []
    first_record = len(history)
    step = start_step
    end = start_step + budget.steps
    interval = 60.0 * tcfg.checkpoint_interval
    last_write = started
    written_step = None  # the step of the last checkpoint this call wrote

    def current_state() -> TrainingState:
        return TrainingState(optimizer.state_dict(), drawn_state, tcfg.seed)

    def diverged(reason: str) -> TrainingDiverged:
        if checkpoint_path is None:
            kept = ""
        elif written_step is not None:
            kept = f"; {checkpoint_path} keeps the model of step {written_step}"
        else:
            kept = f"; nothing was written to {checkpoint_path}"
        return TrainingDiverged(
            f"training diverged at step {reason}{kept}; lower train.learning_rate "
            f"(it was {tcfg.learning_rate}) or check the images for extreme values"
        )

    def write_checkpoint() -> str | None:
        nonlocal last_write, written_step
        if checkpoint_path is None:
            return None
        if not _weights_finite(model):
            raise diverged(f"{step} (the weights are no longer finite)")
        state = Checkpoint(
            config,
            model.state_dict(),
            step,
            history,
            fingerprint=fingerprint.to_dict(),
            choices=[c.to_dict() for c in (choices or [])],
            training_state=current_state(),
        )
        written = str(save_checkpoint(checkpoint_path, state))
        last_write, written_step = time.perf_counter(), step
        return written

    def finish(completed: bool) -> Iterator[CalibrationEvent]:
        """Final BatchNorm statistics, the thresholds they give, then the health checks;
        a :class:`CalibrationEvent` before each stage."""
        nonlocal config
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
        if on_calibrated is not None:
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
            fingerprint.diameter_p95 / fingerprint.diameter_p05
            if fingerprint.diameter_p05
            else None
        )
        messages = health_messages(
            history[first_record:],
            step - start_step if completed else None,
            config,
            recall,
            n_strong=sum(prepared.strong),
            interfaces_labelled=interfaces_labelled,
            size_spread=spread,
            grid_floor=THRESHOLD_GRID[0],
        )
        for message in messages:
            warnings.warn(message, TrainingHealthWarning, stacklevel=3)

    finished = failed = False
    try:
        while step < end:
            x, t = sampler.batch()
            after_batch = rng.bit_generator.state
            x_t = torch.from_numpy(x).to(device)
            t_t = torch.from_numpy(t).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                outputs = model(x_t)
            total, parts = _loss(outputs, t_t, config)
            if not math.isfinite(float(total.detach())):
                raise diverged(f"{step + 1} (loss {float(total.detach())})")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            used_lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            step += 1
            drawn_state = after_batch
            end = start_step + budget.update(step - start_step)
            validation_scores = None
            last = step >= end
            if last:
                if not _weights_finite(model):
                    raise diverged(f"{step} (the weights are no longer finite)")
                yield from finish(completed=True)
            if val_set is not None and (
                last or (tcfg.validate_every and step % tcfg.validate_every == 0)
            ):
                validation_scores = evaluate_set(model, val_set, config, device)
            loss_value = float(total.detach())
            record = {
                "step": step,
                "loss": loss_value,
                "lr": used_lr,
                **parts,
                **(validation_scores or {}),
            }
            history.append(record)
            written = None
            if (
                last
                or validation_scores is not None
                or (tcfg.checkpoint_every and step % tcfg.checkpoint_every == 0)
                or (interval and time.perf_counter() - last_write >= interval)
            ):
                written = write_checkpoint()
            finished = last
            yield TrainEvent(
                step=step,
                total_steps=end,
                loss=loss_value,
                losses=parts,
                validation=validation_scores,
                elapsed=time.perf_counter() - started,
                checkpoint=written,
            )
    except TrainingDiverged:
        failed = True
        raise
    finally:
        model.eval()
        try:
            if step > start_step and not failed:
                if not _weights_finite(model):
                    raise diverged(f"{step} (the weights are no longer finite)")
                if training_state is not None:
                    new_state = current_state()
                    training_state.optimizer = new_state.optimizer
                    training_state.sampler_rng = new_state.sampler_rng
                    training_state.seed = new_state.seed
                # Stopped early (generator closed, or interrupted) after at
                # least one good step: keep what was learned.
                if not finished:
                    for _ in finish(completed=False):
                        pass  # a closed generator yields no more events
                    write_checkpoint()
        finally:
            torch.set_num_threads(threads_before)
            torch.set_flush_denormal(flushing_before)


def _weights_finite(model: torch.nn.Module) -> bool:
    """True when every parameter and buffer of ``model`` is finite."""
    return all(
        bool(torch.isfinite(tensor).all())
        for tensor in (*model.parameters(), *model.buffers())
        if tensor.is_floating_point()
    )


def _sampler_rng(seed: int, start_step: int, state: TrainingState | None) -> np.random.Generator:
    """The patch sampler's generator: where the last call left it, else from the seed.

    A stored generator is used only when it was drawn from the same
    ``seed``; otherwise (and for model files without one) sampling starts
    from ``seed + start_step`` as it always did.
    """
    rng = np.random.default_rng(seed + start_step)
    saved = None if state is None or state.seed != seed else state.sampler_rng
    kind = type(rng.bit_generator).__name__
    if isinstance(saved, dict) and saved.get("bit_generator") == kind:
        try:
            rng.bit_generator.state = saved
        except (TypeError, ValueError, KeyError):
            rng = np.random.default_rng(seed + start_step)
    return rng


def _load_optimizer_state(optimizer: torch.optim.Optimizer, state: TrainingState | None) -> None:
    """Continue Adam's moments and step counts from ``state`` when they fit these parameters.

    The learning rate and the other settings stay those of this call (the
    stored parameter groups are not reused). A state for other parameter
    shapes (another network) is ignored: Adam starts afresh.
    """
    if state is None or not isinstance(state.optimizer, dict):
        return
    saved = state.optimizer.get("state")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not isinstance(saved, dict) or not saved:
        return
    for index, values in saved.items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            return
        for key in ("exp_avg", "exp_avg_sq"):
            value = values.get(key) if isinstance(values, dict) else None
            if not isinstance(value, torch.Tensor) or value.shape != params[index].shape:
                return
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": saved, "param_groups": current["param_groups"]})


def train(
    model: torch.nn.Module,
    config: LazyUNetConfig,
    images: Sequence[np.ndarray],
    labels: Sequence[ImageLabels],
    *,
    callback: Callable[[TrainEvent], object] | None = None,
    **kwargs,
) -> list[TrainEvent]:
    """Blocking twin of :func:`iter_train`; returns the :class:`TrainEvent` of every step.

    ``callback`` is called with each step's event (e.g. to update a progress
    bar); if it returns ``False`` training stops there, as a closed generator
    would.
    """
    events = []
    generator = iter_train(model, config, images, labels, **kwargs)
    try:
        for event in generator:
            if not isinstance(event, TrainEvent):
                continue  # calibration progress: iter_train's consumers show it
            events.append(event)
            if callback is not None and callback(event) is False:
                break
    finally:
        generator.close()
    return events
