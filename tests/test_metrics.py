"""Metrics on tiny hand-made label images whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from napari_lazyunet.evaluation.metrics import (
    aggregated_jaccard_index,
    dice,
    dice_per_class,
    instance_f1,
    interface_precision_recall,
    object_dice,
    object_f1,
    object_hausdorff,
    pool_interface_scores,
    touching_objects_recognised,
)


def _glas_pair() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: G1, G2 squares of 16 px. Prediction: P1 (12 px, 3/4 of G1),
    P2 (8 px, exactly 1/2 of G2), P3 (4 px, overlaps nothing)."""
    truth = np.zeros((10, 12), dtype=np.int32)
    truth[0:4, 0:4] = 1
    truth[0:4, 6:10] = 2
    pred = np.zeros_like(truth)
    pred[0:3, 0:4] = 5
    pred[0:2, 6:10] = 7
    pred[6:8, 0:2] = 9
    return pred, truth


# ------------------------------------------------------------------ pixel Dice


def test_dice_of_half_overlapping_squares():
    pred = np.zeros((4, 4), bool)
    truth = np.zeros((4, 4), bool)
    pred[0:2, 0:2] = True  # 4 px
    truth[0:2, 1:3] = True  # 4 px, 2 px shared: 2 * 2 / (4 + 4) = 0.5
    assert dice(pred, truth) == pytest.approx(0.5)


def test_dice_empty_conventions():
    empty = np.zeros((3, 3), int)
    full = np.ones((3, 3), int)
    assert dice(empty, empty) == 1.0
    assert dice(full, empty) == 0.0


def test_dice_per_class_values():
    pred = np.array([[0, 1, 1, 2, 2, 0]])
    truth = np.array([[0, 1, 2, 2, 2, 1]])
    # class 1: pred {1, 2}, truth {1, 5}, 1 shared -> 2 / 4
    # class 2: pred {3, 4}, truth {2, 3, 4}, 2 shared -> 4 / 5
    # class 3: absent from both -> 1.0 by definition
    assert dice_per_class(pred, truth, 3) == pytest.approx({1: 0.5, 2: 0.8, 3: 1.0})


def test_dice_per_class_ignores_negative_truth():
    pred = np.array([[0, 1, 1, 2, 2, 0]])
    truth = np.array([[0, 1, 2, 2, 2, -1]])
    # pixel 5 left out: class 1 truth {1} vs pred {1, 2} -> 2 / 3
    assert dice_per_class(pred, truth, 2)[1] == pytest.approx(2 / 3)


def test_dice_per_class_rejects_unknown_class():
    with pytest.raises(ValueError, match="n_classes"):
        dice_per_class(np.array([[3]]), np.array([[1]]), 2)


# ------------------------------------------------------------------ GlaS object metrics


def test_object_f1_counts_and_strict_half():
    pred, truth = _glas_pair()
    # P1 covers 12/16 of G1 -> TP; P2 covers exactly 8/16 of G2 -> not > 50 %, FP;
    # P3 -> FP. G2 -> FN. precision 1/3, recall 1/2, F1 = 2 / (2 + 2 + 1).
    result = object_f1(pred, truth)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 2, 1)
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 2)
    assert result["f1"] == pytest.approx(0.4)
    # One more pixel makes P2 cover 9/16 of G2 -> TP.
    pred[2, 6] = 7
    assert object_f1(pred, truth)["tp"] == 2


def test_object_f1_pairs_with_max_overlap_object():
    truth = np.zeros((4, 10), int)
    truth[:, 0:4] = 1  # 16 px
    truth[:, 4:10] = 2  # 24 px
    pred = np.zeros_like(truth)
    # 8 px on G1 (1/2, not enough) and 12 px on G2: paired with G2, of which it
    # covers 12/24 = 1/2 -> FP. With 13 px on G2 it is a TP for G2.
    pred[:, 2:7] = 1
    assert object_f1(pred, truth)["tp"] == 0
    pred[0, 7] = 1
    result = object_f1(pred, truth)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 0, 1)


