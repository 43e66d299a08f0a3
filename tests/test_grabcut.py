"""Per-object GrabCut refinement on synthetic images with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_lazyunet.core.grabcut import GrabCutResult, image_to_uint8, refine_with_grabcut

SIZE = 112


def disc(cy, cx, r, shape=(SIZE, SIZE)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def textured(mask, inside=170.0, outside=70.0, seed=0):
    """Gray image: two levels, stripes and noise (no clean edge to threshold)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    image = np.where(mask, inside, outside) + 15 * np.sin(xx / 2.0 + yy / 3.0)
    image = image + rng.normal(0, 18, mask.shape)
    return np.clip(image, 0, 255)


def dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def one_disc():
    truth = disc(56, 60, 30)
    image = textured(truth).astype(np.uint8)
    detection = disc(53, 62, 14).astype(np.uint8)  # off-centre, a fifth of the area
    return image, truth, detection


def test_textured_disc_is_recovered_from_inner_region(one_disc):
    image, truth, detection = one_disc
    result = refine_with_grabcut(image, detection)
    assert isinstance(result, GrabCutResult)
    assert result.instances.dtype == np.int32
    assert result.instances.shape == truth.shape
    assert set(np.unique(result.instances)) == {0, 1}
    assert dice(result.instances > 0, truth) > 0.9
    # much better than the inner region it started from
    assert dice(detection > 0, truth) < 0.4
    np.testing.assert_array_equal(result.classes, (result.instances > 0).astype(np.uint8))
    assert result.object_ids == (1,)
    assert len(result.timings_per_object) == 1
    assert 0 < result.timings_per_object[0] <= result.total_seconds
    assert len(result.cpu_timings_per_object) == 1 and result.cpu_timings_per_object[0] > 0


@pytest.mark.parametrize("kind", ["gray8", "rgb8", "uint16", "float32", "gray_channel"])
def test_gray_rgb_and_high_bit_depth_images(one_disc, kind):
    _, truth, detection = one_disc
    gray = textured(truth, seed=1)
    if kind == "gray8":
        image = gray.astype(np.uint8)
    elif kind == "uint16":  # 12-bit camera range, offset: needs the stretch
        image = (gray * 12 + 300).astype(np.uint16)
    elif kind == "float32":
        image = (gray / 255.0).astype(np.float32)
    elif kind == "gray_channel":
        image = gray.astype(np.uint8)[..., None]
    else:
        # Same brightness inside and out, only the hue differs: needs colour.
        rng = np.random.default_rng(2)
        red = np.where(truth[..., None], [180, 60, 60], [60, 60, 180]).astype(float)
        image = np.clip(red + rng.normal(0, 15, red.shape), 0, 255).astype(np.uint8)
    result = refine_with_grabcut(image, detection, n_threads=1)
    assert dice(result.instances > 0, truth) > 0.9


def test_touching_discs_come_back_as_two_objects():
    first, second = disc(56, 34, 22), disc(56, 78, 22)  # touch along x = 56
    union = first | second
    image = textured(union, seed=3).astype(np.uint8)  # no visible boundary between them
    detection = (disc(56, 30, 9) | disc(56, 82, 9)).astype(np.uint8)
    result = refine_with_grabcut(image, detection)
    inst = result.instances
    assert set(np.unique(inst)) == {0, 1, 2}
    assert dice(inst > 0, union) > 0.9
    # connected components of the detection layer are numbered in raster order
    left, right = (inst == 1), (inst == 2)
    assert dice(left, first) > 0.85 and dice(right, second) > 0.85
    for obj in (left, right):
        assert ndi.label(obj, structure=np.ones((3, 3)))[1] == 1


def test_touching_objects_with_instance_ids_and_classes():
    first, second = disc(56, 34, 22), disc(56, 78, 22)
    image = textured(first | second, seed=4).astype(np.uint8)
    inner = np.zeros((SIZE, SIZE), np.int32)
    inner[disc(56, 30, 9)] = 7
    inner[disc(56, 82, 9)] = 3
    detection = np.where(inner == 7, 1, np.where(inner == 3, 2, 0)).astype(np.uint8)
    result = refine_with_grabcut(image, detection, instances=inner, n_threads=2)
    assert set(np.unique(result.instances)) == {0, 3, 7}
    assert dice(result.instances == 7, first) > 0.85
    assert dice(result.instances == 3, second) > 0.85
    # class mask follows the painted class of each object
    np.testing.assert_array_equal(result.classes[result.instances == 7], 1)
    np.testing.assert_array_equal(result.classes[result.instances == 3], 2)
    assert np.all(result.classes[result.instances == 0] == 0)
    assert sorted(result.object_ids) == [3, 7]
    # the same with a single thread
    serial = refine_with_grabcut(image, detection, instances=inner, n_threads=1)
    np.testing.assert_array_equal(serial.instances, result.instances)


def test_scribbles_are_respected_exactly(one_disc):
    image, truth, detection = one_disc
    background = np.zeros_like(detection)
    background[71:74, 50:72] = 1  # a stroke inside the disc, outside the inner region
    foreground = np.zeros((SIZE, SIZE), bool)
    foreground[100:104, 10:40] = True  # a stroke in the background
    result = refine_with_grabcut(
        image, detection, sure_foreground=foreground, sure_background=background
    )
    assert np.all(result.instances[background > 0] == 0)
    assert np.all(result.instances[foreground] == 1)
    assert np.all(result.classes[foreground] == 1)
    # the rest of the disc is still found
    assert dice((result.instances > 0) & ~foreground, truth & (background == 0)) > 0.9


