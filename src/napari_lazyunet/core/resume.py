"""Continuing training where an earlier call stopped, from a :class:`.checkpoint.TrainingState`.

A state holds Adam's moments and step counts and the patch sampler's random
generator right after the last step's batch. :func:`sampler_rng` and
:func:`load_optimizer_state` put them back when they fit this call (same
seed, same parameter shapes) and otherwise start afresh as earlier versions
did, so that on a CPU with one seed and a constant learning rate ``n`` steps
and then ``m`` more give the weights of ``n + m`` steps in one call.
"""

from __future__ import annotations

import numpy as np
import torch

from .checkpoint import TrainingState

__all__ = ["load_optimizer_state", "sampler_rng"]


def sampler_rng(seed: int, start_step: int, state: TrainingState | None) -> np.random.Generator:
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


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: TrainingState | None) -> None:
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