def test_object_dice_weighted_two_sided():
    pred, truth = _glas_pair()
    # Truth side (weights 16/32 each): G1-P1 Dice 24/28 = 6/7, G2-P2 Dice 16/24 = 2/3
    #   -> 3/7 + 1/3 = 16/21.
    # Prediction side (weights 12/24, 8/24, 4/24): 6/7, 2/3, 0 (P3 unmatched)
    #   -> 3/7 + 2/9 = 41/63.
    # Object Dice = (48/63 + 41/63) / 2 = 89/126.
    assert object_dice(pred, truth) == pytest.approx(89 / 126)


def test_object_dice_perfect_and_empty():
    pred, truth = _glas_pair()
    assert object_dice(truth, truth) == pytest.approx(1.0)
    empty = np.zeros_like(truth)
    assert object_dice(empty, empty) == 1.0
    assert object_dice(empty, truth) == 0.0
    assert object_dice(pred, empty) == 0.0


def test_object_hausdorff_of_shifted_squares_is_the_shift():
    truth = np.zeros((10, 12), int)
    truth[2:6, 2:6] = 1
    pred = np.zeros_like(truth)
    pred[2:6, 5:9] = 1  # same square 3 px to the right
    assert object_hausdorff(pred, truth) == pytest.approx(3.0)
    assert object_hausdorff(truth, truth) == 0.0


def test_object_hausdorff_unmatched_takes_nearest_object():
    truth = np.zeros((5, 40), int)
    truth[0:3, 0:3] = 1
    truth[0:3, 30:33] = 2
    pred = np.zeros_like(truth)
    pred[0:3, 0:3] = 1  # = G1
    pred[0:3, 10:13] = 2  # overlaps nothing: G1 is 10 px away, G2 20 px
    # Truth side (weights 1/2): G1-P1 0; G2 unmatched, nearest P2 at 20 -> 10.
    # Prediction side (weights 1/2): P1-G1 0; P2 unmatched, nearest G1 at 10 -> 5.
    # H = (10 + 5) / 2.
    assert object_hausdorff(pred, truth) == pytest.approx(7.5)


def test_object_hausdorff_nearest_object_far_outside_first_window():
    # Single pixels: P2 at (60, 60) overlaps nothing; its nearest truth object is
    # G2 at (99, 60), 39 px away (G1 is 84.9 px away), far beyond the first search
    # window. G2 in turn is nearest to P2 (P1 is 115.8 px away).
    truth = np.zeros((100, 100), int)
    pred = np.zeros_like(truth)
    truth[0, 0] = 1
    truth[99, 60] = 2
    pred[0, 0] = 1
    pred[60, 60] = 2
    # Truth side: (0 + 39) / 2; prediction side: (0 + 39) / 2; H = 19.5.
    assert object_hausdorff(pred, truth) == pytest.approx(19.5)


def test_object_hausdorff_empty_conventions():
    truth = np.zeros((3, 4), int)
    truth[1, 1] = 1
    empty = np.zeros_like(truth)
    assert object_hausdorff(empty, empty) == 0.0
    assert object_hausdorff(empty, truth) == pytest.approx(5.0)  # diagonal of 3 x 4


def _brute_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    d = cdist(np.argwhere(a), np.argwhere(b))
    return max(d.min(axis=1).max(), d.min(axis=0).max())


def _brute_side(a: np.ndarray, b: np.ndarray, measure: str) -> float:
    """One side of the GlaS sums, written the slow, obvious way."""
    total = np.count_nonzero(a)
    acc = 0.0
    for label in np.unique(a[a > 0]):
        obj = a == label
        hits = b[obj & (b > 0)]
        if hits.size:
            values, counts = np.unique(hits, return_counts=True)
            other = b == values[np.argmax(counts)]
            if measure == "dice":
                value = 2 * np.count_nonzero(obj & other) / (obj.sum() + other.sum())
            else:
                value = _brute_hausdorff(obj, other)
        elif measure == "dice":
            value = 0.0
        else:
            value = min(_brute_hausdorff(obj, b == m) for m in np.unique(b[b > 0]))
        acc += obj.sum() / total * value
    return acc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_object_metrics_agree_with_brute_force(seed):
    rng = np.random.default_rng(seed)

    def blobs(n: int) -> np.ndarray:
        out = np.zeros((40, 50), int)
        for label in range(1, n + 1):
            y, x = rng.integers(0, 40), rng.integers(0, 50)
            h, w = rng.integers(2, 9, size=2)
            out[y : y + h, x : x + w] = label * 3  # non-consecutive labels on purpose
        return out

    pred, truth = blobs(7), blobs(6)
    expected_h = 0.5 * (_brute_side(truth, pred, "h") + _brute_side(pred, truth, "h"))
    expected_d = 0.5 * (_brute_side(truth, pred, "dice") + _brute_side(pred, truth, "dice"))
    assert object_hausdorff(pred, truth) == pytest.approx(expected_h)
    assert object_dice(pred, truth) == pytest.approx(expected_d)


