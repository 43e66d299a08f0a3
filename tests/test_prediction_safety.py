"""Prediction and its files: painted labels are never overwritten, writes are atomic,
bad inputs end in clear errors, and evaluate reports undefined scores as such."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core.labels import LabelError

TASKS = ("detection", "segmentation", "separation", "instances")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    LazyUNet(class_names=("a",), in_channels=1, base_channels=4, depth=2).save(path)
    return path


# ------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def gray_model(model_file):
    return LazyUNet.load(model_file)


@pytest.mark.parametrize(
    ("bad", "message"),
    [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite"), (1e39, "float32 range")],
)
def test_non_finite_or_huge_values_are_refused(gray_model, bad, message):
    image = np.random.default_rng(0).random((40, 40))
    image[3, 4] = bad
    with pytest.raises(LabelError, match=message):
        gray_model.predict(image, tile_size=32, device="cpu")
    stack = np.stack([np.ones((40, 40)), image])
    with pytest.raises(LabelError, match=f"plane 1 .*{message}"):
        gray_model.predict(stack, tile_size=32, device="cpu")


@pytest.mark.parametrize("channels", [2, 3, 5])
def test_gray_model_refuses_channels_last_images(gray_model, channels):
    image = np.random.default_rng(0).random((40, 36, channels))
    with pytest.raises(LabelError, match=f"{channels} channels|RGB"):
        gray_model.predict(image, tile_size=32, device="cpu")


def test_gray_model_takes_a_trailing_channel_of_one_and_stacks(gray_model):
    image = np.random.default_rng(0).random((40, 36, 1))
    assert gray_model.predict(image, tile_size=32, device="cpu").instances.shape == (40, 36)
    stack = np.random.default_rng(0).random((2, 40, 36))
    assert gray_model.predict(stack, tile_size=32, device="cpu").instances.shape == (2, 40, 36)


def test_multichannel_model_refuses_other_channel_counts():
    model = LazyUNet(class_names=("a",), in_channels=3, base_channels=4, depth=2)
    with pytest.raises(LabelError, match="in_channels=3"):
        model.predict(np.zeros((40, 36, 2)), tile_size=32, device="cpu")


