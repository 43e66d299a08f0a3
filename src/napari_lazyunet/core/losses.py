"""Per-task cross entropy with the paper's per-image label indicators.

The indicator is carried by the targets themselves: a task that is not
labelled on an image has :data:`~napari_lazyunet.core.labels.IGNORE` in every
pixel, so those pixels drop out of the mean and a task with no labelled pixel
in the batch contributes an exact zero (and a zero gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .labels import IGNORE, TASKS


def task_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean cross entropy over the labelled pixels of one task.

    Parameters
    ----------
    logits : Tensor
        ``(N, K, H, W)``.
    target : Tensor
        ``(N, H, W)`` int64 with :data:`IGNORE` where the pixel does not count.
    weight : Tensor, optional
        ``(K,)`` class weights.

    Returns
    -------
    Tensor
        Scalar. Exactly zero, with zero gradient, when no pixel is labelled.
    """
    valid = target != IGNORE
    if not bool(valid.any()):
        # Multiplying by zero keeps the graph connected (so backward works)
        # while every gradient is exactly zero.
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE)


def multitask_loss(
    outputs: dict[str, torch.Tensor],
    targets: torch.Tensor,
    task_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    separation_positive_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the per-task losses, ``sum_k alpha_k * CE_k``.

    Parameters
    ----------
    outputs : dict of Tensor
        Logits per task from the network (a single-task model gives only some).
    targets : Tensor
        ``(N, 3, H, W)`` int64, tasks in :data:`TASKS` order.
    task_weights : tuple of float
        ``alpha_k`` for (detection, segmentation, separation).
    separation_positive_weight : float
        Class weight of "interface" against "not interface".

    Returns
    -------
    total : Tensor
        Scalar to back-propagate.
    parts : dict of float
        Unweighted loss of each task present in ``outputs`` that has labelled
        pixels in this batch (for progress reports; a task without labels is
        left out rather than reported as a misleading zero).
    """
    total = None
    parts: dict[str, float] = {}
    for index, task in enumerate(TASKS):
        if task not in outputs:
            continue
        logits = outputs[task]
        weight = None
        if task == "separation":
            weight = torch.tensor([1.0, separation_positive_weight], device=logits.device)
        term = task_cross_entropy(logits, targets[:, index], weight)
        if bool((targets[:, index] != IGNORE).any()):
            parts[task] = float(term.detach())
        weighted = task_weights[index] * term
        total = weighted if total is None else total + weighted
    if total is None:
        raise ValueError(f"the network gave none of the tasks {TASKS}")
    return total, parts
