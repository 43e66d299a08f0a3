"""The recovery folder: image digests, autosaved labels that never delete, model file names."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_lazyunet.core.files import write_labels
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import load_project, save_project
from napari_lazyunet.core.recovery import (
    RECOVERY_ENV,
    autosave_labels,
    find_recovered_labels,
    image_digest,
    labels_recovery_folder,
    model_recovery_path,
    recovery_root,
)


def test_recovery_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(RECOVERY_ENV, str(tmp_path / "r"))
    assert recovery_root() == tmp_path / "r"
    monkeypatch.delenv(RECOVERY_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert recovery_root() == tmp_path / "data" / "napari-lazyunet" / "recovery"


def test_image_digest_tells_pixels_shape_and_dtype_apart(rng):
    image = rng.integers(0, 255, (70, 50), dtype=np.uint8)
    assert image_digest(image) == image_digest(image.copy())
    changed = image.copy()
    changed[69, 49] ^= 1
    assert image_digest(changed) != image_digest(image)
    assert image_digest(image.reshape(50, 70)) != image_digest(image)
    assert image_digest(image.astype(np.uint16)) != image_digest(image)
    # Read in blocks of rows: a non-contiguous view digests like its copy.
    assert image_digest(image[:, ::2]) == image_digest(np.ascontiguousarray(image[:, ::2]))


def test_autosave_creates_a_project_then_writes_labels_only(tmp_path, foam):
    folder = labels_recovery_folder("my image", "0123abcd", root=tmp_path)
    assert folder == tmp_path / "labels" / "my_image-0123abcd"
    first = ImageLabels(detection=foam.detection[0], separation=foam.separation[0])
    with pytest.raises(ValueError, match="give the images"):
        autosave_labels(folder, ["a"], [first], class_names=foam.class_names)
    autosave_labels(folder, ["a"], [first], class_names=foam.class_names, images=[foam.images[0]])
    project = find_recovered_labels("0123abcd", root=tmp_path)
    assert project.folder == folder and project.names == ["a"]
    np.testing.assert_array_equal(project.labels[0].separation, foam.separation[0])
    # Same digest under another layer name: the same folder.
    assert labels_recovery_folder("renamed", "0123abcd", root=tmp_path) == folder
    assert find_recovered_labels("ffff", root=tmp_path) is None

    image_file = folder / "images" / "a.tif"
    before = image_file.stat().st_mtime_ns
    painted = foam.detection[0].copy()
    painted[:4] = 1
    # The separation layer is gone from the viewer (kept), detection repainted.
    autosave_labels(
        folder,
        ["a"],
        [ImageLabels(detection=painted)],
        class_names=foam.class_names,
        keep=["separation"],
    )
    project = load_project(folder)
    np.testing.assert_array_equal(project.labels[0].detection, painted)
    np.testing.assert_array_equal(project.labels[0].separation, foam.separation[0])
    assert image_file.stat().st_mtime_ns == before  # the image is written once
    # Without keep, an empty layer removes its file, as saving a project does.
    autosave_labels(folder, ["a"], [ImageLabels(detection=painted)], class_names=foam.class_names)
    assert load_project(folder).labels[0].separation is None


def test_autosave_into_an_existing_project_keeps_other_images(tmp_path, foam):
    folder = save_project(
        tmp_path / "p",
        ["a", "b"],
        foam.images[:2],
        [ImageLabels(detection=d) for d in foam.detection[:2]],
        foam.class_names,
    )
    strong = ImageLabels(detection=foam.detection[0], segmentation=foam.classes[0], strong=True)
    autosave_labels(folder, ["a"], [strong], class_names=foam.class_names)
    project = load_project(folder)
    assert project.labels[0].strong and not project.labels[1].strong
    np.testing.assert_array_equal(project.labels[1].detection, foam.detection[1])


def test_model_recovery_paths_never_collide(tmp_path):
    first = model_recovery_path(root=tmp_path, now=0.0)
    assert first.parent == tmp_path / "models" and first.suffix == ".pt"
    first.parent.mkdir(parents=True)
    first.write_bytes(b"x")
    second = model_recovery_path(root=tmp_path, now=0.0)
    assert second != first and second.stem.endswith("-2")


@pytest.mark.parametrize("planes", [3, 4])
def test_label_stacks_of_three_or_four_planes_are_planes_not_colour(tmp_path, planes):
    stack = np.arange(planes * 6 * 5, dtype=np.uint8).reshape(planes, 6, 5) % 3
    path = write_labels(tmp_path / "stack.tif", stack)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].photometric != tifffile.PHOTOMETRIC.RGB
        np.testing.assert_array_equal(tif.asarray(), stack)