# ------------------------------------------------------------------ instance metrics


def test_instance_f1_threshold():
    truth = np.zeros((4, 12), int)
    truth[:, 0:4] = 1
    truth[:, 6:10] = 2
    pred = np.zeros_like(truth)
    pred[:, 1:4] = 1  # IoU 12 / 16 = 0.75 with G1
    pred[:, 8:12] = 2  # IoU 8 / 24 = 1/3 with G2
    result = instance_f1(pred, truth)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 1, 1)
    assert result["f1"] == pytest.approx(0.5)
    assert instance_f1(pred, truth, iou_threshold=0.3)["f1"] == pytest.approx(1.0)


def test_instance_f1_is_one_to_one():
    truth = np.zeros((2, 4), int)
    truth[:, 0:2] = 1
    truth[:, 2:4] = 2
    pred = np.ones_like(truth)  # IoU 4 / 8 = 0.5 with each truth object
    result = instance_f1(pred, truth, iou_threshold=0.5)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 0, 1)


def test_instance_f1_empty():
    empty = np.zeros((3, 3), int)
    assert instance_f1(empty, empty)["f1"] == 1.0
    one = empty.copy()
    one[1, 1] = 4
    assert instance_f1(one, empty)["precision"] == 0.0
    assert instance_f1(empty, one)["recall"] == 0.0


def test_aggregated_jaccard_index_by_hand():
    truth = np.zeros((8, 12), int)
    truth[0:4, 0:4] = 1  # 16 px
    truth[0:4, 6:10] = 2  # 16 px, no prediction on it
    pred = np.zeros_like(truth)
    pred[0:4, 0:2] = 1  # 8 px inside G1: I = 8, U = 16
    pred[6:8, 6:8] = 2  # 4 px, unused
    # C = 8; U = 16 (G1 | P1) + 16 (G2 alone) + 4 (unused P2) = 36
    assert aggregated_jaccard_index(pred, truth) == pytest.approx(8 / 36)


def test_aggregated_jaccard_index_penalises_merges():
    truth = np.zeros((2, 4), int)
    truth[:, 0:2] = 1
    truth[:, 2:4] = 2
    pred = np.ones_like(truth)
    # Both truth objects pair with the one prediction: C = 4 + 4, U = 8 + 8.
    assert aggregated_jaccard_index(pred, truth) == pytest.approx(0.5)
    assert aggregated_jaccard_index(truth, truth) == pytest.approx(1.0)
    empty = np.zeros_like(truth)
    assert aggregated_jaccard_index(empty, empty) == 1.0
    assert aggregated_jaccard_index(pred, empty) == 0.0


def test_metrics_do_not_depend_on_label_values():
    pred, truth = _glas_pair()
    # Permute and spread label values: every metric must be unchanged.
    pred2 = np.choose(pred, np.r_[0, np.arange(1, 10) * 1000])
    truth2 = np.where(truth == 1, 77, np.where(truth == 2, 3, 0))
    assert object_dice(pred2, truth2) == pytest.approx(object_dice(pred, truth))
    assert object_hausdorff(pred2, truth2) == pytest.approx(object_hausdorff(pred, truth))
    assert aggregated_jaccard_index(pred2, truth2) == pytest.approx(
        aggregated_jaccard_index(pred, truth)
    )
    assert object_f1(pred2, truth2) == object_f1(pred, truth)


def test_metrics_leave_inputs_unchanged():
    pred, truth = _glas_pair()
    pred_copy, truth_copy = pred.copy(), truth.copy()
    for metric in (
        object_f1,
        object_dice,
        object_hausdorff,
        instance_f1,
        aggregated_jaccard_index,
        touching_objects_recognised,
    ):
        metric(pred, truth)
    interface_precision_recall(pred > 0, truth > 0)
    np.testing.assert_array_equal(pred, pred_copy)
    np.testing.assert_array_equal(truth, truth_copy)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        object_dice(np.zeros((3, 3), int), np.zeros((3, 4), int))


