"""Project folder format: round trips, accepted variants and clear errors."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_lazyunet.core.files import ProjectError, list_images, read_image, write_labels
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import load_project, save_labels, save_project


def _data():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (24, 32), dtype=np.uint8) for _ in range(3)]
    det = np.zeros((24, 32), dtype=np.uint8)
    det[4:8, 4:8] = 1
    det[12:16, 20:24] = 2
    sep = np.zeros((24, 32), dtype=np.uint8)
    sep[10, :] = 1
    seg = np.zeros((24, 32), dtype=np.uint8)
    seg[2:10, 2:10] = 1
    labels = [
        ImageLabels(detection=det, separation=sep, segmentation=seg, strong=True),
        ImageLabels(detection=det, detection_complete=False),
        ImageLabels(),
    ]
    return ["img_000", "img_001", "img_002"], images, labels


def _project(tmp_path):
    names, images, labels = _data()
    return save_project(tmp_path / "proj", names, images, labels, ["bubble", "crystal"])


def test_round_trip(tmp_path):
    names, images, labels = _data()
    folder = _project(tmp_path)
    settings = json.loads((folder / "project.json").read_text())
    assert settings == {
        "class_names": ["bubble", "crystal"],
        "strong": ["img_000.tif"],
        "sparse": ["img_001.tif"],
        "in_channels": 1,
    }
    assert sorted(p.name for p in (folder / "detection").iterdir()) == [
        "img_000.tif",
        "img_001.tif",
    ]

    project = load_project(folder)
    assert project.names == names and len(project) == 3
    assert project.class_names == ("bubble", "crystal") and project.in_channels == 1
    assert project.labelled == [0, 1]
    for got, want in zip(project.images, images, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    first, second, third = project.labels
    np.testing.assert_array_equal(first.detection, labels[0].detection)
    np.testing.assert_array_equal(first.separation, labels[0].separation)
    np.testing.assert_array_equal(first.segmentation, labels[0].segmentation)
    assert first.strong and first.detection_complete
    assert not second.strong and not second.detection_complete
    assert second.separation is None and second.segmentation is None
    assert third == ImageLabels()


def test_write_labels_compressed_keeps_dtype(tmp_path):
    labels = np.arange(600, dtype=np.uint16).reshape(20, 30)
    path = write_labels(tmp_path / "sub" / "x.tif", labels)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        np.testing.assert_array_equal(tif.asarray(), labels)
        assert tif.asarray().dtype == np.uint16
    np.testing.assert_array_equal(
        read_image(write_labels(tmp_path / "b.tif", labels > 5)), labels > 5
    )
    with pytest.raises(ProjectError, match="integers"):
        write_labels(tmp_path / "f.tif", labels.astype(float))
    with pytest.raises(ProjectError, match="TIFF"):
        write_labels(tmp_path / "f.png", labels)


def test_png_labels_and_images_accepted_and_yaml(tmp_path):
    folder = tmp_path / "p"
    (folder / "images").mkdir(parents=True)
    (folder / "detection").mkdir()
    image = np.random.default_rng(1).integers(0, 255, (16, 20, 3), dtype=np.uint8)
    tifffile.imwrite(folder / "images" / "a.tiff", image, photometric="rgb")
    iio.imwrite(folder / "images" / "b.png", image)
    det = np.zeros((16, 20), dtype=np.uint8)
    det[3:6, 3:6] = 2
    iio.imwrite(folder / "detection" / "a.png", det)
    # gray labels saved as RGB by a painting tool
    iio.imwrite(folder / "detection" / "b.png", np.repeat(det[..., None], 3, axis=-1))
    # Without project.json the classes cannot be counted on detection alone: its
    # largest value may be the explicit background.
    with pytest.raises(ProjectError, match="does not name the object classes"):
        load_project(folder)
    (folder / "segmentation").mkdir()
    iio.imwrite(folder / "segmentation" / "a.png", det)  # an exact mask counts them
    project = load_project(folder)
    assert project.names == ["a", "b"] and project.in_channels == 3
    assert project.class_names == ("class 1", "class 2")  # inferred without project.json
    for lab in project.labels:
        np.testing.assert_array_equal(lab.detection, det)
    assert list_images(folder) == [folder / "images" / "a.tiff", folder / "images" / "b.png"]
    assert list_images(folder / "images" / "b.png") == [folder / "images" / "b.png"]

    pytest.importorskip("yaml")
    (folder / "project.yaml").write_text("class_names: [bubble, crystal]\nsparse: [a.tiff]\n")
    project = load_project(folder)
    assert project.class_names == ("bubble", "crystal")
    assert not project.labels[0].detection_complete and project.labels[1].detection_complete


def test_save_labels_updates_files_and_flags(tmp_path):
    folder = _project(tmp_path)
    seg = np.ones((24, 32), dtype=np.uint8)
    written = save_labels(folder, "img_002", ImageLabels(segmentation=seg, strong=True))
    assert [p.parent.name for p in written] == ["segmentation"]
    # dropping a layer removes its old file
    save_labels(folder, "img_000.tif", ImageLabels(detection=np.ones((24, 32), np.uint8)))
    project = load_project(folder)
    assert project.labels[2].strong
    assert not project.labels[0].strong and project.labels[0].separation is None
    settings = json.loads((folder / "project.json").read_text())
    assert settings["strong"] == ["img_002.tif"]


def test_error_missing_images_folder(tmp_path):
    with pytest.raises(ProjectError, match="no images/ folder"):
        load_project(tmp_path)
    with pytest.raises(ProjectError, match="not a folder"):
        load_project(tmp_path / "nope")


def test_error_label_without_image(tmp_path):
    folder = _project(tmp_path)
    write_labels(folder / "separation" / "ghost.tif", np.zeros((24, 32), np.uint8))
    with pytest.raises(ProjectError, match=r"ghost\.tif has no image"):
        load_project(folder)


def test_error_unreadable_file(tmp_path):
    folder = _project(tmp_path)
    (folder / "images" / "img_000.tif").write_bytes(b"not a tiff")
    with pytest.raises(ProjectError, match=r"img_000\.tif could not be read"):
        load_project(folder)


def test_error_unknown_strong_name_and_missing_mask(tmp_path):
    folder = _project(tmp_path)
    settings = json.loads((folder / "project.json").read_text())
    settings["strong"] = ["img_999.tif"]
    (folder / "project.json").write_text(json.dumps(settings))
    with pytest.raises(ProjectError, match=r"'strong' lists 'img_999\.tif'"):
        load_project(folder)
    settings["strong"] = ["img_001"]
    (folder / "project.json").write_text(json.dumps(settings))
    with pytest.raises(ProjectError, match=r"segmentation/img_001\.tif is missing"):
        load_project(folder)


def test_error_bad_settings_and_shapes(tmp_path):
    folder = _project(tmp_path)
    (folder / "project.json").write_text('{"class_names": ["a",]}')
    with pytest.raises(ProjectError, match="not valid JSON"):
        load_project(folder)
    (folder / "project.json").write_text('{"classes": ["a"]}')
    with pytest.raises(ProjectError, match="unknown keys"):
        load_project(folder)
    (folder / "project.json").write_text('{"class_names": "a"}')
    with pytest.raises(ProjectError, match="list of strings"):
        load_project(folder)
    (folder / "project.json").unlink()
    write_labels(folder / "detection" / "img_002.tif", np.zeros((5, 5), np.uint8))
    with pytest.raises(ProjectError, match="pixel for pixel"):
        load_project(folder)


def test_error_duplicate_stems_and_bad_names(tmp_path):
    folder = _project(tmp_path)
    iio.imwrite(folder / "images" / "img_000.png", np.zeros((24, 32), np.uint8))
    with pytest.raises(ProjectError, match="two files for 'img_000'"):
        load_project(folder)
    names, images, labels = _data()
    with pytest.raises(ProjectError, match="file name"):
        save_project(tmp_path / "q", ["a/b", "c", "d"], images, labels, ["x"])
    with pytest.raises(ProjectError, match="one name"):
        save_project(tmp_path / "q", names[:2], images, labels, ["x"])


def test_saving_a_subset_keeps_the_flags_of_other_images(tmp_path):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (8, 8), dtype=np.uint8) for _ in range(2)]
    seg = np.zeros((8, 8), np.uint8)
    seg[2:4, 2:4] = 1
    strong = ImageLabels(segmentation=seg, strong=True)
    save_project(tmp_path, ["a", "b"], images, [strong, strong], ["cell"])
    weak = ImageLabels(detection=seg)
    save_project(tmp_path, ["b"], images[1:], [weak], ["cell"])
    project = load_project(tmp_path)
    assert [lab.strong for lab in project.labels] == [True, False]
