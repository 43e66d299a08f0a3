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

import cv2
import numpy as np
import torch

from ..config import LazyUNetConfig, PredictConfig, TrainConfig
from ..evaluation.metrics import dice_per_class
from .autoconfig import configure_training
from .checkpoint import Checkpoint, TrainingState, check_writable, save_checkpoint
from .devices import flushing_denormals, resolve_device
from .fingerprint import DataFingerprint
from .health import TrainingHealthWarning, health_messages, labelled_recall
from .labels import (
    IGNORE,
    TASKS,
    ImageLabels,
    spatial_shape,
    training_targets,
    validate_training_set,
)
from .losses import multitask_loss
from .normalize import normalize_image, resize_plane, scaled_shape
from .predict import iter_plane_probabilities, segmentation_map
from .sampling import PatchSampler
from .weak_targets import ReachUnknownWarning, far_background_targets


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


def _loss(outputs, targets, config: LazyUNetConfig):
    return multitask_loss(
        outputs,
        targets,
        task_weights=config.train.task_weights,
        separation_positive_weight=config.train.separation_positive_weight,
    )


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
    TrainEvent

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

    def finish(completed: bool) -> None:
        """Final BatchNorm statistics, the thresholds they give, then the health checks."""
        nonlocal config
        recalibrate_batchnorm(model, sampler, device, tcfg.recalibration_batches, amp)
        # Calibration gets at most a twentieth of the time training took.
        calibration_time = max(2.0, 0.05 * (time.perf_counter() - started))
        calibrated = {}
        if tcfg.calibrate_separation and config.predict.separate_touching:
            calibrated["separation_threshold"] = calibrate_separation_threshold(
                model,
                calibration_sampler(prepared, tcfg, step),
                device,
                tcfg.recalibration_batches,
                amp,
            )
        if tcfg.calibrate_detection:
            calibrated["detection_threshold"] = calibrate_detection_threshold(
                model,
                calibration_sampler(prepared, tcfg, step + 2),
                device,
                tcfg.recalibration_batches,
                amp,
            )
        if tcfg.calibrate_segmentation:
            calibrated["segmentation_threshold"] = calibrate_segmentation_threshold(
                model, prepared, config.predict, device, time_limit=calibration_time
            )
        calibrated = {key: value for key, value in calibrated.items() if value is not None}
        calibrated["separate_touching"] = config.predict.separate_touching
        config = config.replace(predict=calibrated)
        if on_calibrated is not None:
            on_calibrated(config)
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
                finish(completed=True)
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
                    finish(completed=False)
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


class StepBudget:
    """How many steps a training call runs: ``train.steps``, or as many as fit its time budget.

    With ``steps`` None the step time is measured on the first steps and
    again every :attr:`EVERY` steps (validation included), and the planned
    total is the steps done plus those that fit in what is left of the
    budget, less :data:`FINISH_SHARE` of it kept for recalibration,
    calibration and the final validation.
    """

    EVERY = 25

    def __init__(self, config: TrainConfig, started: float):
        self.fixed = config.steps
        budget = 60.0 * (config.time_budget or 15.0)
        self.deadline = started + budget * (1 - FINISH_SHARE)
        self.steps = config.steps if config.steps is not None else 10**6
        self._window = (0, time.perf_counter())

    def update(self, done: int) -> int:
        """Steps planned after ``done`` steps of this call."""
        if self.fixed is not None:
            return self.fixed
        now = time.perf_counter()
        first, since = self._window
        if done in (1, 5) or done - first >= self.EVERY:
            per_step = (now - since) / max(done - first, 1)
            self.steps = done + max(0, int((self.deadline - now) / max(per_step, 1e-6)))
            self._window = (done, now)
        if now >= self.deadline:
            self.steps = done
        return self.steps


# Share of the time budget kept for what follows the last step.
FINISH_SHARE = 0.06


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
    ``batches`` fresh training patches; it is only lowered.

    Returns
    -------
    float or None
        The threshold; None when the model has no detection output, the
        patches hold no labelled inner pixel, or 0.5 is best (the argmax stays).
    """
    if batches <= 0 or "detection" not in getattr(model, "tasks", ()):
        return None
    probabilities, truth = task_probabilities(model, sampler, device, batches, "detection", amp)
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


def learning_rate_factor(schedule: str, done: int, steps: int) -> float:
    """Multiplier of the base learning rate after ``done`` of ``steps`` steps.

    ``constant``: 1. ``cosine``: linear warm-up over the first 5 % of the
    steps (at most 100), then a half cosine from 1 down to 0.01 at the end.
    """
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}")
    warmup = min(100, max(1, steps // 20))
    if done < warmup:
        return (done + 1) / warmup
    progress = min(1.0, (done - warmup) / max(1, steps - warmup))
    floor = 0.01
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def train(
    model: torch.nn.Module,
    config: LazyUNetConfig,
    images: Sequence[np.ndarray],
    labels: Sequence[ImageLabels],
    *,
    callback: Callable[[TrainEvent], object] | None = None,
    **kwargs,
) -> list[TrainEvent]:
    """Blocking twin of :func:`iter_train`; returns every event.

    ``callback`` is called with each event (e.g. to update a progress bar);
    if it returns ``False`` training stops there, as a closed generator would.
    """
    events = []
    generator = iter_train(model, config, images, labels, **kwargs)
    try:
        for event in generator:
            events.append(event)
            if callback is not None and callback(event) is False:
                break
    finally:
        generator.close()
    return events
