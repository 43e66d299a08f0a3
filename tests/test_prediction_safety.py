"""Prediction and its files: painted labels are never overwritten, writes are atomic,
bad inputs end in clear errors, and evaluate reports undefined scores as such."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core import io
from napari_lazyunet.core.io import (
    ProjectError,
    read_image,
    save_labels,
    save_project,
    write_image,
    write_labels,
)
from napari_lazyunet.core.labels import ImageLabels, LabelError

TASKS = ("detection", "segmentation", "separation", "instances")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    LazyUNet(class_names=("a",), in_channels=1, base_channels=4, depth=2).save(path)
    return path


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------- atomic writes
def _broken_imwrite(real):
    """tifffile.imwrite that writes a few bytes, then fails like a full disk."""

    def imwrite(target, *args, **kwargs):
        if hasattr(target, "write"):
            target.write(b"half a file")
        else:
            with open(target, "wb") as stream:
                stream.write(b"half a file")
        raise OSError(28, "No space left on device")

    return imwrite


def test_failed_label_and_image_writes_keep_the_old_file(tmp_path, monkeypatch):
    old = np.arange(12, dtype=np.uint8).reshape(3, 4)
    labels_path = write_labels(tmp_path / "labels" / "a.tif", old)
    image_path = write_image(tmp_path / "images" / "a.tif", old)
    monkeypatch.setattr(tifffile, "imwrite", _broken_imwrite(tifffile.imwrite))
    for write, path in ((write_labels, labels_path), (write_image, image_path)):
        with pytest.raises(OSError, match="No space"):
            write(path, np.zeros((3, 4), np.uint8))
        assert [p.name for p in path.parent.iterdir()] == ["a.tif"]  # no temporary file left
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(labels_path), old)
    np.testing.assert_array_equal(read_image(image_path), old)


def test_failed_save_labels_keeps_old_labels_and_project_file(tmp_path, monkeypatch):
    det = np.zeros((6, 8), np.uint8)
    det[1:3, 1:3] = 1
    sep = np.zeros((6, 8), np.uint8)
    sep[4, :] = 1
    folder = save_project(tmp_path / "p", ["a"], [np.arange(48, dtype=np.uint8).reshape(6, 8)],
                          [ImageLabels(detection=det, separation=sep)], ["a"])
    before = _snapshot(folder)
    new = ImageLabels(detection=np.ones((6, 8), np.uint8), separation=None,
                      segmentation=np.ones((6, 8), np.uint8), strong=True)
    with monkeypatch.context() as patch:
        patch.setattr(tifffile, "imwrite", _broken_imwrite(tifffile.imwrite))
        with pytest.raises(OSError):
            save_labels(folder, "a", new)
    assert _snapshot(folder) == before
    # The rename of project.json fails: the old file stays, the temporary one goes.
    with monkeypatch.context() as patch:
        patch.setattr(io.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("denied")))
        with pytest.raises(OSError, match="denied"):
            io._write_settings(folder, {"class_names": ["changed"]})
    assert _snapshot(folder) == before


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


def test_write_prediction_refuses_non_integer_labels_before_writing(tmp_path):
    with pytest.raises(ProjectError, match="must be integers"):
        write_labels(tmp_path / "x.tif", np.zeros((3, 3), np.float32))
    assert not list(tmp_path.iterdir())
