"""The scripting facade: docstring examples run, label pairing, compatibility checks."""

import doctest

import numpy as np
import pytest

import napari_lazyunet.api as api
from napari_lazyunet.api import LazyUNet, make_labels
from napari_lazyunet.core.labels import LabelError
from tiny import tiny_config


def test_docstring_examples_run():
    failures, tried = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert tried >= 3 and failures == 0


def test_make_labels_pairs_and_defaults_strong_to_given_masks():
    det = [np.ones((4, 4), np.uint8)] * 3
    seg = [None, np.ones((4, 4), np.uint8), None]
    labels = make_labels(3, detection=det, segmentation=seg, sparse=[True, False, False])
    assert [lab.strong for lab in labels] == [False, True, False]
    assert [lab.detection_complete for lab in labels] == [False, True, True]
    with pytest.raises(LabelError, match="3 image"):
        make_labels(3, detection=det[:2])


def test_check_compatible_explains_mismatch():
    model = LazyUNet(tiny_config())
    model.check_compatible(("bubble", "crystal"), 1)
    with pytest.raises(LabelError, match="trained for classes"):
        model.check_compatible(("nucleus",), 1)
    with pytest.raises(LabelError, match="expects 1 channel"):
        model.check_compatible(None, 3)


def test_refine_through_api_grows_a_disc():
    yy, xx = np.mgrid[:80, :80]
    disc = (yy - 40) ** 2 + (xx - 40) ** 2 <= 20**2
    image = np.where(disc, 200, 40).astype(np.uint8)
    image = image + np.random.default_rng(0).integers(0, 20, image.shape).astype(np.uint8)
    inner = ((yy - 40) ** 2 + (xx - 40) ** 2 <= 8**2).astype(np.uint8)
    result = api.refine(image, inner)
    grown = result.instances > 0
    dice = 2 * (grown & disc).sum() / (grown.sum() + disc.sum())
    assert dice > 0.9 and set(np.unique(result.classes)) == {0, 1}


def test_fit_takes_labels_objects_or_arrays_not_both(foam):
    labels = make_labels(2, detection=foam.detection[:2], segmentation=[foam.classes[0], None])
    model = LazyUNet(tiny_config(steps=1))
    model.fit(foam.images[:2], labels=labels)
    assert model.steps_done == 1
    with pytest.raises(TypeError, match="not both"):
        model.fit(foam.images[:2], detection=foam.detection[:2], labels=labels)


def test_one_validation_split_for_the_command_line_and_the_widget():
    from napari_lazyunet.api import split_validation

    # A share was asked for: something is held out, even when the share rounds to 0.
    train, val = split_validation([False] * 5, 0.05, seed=0)
    assert len(val) == 1 and sorted(train + val) == list(range(5))
    # The strong image stays in training, whatever the draw.
    for seed in range(10):
        train, val = split_validation([False, True, False, False], 0.75, seed=seed)
        assert 1 in train and len(val) == 3
    assert split_validation([True], 0.5) == ([0], [])
    assert split_validation([False, False], 0.0) == ([0, 1], [])
    assert split_validation([False] * 6, 0.5, seed=4) == split_validation([False] * 6, 0.5, seed=4)
