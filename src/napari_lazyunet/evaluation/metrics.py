"""Evaluation metrics: pixel Dice, GlaS object metrics, instance F1, AJI, interface P/R.

All functions take label images as numpy arrays, never modify them and return
plain Python floats / ints / dicts, so that results can go straight into JSON.

Conventions
-----------
* Class maps hold ``0`` for background and ``1..C`` for the classes.
* Instance label images hold ``0`` for background and any positive integer
  per object; labels need not be consecutive.
* Object-to-object overlaps are computed once per call as a contingency
  matrix with :func:`numpy.bincount` (see :func:`_contingency`), so the cost is
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
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment

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


# --------------------------------------------------------------------------- helpers


def _as_label_image(array: np.ndarray, name: str) -> np.ndarray:
    """Return ``array`` as a non-negative integer array, or raise ``ValueError``."""
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.intp)
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)  # whole-number floats from some readers
        else:
            raise ValueError(f"{name} must hold integer labels, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must not contain negative labels (min {array.min()})")
    return array


def _check_same_shape(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {a.shape} and {b.shape}")


def _as_mask(array: np.ndarray) -> np.ndarray:
    return np.asarray(array) != 0


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map arbitrary labels to ``0..n`` (0 stays background); return the map and ``n``."""
    ids = np.unique(labels)
    if ids.size == 0 or ids[0] != 0:
        ids = np.concatenate([[0], ids]).astype(ids.dtype)
    # searchsorted gives the position of each value in the sorted ids: a dense relabelling.
    return np.searchsorted(ids, labels).astype(np.intp), ids.size - 1


