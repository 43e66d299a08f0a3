"""How far objects reach beyond their inner regions, and the far background it gives."""

import numpy as np
import pytest

from napari_lazyunet.core.labels import IGNORE
from napari_lazyunet.core.weak_targets import (
    far_background_targets,
    normalised_distance,
    object_reach,
    reach_ratios,
    within_reach,
)


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _targets(detection, segmentation):
    """(3, Y, X) loss targets with the separation task unlabelled."""
    return np.stack([detection, segmentation, np.full(detection.shape, IGNORE)]).astype(np.int64)


def test_normalised_distance_is_in_units_of_each_inner_region():
    detection = np.zeros((80, 160), np.int64)
    small, large = _disc(detection.shape, (40, 40), 4), _disc(detection.shape, (40, 110), 12)
    detection[small] = 1
    detection[large] = 1
    distance = normalised_distance(detection, limit=5.0)
    assert np.all(distance[small | large] == 0)
    r_small = np.sqrt(small.sum() / np.pi)
    r_large = np.sqrt(large.sum() / np.pi)
    # 8 px outside each disc: 2 radii of the small one, 2/3 of the large one.
    assert distance[40, 40 - 4 - 8] == pytest.approx(8 / r_small, rel=0.1)
    assert distance[40, 110 + 12 + 8] == pytest.approx(8 / r_large, rel=0.1)
    # Beyond the limit of every region: unmeasured.
    assert np.isinf(distance[0, 0])


def test_reach_of_discs_whose_inner_half_radius_is_painted():
    shape = (120, 120)
    objects = [((30, 30), 16), ((30, 90), 10), ((90, 60), 20)]
    detection = np.zeros(shape, np.int64)
    segmentation = np.zeros(shape, np.int64)
    for centre, radius in objects:
        segmentation[_disc(shape, centre, radius)] = 1
        detection[_disc(shape, centre, radius // 2)] = 1
    ratios = reach_ratios(detection, segmentation)
    assert ratios.size == segmentation.sum()
    # The boundary lies one inner radius beyond each inner region.
    assert np.quantile(ratios, 0.99) == pytest.approx(1.0, abs=0.15)
    reach = object_reach(ratios, quantile=0.99, margin=1.5)
    assert reach == pytest.approx(1.5 * np.quantile(ratios, 0.99))
    near = within_reach(detection, reach)
    assert near[segmentation >= 1].all()  # every object pixel may be object
    assert not near[0, 0] and not near[119, 119]
    assert object_reach(np.zeros(0)) is None
    assert reach_ratios(np.zeros(shape, np.int64), segmentation).size == 0


def test_far_background_is_labelled_on_complete_weak_images_only():
    shape = (100, 100)
    truth = _disc(shape, (50, 50), 16)
    inner = _disc(shape, (50, 50), 8)
    detection = np.where(inner, 1, 0)
    strong = _targets(detection, truth.astype(np.int64))
    weak = _targets(detection, np.full(shape, IGNORE))
    sparse_detection = np.where(inner, 1, IGNORE)  # only the inner region counts
    sparse = _targets(sparse_detection, np.full(shape, IGNORE))
    unpainted = _targets(np.full(shape, IGNORE), np.full(shape, IGNORE))
    given = [strong, weak, sparse, unpainted]
    copies = [t.copy() for t in given]
    out, reach = far_background_targets(given, [True, False, False, False])
    assert reach is not None and reach > 0.5
    for before, after in zip(copies, given, strict=True):
        np.testing.assert_array_equal(before, after)  # inputs untouched
    np.testing.assert_array_equal(out[0], strong)
    segmentation = out[1][1]
    assert segmentation[0, 0] == 0 and segmentation[99, 50] == 0
    # The object and the band around its inner region stay unlabelled.
    assert np.all(segmentation[truth] == IGNORE)
    assert np.count_nonzero(segmentation == 0) > 0.5 * np.count_nonzero(~truth)
    # Detection and separation targets are unchanged.
    np.testing.assert_array_equal(out[1][[0, 2]], weak[[0, 2]])
    np.testing.assert_array_equal(out[2], sparse)
    np.testing.assert_array_equal(out[3], unpainted)


def test_without_a_strong_image_with_inner_regions_nothing_is_labelled():
    shape = (40, 40)
    inner = np.where(_disc(shape, (20, 20), 4), 1, 0)
    weak = _targets(inner, np.full(shape, IGNORE))
    # A strong image whose inner regions were not painted measures nothing.
    strong = _targets(np.zeros(shape, np.int64), _disc(shape, (20, 20), 8).astype(np.int64))
    out, reach = far_background_targets([strong, weak], [True, False])
    assert reach is None
    np.testing.assert_array_equal(out[1], weak)


def test_an_image_labelled_without_objects_is_background_everywhere():
    shape = (40, 40)
    # Explicit background painted on a complete detection layer: no object here.
    empty = _targets(np.zeros(shape, np.int64), np.full(shape, IGNORE))
    inner = np.where(_disc(shape, (20, 20), 4), 1, 0)
    strong = _targets(inner, _disc(shape, (20, 20), 8).astype(np.int64))
    no_inner = _targets(np.zeros(shape, np.int64), _disc(shape, (20, 20), 8).astype(np.int64))
    unpainted = _targets(np.full(shape, IGNORE), np.full(shape, IGNORE))
    for given, reach_known in (
        ([strong, empty, unpainted], True),
        ([no_inner, empty, unpainted], False),
    ):
        out, reach = far_background_targets(given, [True, False, False])
        assert (reach is not None) == reach_known
        np.testing.assert_array_equal(out[1][1], np.zeros(shape))
        np.testing.assert_array_equal(out[1][[0, 2]], empty[[0, 2]])
        np.testing.assert_array_equal(out[2], unpainted)  # not labelled: nothing known
        assert np.all(empty[1] == IGNORE)  # the input is untouched
