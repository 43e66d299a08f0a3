"""Instances from segmentation / separation / detection maps on tiny hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lazyunet.core.instances import instances_from_outputs

YY, XX = np.mgrid[:30, :50]
# Two discs of radius 10 whose centres are 18 px apart: they overlap in a thin lens,
# so the union is one connected blob with a neck at x = 24.
LEFT = (YY - 15) ** 2 + (XX - 15) ** 2 <= 100
RIGHT = (YY - 15) ** 2 + (XX - 33) ** 2 <= 100
BLOB = LEFT | RIGHT


def _seeds() -> np.ndarray:
    """Detection: a small inner disc (radius 4) in each of the two discs."""
    det = np.zeros(BLOB.shape, np.uint8)
    det[(YY - 15) ** 2 + (XX - 15) ** 2 <= 16] = 1
    det[(YY - 15) ** 2 + (XX - 33) ** 2 <= 16] = 1
    return det


def _interface() -> np.ndarray:
    sep = np.zeros(BLOB.shape, np.uint8)
    sep[:, 24] = 1
    return sep & BLOB


def _assert_two_discs(instances: np.ndarray) -> None:
    assert instances.dtype == np.int32
    assert set(np.unique(instances)) == {0, 1, 2}
    # Every foreground pixel is assigned and nothing outside the foreground is.
    np.testing.assert_array_equal(instances > 0, BLOB)
    left_label, right_label = instances[15, 15], instances[15, 33]
    assert left_label != right_label
    # Each instance is (almost) its disc: only the 11-px lens may go either way.
    assert np.count_nonzero((instances == left_label) & ~LEFT) == 0
    assert np.count_nonzero((instances == right_label) & ~RIGHT) == 0
    assert np.count_nonzero((instances == left_label) ^ (LEFT & ~RIGHT)) <= np.count_nonzero(
        LEFT & RIGHT
    )


def test_without_any_cue_touching_discs_stay_one_object():
    instances, classes = instances_from_outputs(BLOB.astype(np.uint8))
    assert set(np.unique(instances)) == {0, 1}
    assert classes == {1: 1}


def test_separation_line_splits_touching_discs():
    instances, classes = instances_from_outputs(BLOB.astype(np.uint8), separation=_interface())
    _assert_two_discs(instances)
    assert classes == {1: 1, 2: 1}


def test_detection_seeds_split_touching_discs_without_interface():
    instances, _ = instances_from_outputs(BLOB.astype(np.uint8), detection=_seeds())
    _assert_two_discs(instances)
    # The watershed on the distance transform cuts at the neck (x = 24).
    assert instances[15, 22] == instances[15, 15]
    assert instances[15, 26] == instances[15, 33]


def test_one_detection_seed_does_not_lose_the_other_object_when_interface_given():
    det = _seeds()
    det[:, 25:] = 0  # detection missed the right disc
    instances, _ = instances_from_outputs(
        BLOB.astype(np.uint8), separation=_interface(), detection=det
    )
    _assert_two_discs(instances)


def test_inputs_are_not_modified():
    seg = BLOB.astype(np.uint8)
    sep = _interface()
    det = _seeds()
    copies = [seg.copy(), sep.copy(), det.copy()]
    instances_from_outputs(seg, separation=sep, detection=det)
    for original, copy in zip((seg, sep, det), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_class_is_the_majority_of_the_segmentation():
    seg = np.zeros((10, 20), np.uint8)
    seg[1:9, 1:9] = 2
    seg[1:3, 1:9] = 1  # 16 of 64 px say class 1, 48 say class 2
    seg[1:9, 11:19] = 1
    seg[8, 11:19] = 3  # 8 of 64 px say class 3
    instances, classes = instances_from_outputs(seg, min_size=1)
    assert classes[int(instances[5, 5])] == 2
    assert classes[int(instances[5, 15])] == 1
    assert len(classes) == 2


def test_min_size_drops_specks_and_labels_are_consecutive():
    seg = np.zeros((20, 20), np.uint8)
    seg[0:5, 0:5] = 1  # 25 px
    seg[10:12, 10:12] = 1  # 4 px speck
    seg[15:20, 15:20] = 1  # 25 px
    instances, classes = instances_from_outputs(seg, min_size=10)
    assert instances[10, 10] == 0
    assert set(np.unique(instances)) == {0, 1, 2}
    assert set(classes) == {1, 2}
    kept, _ = instances_from_outputs(seg, min_size=1)
    assert kept[10, 10] > 0
    assert kept.max() == 3


def test_crumb_cut_off_by_the_interface_joins_its_neighbour():
    seg = np.zeros((10, 20), np.uint8)
    seg[0:10, 0:20] = 1
    sep = np.zeros_like(seg)
    sep[:, 10] = 1  # real interface: two objects of 100 / 90 px
    sep[2, 0:3] = 1
    sep[0:2, 3] = 1  # ragged scribble cutting off a 6-px crumb in the corner
    instances, _ = instances_from_outputs(seg, separation=sep, min_size=10)
    assert set(np.unique(instances)) == {1, 2}  # no background, no third object
    assert instances[0, 0] == instances[5, 5]


def test_empty_segmentation_gives_no_instance():
    instances, classes = instances_from_outputs(np.zeros((5, 5), np.uint8))
    assert instances.dtype == np.int32
    assert not instances.any()
    assert classes == {}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        instances_from_outputs(np.ones((5, 5), np.uint8), separation=np.zeros((5, 6), np.uint8))


def _wide_object_with_two_seeds() -> tuple[np.ndarray, np.ndarray]:
    """A 40 x 100 rectangle (no neck anywhere) and two detection blobs far apart in it."""
    seg = np.zeros((60, 120), np.uint8)
    seg[10:50, 10:110] = 1
    det = np.zeros_like(seg)
    det[25:35, 25:35] = 1
    det[25:35, 85:95] = 1
    return seg, det


def test_two_seeds_in_one_wide_object_do_not_cut_it():
    # One large object (no neck) with two detection blobs and no interface:
    # the seeds alone are no evidence of two objects.
    seg, det = _wide_object_with_two_seeds()
    inst, _ = instances_from_outputs(seg, None, det, min_size=5)
    assert inst.max() == 1
    # The old rule (split by any seeds) cuts it in two.
    inst_old, _ = instances_from_outputs(seg, None, det, min_size=5, neck_ratio=None)
    assert inst_old.max() == 2


def test_two_seeds_of_touching_discs_split_at_the_neck():
    yy, xx = np.mgrid[:60, :100]
    seg = ((np.hypot(yy - 30, xx - 30) <= 20) | (np.hypot(yy - 30, xx - 66) <= 20)).astype(np.uint8)
    det = ((np.hypot(yy - 30, xx - 30) <= 8) | (np.hypot(yy - 30, xx - 66) <= 8)).astype(np.uint8)
    inst, _ = instances_from_outputs(seg, None, det, min_size=5)
    assert inst.max() == 2


def test_a_partial_interface_supports_a_split_without_a_neck():
    seg, det = _wide_object_with_two_seeds()
    sep = np.zeros_like(seg)
    sep[10:50:2, 60] = 1  # a dashed interface line: gaps everywhere, so no cut on its own
    inst, _ = instances_from_outputs(seg, sep, det, min_size=5)
    assert inst.max() == 2
