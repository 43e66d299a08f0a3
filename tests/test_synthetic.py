"""The synthetic foam sample: shapes, reproducibility and consistency of its labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_lazyunet.evaluation.simulate import touching_pairs
from napari_lazyunet.sample.synthetic import FoamSample, make_foam_image, make_foam_sample


@pytest.fixture(scope="module")
def sample() -> FoamSample:
    return make_foam_sample(n_images=3, shape=(160, 192), seed=4)


def test_shapes_and_dtypes(sample):
    assert len(sample) == 3 and sample.class_names == ("bubble", "crystal")
    assert sample.n_classes == 2
    for name, dtype in [
        ("images", np.uint8),
        ("instances", np.uint16),
        ("classes", np.uint8),
        ("detection", np.uint8),
        ("separation", np.uint8),
    ]:
        arrays = getattr(sample, name)
        assert len(arrays) == 3
        for array in arrays:
            assert array.shape == (160, 192) and array.dtype == dtype, name
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.images = []  # type: ignore[misc]


def test_reproducible_and_prefix_stable(sample):
    again = make_foam_sample(n_images=3, shape=(160, 192), seed=4)
    shorter = make_foam_sample(n_images=1, shape=(160, 192), seed=4)
    other = make_foam_sample(n_images=1, shape=(160, 192), seed=5)
    for name in ("images", "instances", "detection", "separation"):
        for a, b in zip(getattr(sample, name), getattr(again, name), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(getattr(sample, name)[0], getattr(shorter, name)[0])
    assert not np.array_equal(sample.images[0], other.images[0])
    assert not np.array_equal(sample.images[0], sample.images[1])


def test_classes_consistent_with_instances(sample):
    for inst, cls in zip(sample.instances, sample.classes, strict=True):
        np.testing.assert_array_equal(inst > 0, cls > 0)
        ids = np.unique(inst)[1:]
        np.testing.assert_array_equal(ids, np.arange(1, ids.size + 1))  # sequential ids
        assert 15 <= ids.size <= 45
        for i in ids:
            assert np.unique(cls[inst == i]).size == 1, "one class per instance"
        assert set(np.unique(cls)) == {0, 1, 2}


def test_dense_touching_foam(sample):
    for inst, cls in zip(sample.instances, sample.classes, strict=True):
        pairs = touching_pairs(inst)
        touching = {i for pair in pairs for i in pair}
        assert len(touching) >= 0.5 * inst.max()
        # the hard case the separation task exists for: same class, no visible boundary
        same = [(i, j) for i, j in pairs if cls[inst == i][0] == cls[inst == j][0]]
        assert len(same) >= 3


def test_same_class_contacts_are_invisible_different_class_visible():
    # Without noise, the jump across a same-class contact is as small as
    # inside an object, while a bubble / crystal contact shows a clear edge.
    image, inst, cls = make_foam_image((192, 192), seed=1, noise=0.0)
    img = image.astype(float)
    a, b = inst[:, :-1], inst[:, 1:]
    ia, ib = img[:, :-1], img[:, 1:]
    contact = (a != b) & (a > 0) & (b > 0)
    same = contact & (cls[:, :-1] == cls[:, 1:])
    cross = contact & (cls[:, :-1] != cls[:, 1:])
    same_jump = np.abs(ia - ib)[same]
    cross_jump = np.abs(ia - ib)[cross]
    assert same_jump.size and cross_jump.size
    assert same_jump.mean() < 0.5 * cross_jump.mean()


def test_detection_inside_objects_with_right_class(sample):
    for inst, cls, det in zip(sample.instances, sample.classes, sample.detection, strict=True):
        painted = det > 0
        assert np.all(inst[painted] > 0)
        np.testing.assert_array_equal(det[painted], cls[painted])
        # every object has an inner region, smaller than the object
        assert set(np.unique(inst[painted])) == set(np.unique(inst)[1:])
        assert painted.sum() < 0.8 * (inst > 0).sum()


def test_separation_non_empty_and_near_contacts(sample):
    for sep in sample.separation:
        assert set(np.unique(sep)) == {0, 1}
        assert 0 < sep.mean() < 0.2


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_images"):
        make_foam_sample(n_images=0)
    with pytest.raises(ValueError, match="shape"):
        make_foam_image((8, 8))
    with pytest.raises(ValueError, match="diameter_range"):
        make_foam_image(diameter_range=(30, 10))