def test_integer_scribbles_name_their_object():
    first, second = disc(56, 34, 22), disc(56, 78, 22)
    image = textured(first | second, seed=5).astype(np.uint8)
    detection = (disc(56, 30, 9) | disc(56, 82, 9)).astype(np.uint8)
    scribble = np.zeros((SIZE, SIZE), np.uint8)
    scribble[54:58, 48:54] = 2  # on object 1's side, but painted as object 2
    result = refine_with_grabcut(image, detection, sure_foreground=scribble)
    assert np.all(result.instances[scribble == 2] == 2)
    with pytest.raises(ValueError, match="no object"):
        refine_with_grabcut(image, detection, sure_foreground=scribble * 5)


def test_inputs_are_not_modified(one_disc):
    image, _, detection = one_disc
    rgb = np.stack([image, image[::-1], image.T], axis=-1)
    instances = detection.astype(np.int32) * 5
    foreground = np.zeros((SIZE, SIZE), bool)
    foreground[5:8, 5:30] = True
    background = np.zeros((SIZE, SIZE), np.uint8)
    background[60:62, 30:90] = 1
    args = [rgb, detection, instances, foreground, background]
    copies = [a.copy() for a in args]
    refine_with_grabcut(
        rgb,
        detection,
        instances=instances,
        sure_foreground=foreground,
        sure_background=background,
    )
    for before, after in zip(copies, args, strict=True):
        np.testing.assert_array_equal(before, after)


def test_only_labels_and_background_value():
    first, second = disc(56, 34, 22), disc(56, 78, 22)
    image = textured(first | second, seed=6).astype(np.uint8)
    detection = np.zeros((SIZE, SIZE), np.uint8)
    detection[disc(56, 30, 9)] = 1
    detection[disc(56, 82, 9)] = 1
    detection[0:6, :] = 2  # explicit background (C + 1 with C = 1)
    result = refine_with_grabcut(image, detection, only_labels=[2], background_value=2)
    assert set(np.unique(result.instances)) == {0, 2}
    assert dice(result.instances == 2, second) > 0.85
    assert result.object_ids == (2,)
    # without background_value, value 2 is a class: a third object
    assert refine_with_grabcut(image, detection).instances.max() == 3


def test_image_to_uint8_normalisation():
    rng = np.random.default_rng(0)
    image8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    out = image_to_uint8(image8)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert np.all(out == image8[..., None])
    assert not np.shares_memory(out, image8)
    image16 = np.linspace(1000, 5000, 20 * 30).reshape(20, 30).astype(np.uint16)
    out16 = image_to_uint8(image16)
    lo, hi = np.percentile(image16, [0.5, 99.5])
    assert out16[0, 0, 0] == 0 and out16[-1, -1, 0] == 255
    middle = image16 == np.clip(image16, lo, hi)
    expected = np.round((image16[middle] - lo) * 255.0 / (hi - lo))
    assert np.abs(out16[..., 0][middle] - expected).max() <= 1
    constant = image_to_uint8(np.full((4, 4, 2), 7.0))
    assert constant.shape == (4, 4, 3) and not constant.any()


def test_bad_shapes_are_rejected(one_disc):
    image, _, detection = one_disc
    with pytest.raises(ValueError, match="shape"):
        refine_with_grabcut(image, detection[:-1])
    with pytest.raises(ValueError, match="shape"):
        refine_with_grabcut(image, detection, instances=np.zeros((3, 3), int))


def test_labels_are_checked_as_training_checks_them(one_disc):
    """Whole-number float labels (as some readers return) train, so they refine too."""
    from napari_lazyunet.core.labels import LabelError

    image, _, detection = one_disc
    as_float = refine_with_grabcut(image, detection.astype(np.float32))
    np.testing.assert_array_equal(
        as_float.instances, refine_with_grabcut(image, detection).instances
    )
    with pytest.raises(LabelError, match="fractional"):
        refine_with_grabcut(image, detection * 0.5)
    with pytest.raises(LabelError, match="negative"):
        refine_with_grabcut(image, -detection.astype(np.int16))


def test_no_objects_gives_empty_result(one_disc):
    image, _, detection = one_disc
    result = refine_with_grabcut(image, np.zeros_like(detection))
    assert not result.instances.any() and not result.classes.any()
    assert result.object_ids == () and result.timings_per_object == []


def test_large_object_runs_on_a_downsampled_crop():
    shape = (360, 360)
    truth = disc(180, 180, 120, shape)
    image = textured(truth, seed=7).astype(np.uint8)
    detection = disc(180, 180, 75, shape).astype(np.uint8)
    result = refine_with_grabcut(image, detection, n_threads=1)
    assert dice(result.instances > 0, truth) > 0.95
    # the boundary lands within ~3 px (5% of the area), although GrabCut ran at a
    # third of the size
    assert abs(int((result.instances > 0).sum()) - int(truth.sum())) < 0.05 * truth.sum()
