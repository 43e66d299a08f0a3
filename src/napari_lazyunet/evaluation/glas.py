"""The GlaS challenge's object metrics: object F1, object Dice and object Hausdorff distance
(Sirinukunwattana et al., Medical Image Analysis 2017)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from .matching import (
    best_partner,
    contingency,
    f1_scores,
)


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
    ov = contingency(pred_inst, truth_inst)
    # Rows = segmented objects, columns = ground-truth objects.
    inter = ov.intersection.T
    best, hit = best_partner(inter)
    if ov.n_pred and ov.n_truth:
        covered = inter[np.arange(ov.n_pred), best] / ov.truth_area[best]
        tp = int(np.count_nonzero(hit & (covered > 0.5)))
    else:
        tp = 0
    fp = ov.n_pred - tp
    fn = ov.n_truth - tp
    f1, precision, recall = f1_scores(tp, fp, fn)
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
    ov = contingency(pred_inst, truth_inst)
    if ov.n_truth == 0 and ov.n_pred == 0:
        return 1.0
    if ov.n_truth == 0 or ov.n_pred == 0:
        return 0.0
    inter = ov.intersection
    a_t, a_p = ov.truth_area, ov.pred_area

    # Ground-truth side.
    best_p, hit_t = best_partner(inter)
    i_t = inter[np.arange(ov.n_truth), best_p]
    d_t = np.where(hit_t, 2 * i_t / (a_t + a_p[best_p]), 0.0)
    # Prediction side.
    best_t, hit_p = best_partner(inter.T)
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
    ov = contingency(pred_inst, truth_inst)
    if ov.n_truth == 0 and ov.n_pred == 0:
        return 0.0
    if ov.n_truth == 0 or ov.n_pred == 0:
        return float(math.hypot(*ov.truth.shape))
    inter = ov.intersection
    a_t, a_p = ov.truth_area, ov.pred_area
    h_tp = _Hausdorff(ov.truth, ov.n_truth, ov.pred, ov.n_pred)
    h_pt = _Hausdorff(ov.pred, ov.n_pred, ov.truth, ov.n_truth)

    best_p, hit_t = best_partner(inter)
    d_t = np.array(
        [
            h_tp(i + 1, int(best_p[i]) + 1) if hit_t[i] else h_tp.nearest(i + 1)
            for i in range(ov.n_truth)
        ]
    )
    best_t, hit_p = best_partner(inter.T)
    d_p = np.array(
        [
            # Reuse the truth-side cache: H is symmetric.
            h_tp(int(best_t[j]) + 1, j + 1) if hit_p[j] else h_pt.nearest(j + 1)
            for j in range(ov.n_pred)
        ]
    )
    return float(0.5 * (np.sum(a_t * d_t) / a_t.sum() + np.sum(a_p * d_p) / a_p.sum()))
