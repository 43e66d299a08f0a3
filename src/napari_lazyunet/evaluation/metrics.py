"""Evaluation metrics: pixel Dice, GlaS object metrics, instance F1, AJI, interface P/R.

The one module to import for scores. The GlaS object metrics are defined in
:mod:`.glas` and the object matching they share with instance F1 and AJI in
:mod:`.matching`; both are re-exported here.

All functions take label images as numpy arrays, never modify them and return
plain Python floats / ints / dicts, so that results can go straight into JSON.

Conventions
-----------
* Class maps hold ``0`` for background and ``1..C`` for the classes.
* Instance label images hold ``0`` for background and any positive integer
  per object; labels need not be consecutive.
* Object-to-object overlaps are computed once per call as a contingency
  matrix with :func:`numpy.bincount` (see :func:`contingency`), so the cost is
  one pass over the image plus work on an ``(n_truth + 1, n_pred + 1)``
  matrix, not one pass over the image per object.

References
----------
.. [1] K. Sirinukunwattana et al., "Gland segmentation in colon histology
   images: The GlaS challenge contest", Medical Image Analysis 35 (2017).
.. [2] N. Kumar et al., "A dataset and a technique for generalized nuclear
   segmentation for computational pathology", IEEE TMI 36 (2017).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi

from .glas import object_dice, object_f1, object_hausdorff
from .matching import (
    as_label_image,
    as_mask,
    best_partner,
    check_same_shape,
    contingency,
    f1_scores,
    match_pairs,
)

__all__ = [
    "aggregated_jaccard_index",
    "dice",
    "dice_per_class",
    "instance_f1",
    "interface_precision_recall",
    "object_dice",
    "object_f1",
    "object_hausdorff",
    "pool_interface_scores",
    "touching_objects_recognised",
]


# --------------------------------------------------------------------------- pixel Dice


def dice(pred_mask: np.ndarray, truth_mask: np.ndarray) -> float:
    """Dice coefficient of two binary masks.

    Parameters
    ----------
    pred_mask, truth_mask : ndarray
        Masks of the same shape; any non-zero value counts as foreground.

    Returns
    -------
    float
        ``2 |P & T| / (|P| + |T|)``, and ``1.0`` when both masks are empty
        (nothing to find, nothing found).
    """
    p = as_mask(pred_mask)
    t = as_mask(truth_mask)
    check_same_shape(p, t, "pred_mask and truth_mask")
    total = int(p.sum()) + int(t.sum())
    if total == 0:
        return 1.0
    return float(2 * np.count_nonzero(p & t) / total)


def dice_per_class(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> dict[int, float]:
    """Pixel Dice of each class of two class maps.

    Parameters
    ----------
    pred, truth : ndarray
        Class maps of the same shape, values ``0..n_classes`` (0 = background).
        Negative ``truth`` values (the loss targets' ignore value
        :data:`napari_lazyunet.core.labels.IGNORE`) mark pixels left out of
        the score.
    n_classes : int
        Number of object classes ``C``.

    Returns
    -------
    dict of int to float
        ``{c: Dice(pred == c, truth == c)}`` for ``c = 1..C`` over the counted
        pixels; a class absent from both maps scores ``1.0``.

    Raises
    ------
    ValueError
        If shapes differ or a value lies outside ``0..n_classes``.
    """
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    check_same_shape(pred, truth, "pred and truth")
    counted = truth >= 0
    p = as_label_image(pred[counted], "pred")
    t = as_label_image(truth[counted], "truth")
    for arr, name in ((p, "pred"), (t, "truth")):
        if arr.size and arr.max() > n_classes:
            raise ValueError(f"{name} contains class {int(arr.max())} but n_classes={n_classes}")
    k = n_classes + 1
    # Confusion matrix in one pass: row = true class, column = predicted class.
    confusion = np.bincount(t.astype(np.intp) * k + p, minlength=k * k).reshape(k, k)
    inter = np.diag(confusion)
    total = confusion.sum(axis=0) + confusion.sum(axis=1)
    return {
        c: (1.0 if total[c] == 0 else float(2 * inter[c] / total[c]))
        for c in range(1, n_classes + 1)
    }


# --------------------------------------------------------------------------- instance metrics


def instance_f1(
    pred_inst: np.ndarray, truth_inst: np.ndarray, iou_threshold: float = 0.5
) -> dict[str, float]:
    """Detection F1 with one-to-one matching at an IoU threshold.

    A predicted and a ground-truth object match when their intersection over
    union is at least ``iou_threshold``; each object matches at most once
    (optimal assignment, which above 0.5 is the unique possible one).

    Parameters
    ----------
    pred_inst, truth_inst : ndarray
        Instance label images (0 = background) of the same shape.
    iou_threshold : float
        Minimal IoU of a match, in ``(0, 1]``.

    Returns
    -------
    dict
        ``f1``, ``precision``, ``recall`` (floats) and ``tp``, ``fp``, ``fn``
        (ints). With no object in either image all scores are ``1.0``.
    """
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    ov = contingency(pred_inst, truth_inst)
    rows, _ = match_pairs(ov.iou(), iou_threshold)
    tp = int(rows.size)
    fp = ov.n_pred - tp
    fn = ov.n_truth - tp
    f1, precision, recall = f1_scores(tp, fp, fn)
    return {"f1": f1, "precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn}


def aggregated_jaccard_index(pred_inst: np.ndarray, truth_inst: np.ndarray) -> float:
    """Aggregated Jaccard Index (Kumar et al. 2017).

    Each ground-truth object ``G_i`` is paired with the predicted object
    ``S_j`` of largest IoU; ``C`` sums ``|G_i & S_j|`` and ``U`` sums
    ``|G_i | S_j|`` over those pairs. A ground-truth object that overlaps no
    prediction adds its area to ``U``. Predicted objects paired with no
    ground-truth object ("unused") add their area to ``U``. AJI = ``C / U``.
    A prediction may be the partner of several ground-truth objects, as in
    the original definition, which penalises merges.

    Parameters
    ----------
    pred_inst, truth_inst : ndarray
        Instance label images (0 = background) of the same shape.

    Returns
    -------
    float
        In ``[0, 1]``; ``1.0`` when both images are empty.
    """
    ov = contingency(pred_inst, truth_inst)
    if ov.n_truth == 0 and ov.n_pred == 0:
        return 1.0
    a_t, a_p = ov.truth_area, ov.pred_area
    inter_sum = 0
    union_sum = 0
    used = np.zeros(ov.n_pred, dtype=bool)
    if ov.n_truth:
        best, hit = best_partner(ov.iou())
        rows = np.flatnonzero(hit)
        cols = best[rows]
        inter = ov.intersection[rows, cols]
        inter_sum = int(inter.sum())
        union_sum = int((a_t[rows] + a_p[cols] - inter).sum()) + int(a_t[~hit].sum())
        used[cols] = True
    union_sum += int(a_p[~used].sum())
    return float(inter_sum / union_sum)


# --------------------------------------------------------------------------- interfaces


def interface_precision_recall(
    pred_interface: np.ndarray, truth_interface: np.ndarray, tolerance: float = 2
) -> dict[str, float]:
    """Precision and recall of interface pixels with a distance tolerance.

    A predicted interface pixel is correct when a true interface pixel lies
    within ``tolerance`` pixels (Euclidean); a true interface pixel is found
    when a predicted one lies within ``tolerance``. The tolerance forgives
    the one- or two-pixel offsets that thin hand-drawn interfaces always have.

    Parameters
    ----------
    pred_interface, truth_interface : ndarray
        Binary masks of the same shape (non-zero = interface).
    tolerance : float
        Largest distance in pixels at which two pixels still agree; ``0``
        demands exact pixels.

    Returns
    -------
    dict
        ``precision``, ``recall`` and ``f1``. Empty sets are scored by what
        they cannot get wrong: with nothing predicted precision is ``1.0``
        (no false positive), with nothing true recall is ``1.0`` (nothing
        missed); so both empty gives all ``1.0``, and one empty gives F1 0.
        Also the pixel counts behind them, to pool over many images:
        ``n_pred`` / ``pred_correct`` (predicted pixels, those near a true
        interface) and ``n_truth`` / ``truth_found``.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    p = as_mask(pred_interface)
    t = as_mask(truth_interface)
    check_same_shape(p, t, "pred_interface and truth_interface")
    n_p = int(p.sum())
    n_t = int(t.sum())
    pred_correct = truth_found = 0
    if n_p and n_t:
        pred_correct = int(np.count_nonzero(ndi.distance_transform_edt(~t)[p] <= tolerance))
        truth_found = int(np.count_nonzero(ndi.distance_transform_edt(~p)[t] <= tolerance))
    return _interface_scores(
        {"n_pred": n_p, "pred_correct": pred_correct, "n_truth": n_t, "truth_found": truth_found}
    )


