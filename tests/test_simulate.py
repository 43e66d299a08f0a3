"""Lazy-label simulation: invariants on small hand-made instance images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_lazyunet.evaluation.simulate import (
    depth_map,
    detection_from_instances,
    interface_scribbles,
    shrink_instances,
    touching_pairs,
)


def _scene() -> np.ndarray:
    """Two touching squares (1, 2), an isolated disc (3), a third square touching 2 (5)."""
    inst = np.zeros((60, 80), dtype=np.uint16)
    inst[5:25, 5:25] = 1
    inst[5:25, 25:45] = 2
    inst[25:40, 30:45] = 5
    yy, xx = np.mgrid[:60, :80]
    inst[(yy - 45) ** 2 + (xx - 65) ** 2 <= 8**2] = 3
    return inst


def _random_instances(seed: int, shape=(120, 140), n=30) -> np.ndarray:
    """Voronoi cells of random seeds inside a blob mask: many touching objects."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, dtype=np.int32)
    pts = (rng.uniform(0, 1, size=(n, 2)) * np.array(shape)).astype(int)
    seeds[pts[:, 0], pts[:, 1]] = np.arange(1, n + 1)
    dist, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    inst = seeds[iy, ix]
    inst[dist > 12] = 0
    return inst


def test_shrink_keeps_ids_dtype_and_fraction_in_range():
    inst = _random_instances(1)
    low, high = 0.3, 0.7
    out = shrink_instances(inst, (low, high), seed=3)
    assert out.shape == inst.shape and out.dtype == inst.dtype
    ids = set(np.unique(inst)) - {0}
    assert set(np.unique(out)) - {0} == ids
    for i in ids:
        area = np.count_nonzero(inst == i)
        kept = np.count_nonzero(out == i)
        assert kept >= 1
        # rounding may move the count by half a pixel either way
        assert low * area - 1 <= kept <= high * area + 1
        assert np.all(inst[out == i] == i), "inner region must lie inside its object"


def test_shrink_keeps_the_deepest_pixels():
    inst = np.zeros((41, 41), dtype=np.int32)
    inst[5:36, 5:36] = 7
    out = shrink_instances(inst, (0.1, 0.1), seed=0)
    assert out[20, 20] == 7  # centre is deepest
    assert out[5, 5] == 0 and out[5, 20] == 0  # the rim goes first
    depth = depth_map(inst)
    assert depth[out == 7].min() >= depth[(inst == 7) & (out == 0)].max()


def test_shrink_is_seeded_and_does_not_modify_input():
    inst = _random_instances(2)
    before = inst.copy()
    a = shrink_instances(inst, seed=11)
    b = shrink_instances(inst, seed=11)
    c = shrink_instances(inst, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(inst, before)


def test_shrink_never_empties_tiny_objects():
    inst = np.zeros((10, 10), dtype=np.uint8)
    inst[2, 2] = 1
    inst[5:7, 5:7] = 2
    out = shrink_instances(inst, (0.3, 0.3))
    assert out[2, 2] == 1
    assert np.count_nonzero(out == 2) == 1


def test_shrink_shrinks_away_from_contacts():
    inst = _scene()
    out = shrink_instances(inst, (0.3, 0.3))
    # squares 1 and 2 touch along column 24/25: neither inner region reaches it
    assert not np.any(out[:, 24:26] != 0)


def test_shrink_empty_and_bad_inputs():
    assert not np.any(shrink_instances(np.zeros((5, 5), dtype=np.int32)))
    with pytest.raises(ValueError, match="fraction_range"):
        shrink_instances(_scene(), (0.0, 0.5))
    with pytest.raises(ValueError, match="integer"):
        shrink_instances(_scene().astype(float))
    with pytest.raises(ValueError, match=r"\(Y, X\)"):
        shrink_instances(np.zeros((2, 5, 5), dtype=np.int32))


def test_detection_classes_from_dict_image_and_default():
    inst = _scene()
    det = detection_from_instances(inst, {1: 1, 2: 2, 3: 1, 5: 2}, seed=0)
    assert det.dtype == np.uint8
    inner = shrink_instances(inst, seed=0)
    np.testing.assert_array_equal(det != 0, inner != 0)
    assert set(np.unique(det[inst == 2])) <= {0, 2}
    assert set(np.unique(det[inst == 3])) <= {0, 1}

    class_image = np.where(np.isin(inst, [2, 5]), 2, np.where(inst > 0, 1, 0))
    np.testing.assert_array_equal(detection_from_instances(inst, class_image, seed=0), det)
    assert set(np.unique(detection_from_instances(inst))) == {0, 1}
    with pytest.raises(ValueError, match="no class"):
        detection_from_instances(inst, {1: 1})


def test_touching_pairs():
    inst = _scene()
    assert touching_pairs(inst) == {(1, 2), (2, 5)}
    diag = np.zeros((4, 4), dtype=np.int32)
    diag[0, 0], diag[1, 1], diag[3, 3] = 4, 2, 9
    assert touching_pairs(diag) == {(2, 4)}
    assert touching_pairs(np.zeros((3, 3), dtype=np.int32)) == set()


def test_interface_scribbles_only_between_touching_objects():
    inst = _scene()
    before = inst.copy()
    sep = interface_scribbles(inst, distance=2)
    assert sep.dtype == np.uint8 and set(np.unique(sep)) == {0, 1}
    np.testing.assert_array_equal(inst, before)
    # on the contact line of 1 and 2, and of 2 and 5
    assert sep[15, 24] == 1 and sep[15, 25] == 1
    assert sep[24, 35] == 1 and sep[25, 35] == 1
    # never on the isolated disc, never far from a contact
    assert not np.any(sep[inst == 3])
    assert not np.any(sep[:, :20])
    ys, xs = np.nonzero(sep)
    contacts = np.zeros_like(sep, dtype=bool)
    contacts[:, 24:26] = True
    contacts[24:26, :] = True
    near = np.zeros_like(contacts)
    for y, x in zip(ys, xs, strict=True):
        near[y, x] = contacts[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3].any()
    assert near[sep == 1].all()


def test_interface_scribbles_ignore_objects_across_a_gap():
    inst = np.zeros((20, 20), dtype=np.int32)
    inst[:, :9] = 1
    inst[:, 11:] = 2  # two-pixel gap: visible boundary, no scribble
    assert not np.any(interface_scribbles(inst, distance=3))
    inst[:, 9] = 1
    inst[:, 10] = 2
    sep = interface_scribbles(inst, distance=1)
    assert np.all(sep[:, 9:11] == 1) and not np.any(sep[:, :9]) and not np.any(sep[:, 11:])
    with pytest.raises(ValueError, match="distance"):
        interface_scribbles(inst, distance=0)


def test_simulation_of_a_large_dense_image():
    inst = _random_instances(5, shape=(520, 696), n=120)
    inner = shrink_instances(inst)
    assert inner.shape == inst.shape
    # Every inner region lies inside its own object.
    painted = inner > 0
    np.testing.assert_array_equal(inner[painted], inst[painted])
    sep = interface_scribbles(inst)
    assert sep.shape == inst.shape and set(np.unique(sep)) <= {0, 1}
    ids = set(np.unique(inst).tolist())
    pairs = touching_pairs(inst)
    assert pairs and all(0 < a < b and {a, b} <= ids for a, b in pairs)
