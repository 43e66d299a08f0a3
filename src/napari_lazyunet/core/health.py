"""Training health: say out loud when a model did not learn, with the likely cause.

A model that never learned its objects still writes a file and still
predicts something. The checks here run when training ends and turn the
signs of such a model into :class:`TrainingHealthWarning` messages, each
naming the likely cause and what to do. They only read: the history, the
calibrated settings and a few predicted training patches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..config import LazyUNetConfig
from .labels import IGNORE, TASKS
from .sampling import PatchSampler


class TrainingHealthWarning(UserWarning):
    """Training ended, but the model shows a sign that it did not learn well."""


# The loss of the last tenth of the steps should be well under that of the
# first steps; above this fraction of it the loss has barely moved.
PLATEAU_FRACTION = 0.7
# A head that labels fewer than this share of the painted object pixels of
# its own training patches as object has not learned the objects.
MIN_OBJECT_RECALL = 0.5
# Fewer steps than this rarely train a network from scratch.
MIN_STEPS = 300
# Objects whose 95th-percentile diameter is more than this many times the
# 5th-percentile one vary more than two or three exact masks can show.
SIZE_SPREAD = 4.0


def labelled_recall(
    model: torch.nn.Module,
    sampler: PatchSampler,
    device: torch.device,
    batches: int,
    config: LazyUNetConfig,
    amp: bool = False,
) -> dict[str, float]:
    """Share of the labelled object pixels of training patches that each head calls object.

    Detection and segmentation use the decision rule of prediction
    (argmax, or ``predict.detection_threshold`` / ``segmentation_threshold``). The
    model is run in eval mode with frozen weights (its mode is restored).
    """
    tasks = [t for t in ("detection", "segmentation") if t in getattr(model, "tasks", ())]
    hits = dict.fromkeys(tasks, 0)
    counts = dict.fromkeys(tasks, 0)
    was_training = model.training
    model.eval()
    threshold = config.predict.segmentation_threshold
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for _ in range(batches):
            x, t = sampler.batch()
            outputs = model(torch.from_numpy(x).to(device))
            for task in tasks:
                target = t[:, TASKS.index(task)]
                positive = (target != IGNORE) & (target >= 1)
                if not positive.any():
                    continue
                probs = torch.softmax(outputs[task].float(), dim=1).cpu().numpy()
                task_threshold = (
                    threshold if task == "segmentation" else config.predict.detection_threshold
                )
                if task_threshold is not None:
                    called = (1 - probs[:, 0]) > task_threshold
                else:
                    called = probs.argmax(1) >= 1
                hits[task] += int(np.count_nonzero(called & positive))
                counts[task] += int(np.count_nonzero(positive))
    model.train(was_training)
    return {task: hits[task] / counts[task] for task in tasks if counts[task]}


def health_messages(
    history: Sequence[dict],
    steps_done: int | None,
    config: LazyUNetConfig,
    recall: dict[str, float],
    *,
    n_strong: int,
    interfaces_labelled: bool,
    size_spread: float | None,
    grid_floor: float,
) -> list[str]:
    """Every warning that applies to a finished training, one sentence each.

    Parameters
    ----------
    history : sequence of dict
        Training log (``loss`` per step), this run's records.
    steps_done : int or None
        Optimiser steps of this run; None when the user stopped it early
        (then the step count is no sign of trouble).
    config : LazyUNetConfig
        The final configuration (with calibrated thresholds).
    recall : dict
        :func:`labelled_recall` per head.
    n_strong : int
        Training images with an exact mask.
    interfaces_labelled : bool
        Whether any interface pixel was labelled.
    size_spread : float or None
        95th over 5th percentile of the object diameters.
    grid_floor : float
        Lowest value the threshold calibration can choose.
    """
    messages = []
    if steps_done is not None and steps_done < MIN_STEPS:
        messages.append(
            f"only {steps_done} training steps were run; a network rarely learns in under "
            f"{MIN_STEPS}: give a longer time budget (--time-budget) or more steps"
        )
    losses = [r["loss"] for r in history if "loss" in r]
    if len(losses) >= 20:
        head = float(np.mean(losses[: max(5, len(losses) // 20)]))
        tail = float(np.mean(losses[-max(5, len(losses) // 10) :]))
        if tail > PLATEAU_FRACTION * head:
            messages.append(
                f"the training loss barely fell ({head:.3f} at the start, {tail:.3f} at the "
                "end): the model may not have learned; train longer, or check that the "
                "labels mark the objects consistently"
            )
    for task, value in recall.items():
        if value < MIN_OBJECT_RECALL:
            messages.append(
                f"the {task} head calls only {100 * value:.0f} % of the painted object pixels "
                "of its own training images object: it never became confident; train "
                "longer, paint more inner regions, or add exact masks"
            )
    if config.model.multitask:
        if not interfaces_labelled:
            messages.append(
                "no interface between touching objects is labelled, so the separation "
                "output is untrained and is not used to cut objects apart; paint scribbles "
                "where touching objects meet if they come out merged"
            )
        elif config.predict.separation_threshold <= grid_floor:
            messages.append(
                f"the calibrated separation threshold is at the bottom of its range "
                f"({config.predict.separation_threshold:g}): the separation head is barely "
                "confident about interfaces; train longer or paint more interface scribbles"
            )
        threshold = config.predict.segmentation_threshold
        if threshold is not None and threshold <= grid_floor:
            messages.append(
                f"the calibrated segmentation threshold is at the bottom of its range "
                f"({threshold:g}): on the images without exact mask the model segments far "
                "less than the exact masks suggest; add exact masks of typical images"
            )
    if n_strong == 1 or (size_spread is not None and size_spread > SIZE_SPREAD and n_strong < 3):
        spread = f" and object sizes vary {size_spread:.1f}-fold" if size_spread else ""
        messages.append(
            f"{n_strong} image(s) have exact masks{spread}: too few to show how objects end; "
            "refine and mark two or three more images strong (GrabCut) for better boundaries"
        )
    return messages