def _interface_scores(counts: dict[str, int]) -> dict[str, float]:
    """Precision, recall and F1 from interface pixel counts (empty sets as documented above)."""
    precision = 1.0 if counts["n_pred"] == 0 else counts["pred_correct"] / counts["n_pred"]
    recall = 1.0 if counts["n_truth"] == 0 else counts["truth_found"] / counts["n_truth"]
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), **counts}


def pool_interface_scores(per_image: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Interface precision / recall pooled over the pixels of many images.

    Averaging per-image scores lets images with nothing predicted (precision
    1.0 by convention) or nothing true (recall 1.0) weigh as much as images
    full of interfaces; pooling counts every interface pixel once.

    Parameters
    ----------
    per_image : sequence of dict
        Results of :func:`interface_precision_recall`.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` and the summed counts, with the
        same empty-set conventions as :func:`interface_precision_recall`.
    """
    return _interface_scores(
        {
            key: int(sum(r[key] for r in per_image))
            for key in ("n_pred", "pred_correct", "n_truth", "truth_found")
        }
    )


def _touching_labels(labels: np.ndarray, distance: int) -> np.ndarray:
    """Boolean per object (index 0 = label 1): touches another object within ``distance``.

    Two objects touch when a pixel of one is within ``distance`` pixels of a
    pixel of the other in the chessboard metric (1 = 8-neighbours). Compares
    the image with shifted copies of itself, one shift per offset of half the
    neighbourhood (the other half gives the same pairs).
    """
    n = int(labels.max()) if labels.size else 0
    touching = np.zeros(n + 1, dtype=bool)
    ny, nx = labels.shape
    for dy in range(distance + 1):
        for dx in range(-distance, distance + 1):
            if dy == 0 and dx <= 0:
                continue
            if dy >= ny or abs(dx) >= nx:
                continue
            a = labels[: ny - dy, max(0, -dx) : nx - max(0, dx)]
            b = labels[dy:, max(0, dx) : nx - max(0, -dx)]
            diff = (a != b) & (a > 0) & (b > 0)
            touching[a[diff]] = True
            touching[b[diff]] = True
    return touching[1:]


def touching_objects_recognised(
    pred_inst: np.ndarray,
    truth_inst: np.ndarray,
    iou_threshold: float = 0.5,
    touch_distance: int = 1,
) -> float:
    """Fraction of touching ground-truth objects that are recognised individually.

    A ground-truth object is *touching* when another ground-truth object
    comes within ``touch_distance`` pixels of it (chessboard distance, so the
    default 1 means the two share a boundary, diagonals included; use 2 for
    annotations that keep a one-pixel gap between neighbours). It is
    *recognised* when the one-to-one matching of :func:`instance_f1` pairs it
    with a predicted object at IoU >= ``iou_threshold``.

    Parameters
    ----------
    pred_inst, truth_inst : ndarray
        2-D instance label images (0 = background) of the same shape.
    iou_threshold : float
        Minimal IoU of a match.
    touch_distance : int
        Largest gap in pixels between two objects that still touch (>= 1).

    Returns
    -------
    float
        Recognised / touching, in ``[0, 1]``; ``nan`` when no ground-truth
        object touches another (the ratio is undefined, and a number there
        would bias averages over images).
    """
    if touch_distance < 1:
        raise ValueError(f"touch_distance must be >= 1, got {touch_distance}")
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    ov = contingency(pred_inst, truth_inst)
    if ov.truth.ndim != 2:
        raise ValueError(f"expected 2-D label images, got shape {ov.truth.shape}")
    touching = _touching_labels(ov.truth, int(touch_distance))
    n_touching = int(touching.sum())
    if n_touching == 0:
        return math.nan
    rows, _ = match_pairs(ov.iou(), iou_threshold)
    return float(np.count_nonzero(touching[rows]) / n_touching)