@dataclass(frozen=True)
class _Overlap:
    """Dense labels and the truth x prediction contingency matrix.

    ``matrix[i, j]`` is the number of pixels with truth object ``i`` and
    predicted object ``j``; row / column 0 is background.
    """

    truth: np.ndarray  # (Y, X) labels 0..n_truth
    pred: np.ndarray  # (Y, X) labels 0..n_pred
    matrix: np.ndarray  # (n_truth + 1, n_pred + 1) int64

    @property
    def n_truth(self) -> int:
        return self.matrix.shape[0] - 1

    @property
    def n_pred(self) -> int:
        return self.matrix.shape[1] - 1

    @property
    def truth_area(self) -> np.ndarray:
        return self.matrix.sum(axis=1)[1:]

    @property
    def pred_area(self) -> np.ndarray:
        return self.matrix.sum(axis=0)[1:]

    @property
    def intersection(self) -> np.ndarray:
        """``(n_truth, n_pred)`` pixel counts of object pairs."""
        return self.matrix[1:, 1:]

    def iou(self) -> np.ndarray:
        inter = self.intersection
        union = self.truth_area[:, None] + self.pred_area[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _contingency(pred_inst: np.ndarray, truth_inst: np.ndarray) -> _Overlap:
    pred = _as_label_image(pred_inst, "pred_inst")
    truth = _as_label_image(truth_inst, "truth_inst")
    _check_same_shape(pred, truth, "pred_inst and truth_inst")
    p, n_p = _relabel(pred)
    t, n_t = _relabel(truth)
    flat = t.ravel() * (n_p + 1) + p.ravel()
    matrix = np.bincount(flat, minlength=(n_t + 1) * (n_p + 1)).reshape(n_t + 1, n_p + 1)
    return _Overlap(truth=t, pred=p, matrix=matrix)


def _best_partner(inter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: column of maximal overlap and whether the row overlaps anything.

    Ties go to the lowest label, as with a mode over sorted labels.
    """
    if inter.shape[1] == 0:
        return np.zeros(inter.shape[0], dtype=np.intp), np.zeros(inter.shape[0], dtype=bool)
    return np.argmax(inter, axis=1), inter.max(axis=1) > 0


def _match(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of truth rows to prediction columns with IoU >= threshold.

    Maximises the number of matched pairs first and their summed IoU second
    (weights ``big + iou`` with ``big`` above any possible IoU sum), so the
    count is optimal even at thresholds below 0.5 where pairings conflict.
    """
    if iou.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    valid = (iou >= threshold) & (iou > 0)
    if not valid.any():
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    big = float(min(iou.shape) + 1)
    weight = np.where(valid, big + iou, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    keep = valid[rows, cols]
    return rows[keep], cols[keep]


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """F1, precision, recall; 1.0 for all three when there is nothing at all."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)
    return float(f1), float(precision), float(recall)


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
    p = _as_mask(pred_mask)
    t = _as_mask(truth_mask)
    _check_same_shape(p, t, "pred_mask and truth_mask")
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
    _check_same_shape(pred, truth, "pred and truth")
    counted = truth >= 0
    p = _as_label_image(pred[counted], "pred")
    t = _as_label_image(truth[counted], "truth")
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


# --------------------------------------------------------------------------- GlaS metrics


def object_f1(pred_inst: np.ndarray, truth_inst: np.ndarray) -> dict[str, float]:
    """Object-level F1 score of the GlaS challenge.

    Each segmented object is paired with the ground-truth object it overlaps
    most; it is a true positive when it covers more than 50 % of that
    ground-truth object's area. Every other segmented object is a false
    positive, and every ground-truth object without a true positive is a false
    negative. The strict ``> 50 %`` follows the challenge's evaluation code and
    guarantees that at most one segmented object is a true positive for a
    given ground-truth object.

    Parameters
    ----------
    pred_inst, truth_inst : ndarray
        Instance label images (0 = background) of the same shape.

    Returns
    -------
    dict
        ``f1``, ``precision``, ``recall`` (floats) and ``tp``, ``fp``, ``fn``
        (ints). With no object in either image all scores are ``1.0``.

    References
    ----------
    Sirinukunwattana et al., Medical Image Analysis 35 (2017), section 4.1.
    """
    ov = _contingency(pred_inst, truth_inst)
    # Rows = segmented objects, columns = ground-truth objects.
    inter = ov.intersection.T
    best, hit = _best_partner(inter)
    if ov.n_pred and ov.n_truth:
        covered = inter[np.arange(ov.n_pred), best] / ov.truth_area[best]
        tp = int(np.count_nonzero(hit & (covered > 0.5)))
    else:
        tp = 0
    fp = ov.n_pred - tp
    fn = ov.n_truth - tp
    f1, precision, recall = _f1(tp, fp, fn)
    return {"f1": f1, "precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn}


def object_dice(pred_inst: np.ndarray, truth_inst: np.ndarray) -> float:
    """Object-level Dice index of the GlaS challenge.

    .. math::

        D_{obj} = \\frac12 \\Big[\\sum_i \\gamma_i \\, D(G_i, S_*(G_i))
                  + \\sum_j \\tilde\\sigma_j \\, D(\\tilde G_*(S_j), S_j)\\Big]

    where ``G_i`` are ground-truth objects, ``S_j`` segmented objects,
    ``S_*(G)`` the segmented object that overlaps ``G`` most (and
    ``G_*(S)`` likewise), ``gamma_i = |G_i| / sum |G|`` and
    ``sigma_j = |S_j| / sum |S|``. An object that overlaps nothing in the other
    image contributes a Dice of 0.

    Parameters
    ----------
    pred_inst, truth_inst : ndarray
        Instance label images (0 = background) of the same shape.

    Returns
    -------
    float
        In ``[0, 1]``; ``1.0`` when both images are empty, ``0.0`` when only one
        of them is.
    """
    ov = _contingency(pred_inst, truth_inst)
    if ov.n_truth == 0 and ov.n_pred == 0:
        return 1.0
    if ov.n_truth == 0 or ov.n_pred == 0:
        return 0.0
    inter = ov.intersection
    a_t, a_p = ov.truth_area, ov.pred_area

    # Ground-truth side.
    best_p, hit_t = _best_partner(inter)
    i_t = inter[np.arange(ov.n_truth), best_p]
    d_t = np.where(hit_t, 2 * i_t / (a_t + a_p[best_p]), 0.0)
    # Prediction side.
    best_t, hit_p = _best_partner(inter.T)
    i_p = inter[best_t, np.arange(ov.n_pred)]
    d_p = np.where(hit_p, 2 * i_p / (a_p + a_t[best_t]), 0.0)

    return float(0.5 * (np.sum(a_t * d_t) / a_t.sum() + np.sum(a_p * d_p) / a_p.sum()))


def _hausdorff_pair(
    a: np.ndarray, b: np.ndarray, ia: int, ib: int, box_a: tuple, box_b: tuple
) -> float:
    """Exact Euclidean Hausdorff distance between objects ``ia`` of ``a`` and ``ib`` of ``b``.

    Works on the bounding box of the union of both objects: every point of
    either object lies in it, so the distance transforms there are exact and
    cost only the box area.
    """
    sl = tuple(
        slice(min(s.start, t.start), max(s.stop, t.stop)) for s, t in zip(box_a, box_b, strict=True)
    )
    ma = a[sl] == ia
    mb = b[sl] == ib
    # distance_transform_edt gives each non-zero pixel its distance to the nearest zero,
    # so the transform of ~mb is the distance to object b.
    h_ab = ndi.distance_transform_edt(~mb)[ma].max()
    h_ba = ndi.distance_transform_edt(~ma)[mb].max()
    return float(max(h_ab, h_ba))


class _Hausdorff:
    """Cached pairwise Hausdorff distances between objects of two dense label images."""

    def __init__(self, a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> None:
        self.a, self.b = a, b
        self.n_b = n_b
        self.boxes_a = ndi.find_objects(a, max_label=n_a)
        self.boxes_b = ndi.find_objects(b, max_label=n_b)
        self.area_b = np.bincount(b.ravel(), minlength=n_b + 1)
        self.cache: dict[tuple[int, int], float] = {}

    def __call__(self, i: int, j: int) -> float:
        """Distance between object ``i`` of ``a`` and ``j`` of ``b`` (1-based labels)."""
        key = (i, j)
        if key not in self.cache:
            self.cache[key] = _hausdorff_pair(
                self.a, self.b, i, j, self.boxes_a[i - 1], self.boxes_b[j - 1]
            )
        return self.cache[key]

    def nearest(self, i: int) -> float:
        """Smallest Hausdorff distance from object ``i`` of ``a`` to any object of ``b``.

        Branch and bound, so that only a few exact distances are computed and
        no full-image transform is needed. Inside a window around object
        ``i`` (its box grown by a margin ``m``) one distance transform gives,
        for every object of ``b``, its largest distance to ``i`` over its
        pixels in the window: a lower bound of the Hausdorff distance. A pixel
        outside the window is more than ``m`` away from ``i``, so an object
        reaching outside has a bound of at least ``m``. Exact distances are
        computed in increasing order of the bounds below ``m``; when the best
        one found is at most ``m`` no other object can beat it, otherwise the
        margin doubles and the search repeats (cached pairs are not redone).
        """
        box = self.boxes_a[i - 1]
        shape = self.a.shape
        margin = max(max(s.stop - s.start for s in box), 8)
        best = math.inf
        while True:
            window = tuple(
                slice(max(s.start - margin, 0), min(s.stop + margin, n))
                for s, n in zip(box, shape, strict=True)
            )
            covers_all = all(
                w.start == 0 and w.stop == n for w, n in zip(window, shape, strict=True)
            )
            dist = ndi.distance_transform_edt(self.a[window] != i)
            labels_w = self.b[window].ravel()
            lower = np.zeros(self.n_b + 1)
            np.maximum.at(lower, labels_w, dist.ravel())
            if not covers_all:
                outside = np.bincount(labels_w, minlength=self.n_b + 1) < self.area_b
                lower[outside] = np.maximum(lower[outside], margin)
            lower[0] = math.inf  # background is no candidate
            for j in np.argsort(lower, kind="stable"):
                if lower[j] >= best or (not covers_all and lower[j] >= margin):
                    break
                best = min(best, self(i, int(j)))
            if covers_all or best <= margin:
                return best
            margin *= 2


def object_hausdorff(pred_inst: np.ndarray, truth_inst: np.ndarray) -> float:
    """Object-level Hausdorff distance of the GlaS challenge, in pixels.

    .. math::

        H_{obj} = \\frac12 \\Big[\\sum_i \\gamma_i \\, H(G_i, S_*(G_i))
                  + \\sum_j \\tilde\\sigma_j \\, H(\\tilde G_*(S_j), S_j)\\Big]

    with the weights and the max-overlap partners of :func:`object_dice`. An
    object that overlaps nothing in the other image is paired, as in the
    challenge's evaluation code, with the object of the other image at the
    smallest Hausdorff distance. When the other image has no object at all the
    distance is the image diagonal ``sqrt(Y**2 + X**2)`` (the challenge code
    leaves this case undefined; the diagonal is an upper bound of any
    distance inside the image).

    Parameters
    ----------
    pred_inst, truth_inst : ndarray
        2-D instance label images (0 = background) of the same shape.

    Returns
    -------
    float
        Lower is better; ``0.0`` when both images are empty and the image
        diagonal when only one of them is.

    Notes
    -----
    Distances are Euclidean between pixel centres. Each pair is computed
    exactly with distance transforms on the bounding box of the pair only.
    """
    ov = _contingency(pred_inst, truth_inst)
    if ov.n_truth == 0 and ov.n_pred == 0:
        return 0.0
    if ov.n_truth == 0 or ov.n_pred == 0:
        return float(math.hypot(*ov.truth.shape))
    inter = ov.intersection
    a_t, a_p = ov.truth_area, ov.pred_area
    h_tp = _Hausdorff(ov.truth, ov.n_truth, ov.pred, ov.n_pred)
    h_pt = _Hausdorff(ov.pred, ov.n_pred, ov.truth, ov.n_truth)

    best_p, hit_t = _best_partner(inter)
    d_t = np.array(
        [
            h_tp(i + 1, int(best_p[i]) + 1) if hit_t[i] else h_tp.nearest(i + 1)
            for i in range(ov.n_truth)
        ]
    )
    best_t, hit_p = _best_partner(inter.T)
    d_p = np.array(
        [
            # Reuse the truth-side cache: H is symmetric.
            h_tp(int(best_t[j]) + 1, j + 1) if hit_p[j] else h_pt.nearest(j + 1)
            for j in range(ov.n_pred)
        ]
    )
    return float(0.5 * (np.sum(a_t * d_t) / a_t.sum() + np.sum(a_p * d_p) / a_p.sum()))


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
    ov = _contingency(pred_inst, truth_inst)
    rows, _ = _match(ov.iou(), iou_threshold)
    tp = int(rows.size)
    fp = ov.n_pred - tp
    fn = ov.n_truth - tp
    f1, precision, recall = _f1(tp, fp, fn)
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
    ov = _contingency(pred_inst, truth_inst)
    if ov.n_truth == 0 and ov.n_pred == 0:
        return 1.0
    a_t, a_p = ov.truth_area, ov.pred_area
    inter_sum = 0
    union_sum = 0
    used = np.zeros(ov.n_pred, dtype=bool)
    if ov.n_truth:
        best, hit = _best_partner(ov.iou())
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
    p = _as_mask(pred_interface)
    t = _as_mask(truth_interface)
    _check_same_shape(p, t, "pred_interface and truth_interface")
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
    ov = _contingency(pred_inst, truth_inst)
    if ov.truth.ndim != 2:
        raise ValueError(f"expected 2-D label images, got shape {ov.truth.shape}")
    touching = _touching_labels(ov.truth, int(touch_distance))
    n_touching = int(touching.sum())
    if n_touching == 0:
        return math.nan
    rows, _ = _match(ov.iou(), iou_threshold)
    return float(np.count_nonzero(touching[rows]) / n_touching)
