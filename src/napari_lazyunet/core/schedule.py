"""How long training runs and how its learning rate moves: the step budget and the schedule."""

from __future__ import annotations

import math
import time

from ..config import TrainConfig


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
