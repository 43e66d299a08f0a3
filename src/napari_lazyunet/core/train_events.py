"""What training reports: an event per step and per final stage, and the error of a diverged run.

:func:`~napari_lazyunet.core.train.iter_train` yields these small frozen
records, which the CLI, the scripting API and the Train widget turn into
progress bars, loss curves and status lines. :class:`TrainingDiverged` is
the error that ends a run whose loss or weights stopped being finite.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CalibrationEvent", "TrainEvent", "TrainingDiverged"]


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
