"""Label conventions and validation errors."""

import numpy as np
import pytest

from napari_lazyunet.core.labels import (
    IGNORE,
    ImageLabels,
    LabelError,
    WeakLabelsOnlyWarning,
    training_targets,
    validate_labels,
    validate_training_set,
)

IMAGE = np.arange(64, dtype=np.float32).reshape(8, 8)


def det(value=1):
    d = np.zeros((8, 8), np.uint8)
    d[2:4, 2:4] = value
    return d


def test_shape_mismatch_names_input_and_fix():
    labels = ImageLabels(detection=np.zeros((8, 9), np.uint8))
    with pytest.raises(LabelError, match=r"detection labels of img\.tif have shape \(8, 9\)"):
        validate_labels(IMAGE, labels, n_classes=2, in_channels=1, name="img.tif")


def test_value_outside_declared_classes():
    # C = 2: detection allows 0..3 (3 = explicit background), segmentation only 0..2
    validate_labels(IMAGE, ImageLabels(detection=det(3)), 2, 1)
    with pytest.raises(LabelError, match=r"value 4 but only values 0\.\.3"):
        validate_labels(IMAGE, ImageLabels(detection=det(4)), 2, 1)
    seg = det(3)
    with pytest.raises(LabelError, match="class_names"):
        validate_labels(IMAGE, ImageLabels(segmentation=seg, strong=True), 2, 1)


def test_float_and_negative_labels():
    with pytest.raises(LabelError, match="fractional"):
        validate_labels(IMAGE, ImageLabels(detection=det().astype(float) * 0.5), 2, 1)
    # whole-number floats are accepted (some readers give float arrays)
    validate_labels(IMAGE, ImageLabels(detection=det().astype(float)), 2, 1)
    with pytest.raises(LabelError, match="negative"):
        validate_labels(IMAGE, ImageLabels(detection=det().astype(np.int16) - 1), 2, 1)


def test_image_without_any_label():
    with pytest.raises(LabelError, match="no label at all") as error:
        validate_labels(IMAGE, ImageLabels(detection=np.zeros((8, 8), np.uint8)), 2, 1)
    # The message says how to label an image that has no object: explicit background.
    assert "explicit background, value 3" in str(error.value)
    nothing_here = np.zeros((8, 8), np.uint8)
    nothing_here[0, 0] = 3
    labels = ImageLabels(detection=nothing_here)
    validate_labels(IMAGE, labels, 2, 1)
    # Complete: every pixel of that image is a background target for detection.
    np.testing.assert_array_equal(training_targets(labels, (8, 8), 2)[0], np.zeros((8, 8)))
    # an explicit, empty separation array *is* a label ("no interface here")
    validate_labels(IMAGE, ImageLabels(separation=np.zeros((8, 8), np.uint8)), 2, 1)


def test_empty_and_constant_images():
    with pytest.raises(LabelError, match="empty"):
        validate_labels(np.zeros((0, 0)), ImageLabels(detection=det()), 2, 1)
    with pytest.raises(LabelError, match="constant"):
        validate_labels(np.ones((8, 8)), ImageLabels(detection=det()), 2, 1)


def test_channel_mismatch():
    rgb = np.random.default_rng(0).random((8, 8, 3))
    with pytest.raises(LabelError, match="in_channels=1"):
        validate_labels(rgb, ImageLabels(detection=det()), 2, 1)
    validate_labels(rgb, ImageLabels(detection=det()), 2, 3)


def test_strong_without_mask():
    with pytest.raises(LabelError, match="marked strong but has no segmentation"):
        validate_labels(IMAGE, ImageLabels(detection=det(), strong=True), 2, 1)


def test_no_strong_image_warns():
    with pytest.warns(WeakLabelsOnlyWarning):
        validate_training_set([IMAGE], [ImageLabels(detection=det())], 2, 1)


def test_targets_follow_conventions():
    d = det(1)
    d[0, 0] = 3  # explicit background for C = 2
    complete = training_targets(ImageLabels(detection=d), (8, 8), 2)
    assert complete.shape == (3, 8, 8)
    assert complete[0, 2, 2] == 1 and complete[0, 0, 0] == 0 and complete[0, 7, 7] == 0
    assert (complete[1] == IGNORE).all() and (complete[2] == IGNORE).all()
    sparse = training_targets(ImageLabels(detection=d, detection_complete=False), (8, 8), 2)
    assert sparse[0, 7, 7] == IGNORE and sparse[0, 0, 0] == 0 and sparse[0, 2, 2] == 1
    # segmentation counts only when strong
    seg = det(2)
    weak = training_targets(ImageLabels(detection=d, segmentation=seg), (8, 8), 2)
    assert (weak[1] == IGNORE).all()
    strong = training_targets(ImageLabels(detection=d, segmentation=seg, strong=True), (8, 8), 2)
    assert strong[1, 2, 2] == 2 and strong[1, 0, 0] == 0


def test_inputs_not_modified():
    d = det(3)
    before = d.copy()
    training_targets(ImageLabels(detection=d), (8, 8), 2)
    np.testing.assert_array_equal(d, before)
