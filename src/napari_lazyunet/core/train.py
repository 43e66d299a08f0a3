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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..config import LazyUNetConfig
from .autoconfig import configure_training
from .checkpoint import Checkpoint, TrainingState, check_writable, save_checkpoint
from .devices import TorchSettings, resolve_device
from .final_stages import iter_final_stages
from .fingerprint import DataFingerprint
from .labels import (
    ImageLabels,
)
from .losses import multitask_loss
from .resume import load_optimizer_state, sampler_rng
from .sampling import PatchSampler
from .schedule import StepBudget, learning_rate_factor
from .train_events import CalibrationEvent, TrainEvent, TrainingDiverged
from .training_set import evaluate_set, prepare_set

__all__ = ["CalibrationEvent", "TrainEvent", "TrainingDiverged", "iter_train", "train"]


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
    # Threads and flushed denormals for training; restored when training ends.
    torch_before = TorchSettings.set_for_training(tcfg.num_threads)
    torch.manual_seed(tcfg.seed)
    rng = sampler_rng(tcfg.seed, start_step, training_state)
    drawn_state = rng.bit_generator.state
    sampler = PatchSampler(prepared.images, prepared.targets, prepared.strong, tcfg, rng)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.learning_rate)
    load_optimizer_state(optimizer, training_state)
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

    def calibrated(new_config: LazyUNetConfig) -> None:
        nonlocal config
        config = new_config
        if on_calibrated is not None:
            on_calibrated(new_config)

    def finish(completed: bool) -> Iterator[CalibrationEvent]:
        return iter_final_stages(
            model,
            config,
            prepared,
            sampler,
            device,
            amp,
            started=started,
            step=step,
            history=history,
            first_record=first_record,
            steps_done=step - start_step if completed else None,
            interfaces_labelled=interfaces_labelled,
            fingerprint=fingerprint,
            on_calibrated=calibrated,
        )

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
            torch_before.restore()


def _weights_finite(model: torch.nn.Module) -> bool:
    """True when every parameter and buffer of ``model`` is finite."""
    return all(
        bool(torch.isfinite(tensor).all())
        for tensor in (*model.parameters(), *model.buffers())
        if tensor.is_floating_point()
    )


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