# ------------------------------------------------------------------ interfaces


def test_interface_precision_recall_tolerance():
    truth = np.zeros((10, 12), bool)
    truth[:, 5] = True  # 10 px
    pred = np.zeros_like(truth)
    pred[:, 7] = True  # 10 px, 2 px from the truth
    pred[0, 0] = True  # stray pixel, 5 px from the truth
    result = interface_precision_recall(pred, truth, tolerance=2)
    assert result["precision"] == pytest.approx(10 / 11)
    assert result["recall"] == pytest.approx(1.0)
    assert result["f1"] == pytest.approx(20 / 21)
    assert (result["n_pred"], result["pred_correct"]) == (11, 10)
    assert (result["n_truth"], result["truth_found"]) == (10, 10)
    strict = interface_precision_recall(pred, truth, tolerance=1)
    assert (strict["precision"], strict["recall"], strict["f1"]) == (0.0, 0.0, 0.0)


def test_interface_precision_recall_empty_conventions():
    empty = np.zeros((4, 4), bool)
    line = empty.copy()
    line[:, 1] = True

    def scores(pred, truth):
        result = interface_precision_recall(pred, truth)
        return result["precision"], result["recall"], result["f1"]

    assert scores(empty, empty) == (1.0, 1.0, 1.0)
    assert scores(empty, line) == (1.0, 0.0, 0.0)
    assert scores(line, empty) == (0.0, 1.0, 0.0)


def test_pooled_interface_scores_count_pixels_not_images():
    truth = np.zeros((10, 12), bool)
    truth[:, 5] = True
    good = interface_precision_recall(truth.copy(), truth)  # perfect, 10 px
    nothing = interface_precision_recall(np.zeros_like(truth), truth)  # precision 1 by convention
    stray = np.zeros_like(truth)
    stray[:, 0] = True  # 10 wrong pixels on an image without interfaces
    wrong = interface_precision_recall(stray, np.zeros_like(truth))
    pooled = pool_interface_scores([good, nothing, wrong])
    assert pooled["precision"] == pytest.approx(10 / 20)
    assert pooled["recall"] == pytest.approx(10 / 20)
    # The per-image mean would have said precision 2/3 and recall 2/3.
    per_image = [good["precision"], nothing["precision"], wrong["precision"]]
    assert np.mean(per_image) == pytest.approx(2 / 3)
    assert pool_interface_scores([nothing])["precision"] == 1.0


# ------------------------------------------------------------------ touching objects


def test_touching_objects_recognised_fraction():
    truth = np.zeros((10, 10), int)
    truth[0:4, 0:4] = 1
    truth[0:4, 4:8] = 2  # shares a side with G1
    truth[8:10, 8:10] = 3  # isolated: does not count, found or not
    pred = np.zeros_like(truth)
    pred[0:4, 0:4] = 1  # G1 found (IoU 1)
    pred[0:1, 4:8] = 2  # G2 missed (IoU 4 / 16)
    assert touching_objects_recognised(pred, truth) == pytest.approx(0.5)
    pred[0:4, 4:8] = 2
    assert touching_objects_recognised(pred, truth) == pytest.approx(1.0)


def test_touching_objects_merged_prediction_recognises_at_most_one():
    truth = np.zeros((4, 8), int)
    truth[:, 0:4] = 1
    truth[:, 4:8] = 2
    merged = (truth > 0).astype(int)  # IoU 1/2 with each, one-to-one -> one found
    assert touching_objects_recognised(merged, truth) == pytest.approx(0.5)


def test_touching_distance_and_diagonals():
    diagonal = np.zeros((4, 4), int)
    diagonal[0:2, 0:2] = 1
    diagonal[2:4, 2:4] = 2  # corners meet: touching in the 8-neighbourhood
    assert touching_objects_recognised(diagonal, diagonal) == pytest.approx(1.0)

    gap = np.zeros((4, 9), int)
    gap[:, 0:4] = 1
    gap[:, 5:9] = 2  # one background column in between
    assert math.isnan(touching_objects_recognised(gap, gap))
    assert touching_objects_recognised(gap, gap, touch_distance=2) == pytest.approx(1.0)
