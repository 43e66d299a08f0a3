"""Matching predicted objects to true ones: the overlaps every object metric is computed from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def as_label_image(array: np.ndarray, name: str) -> np.ndarray:
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


def check_same_shape(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {a.shape} and {b.shape}")


def as_mask(array: np.ndarray) -> np.ndarray:
    return np.asarray(array) != 0


def relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map arbitrary labels to ``0..n`` (0 stays background); return the map and ``n``."""
    ids = np.unique(labels)
    if ids.size == 0 or ids[0] != 0:
        ids = np.concatenate([[0], ids]).astype(ids.dtype)
    # searchsorted gives the position of each value in the sorted ids: a dense relabelling.
    return np.searchsorted(ids, labels).astype(np.intp), ids.size - 1


@dataclass(frozen=True)
class Overlap:
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


def contingency(pred_inst: np.ndarray, truth_inst: np.ndarray) -> Overlap:
    pred = as_label_image(pred_inst, "pred_inst")
    truth = as_label_image(truth_inst, "truth_inst")
    check_same_shape(pred, truth, "pred_inst and truth_inst")
    p, n_p = relabel(pred)
    t, n_t = relabel(truth)
    flat = t.ravel() * (n_p + 1) + p.ravel()
    matrix = np.bincount(flat, minlength=(n_t + 1) * (n_p + 1)).reshape(n_t + 1, n_p + 1)
    return Overlap(truth=t, pred=p, matrix=matrix)


def best_partner(inter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: column of maximal overlap and whether the row overlaps anything.

    Ties go to the lowest label, as with a mode over sorted labels.
    """
    if inter.shape[1] == 0:
        return np.zeros(inter.shape[0], dtype=np.intp), np.zeros(inter.shape[0], dtype=bool)
    return np.argmax(inter, axis=1), inter.max(axis=1) > 0


def match_pairs(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
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


def f1_scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """F1, precision, recall; 1.0 for all three when there is nothing at all."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)
    return float(f1), float(precision), float(recall)
