"""Labels are never lost: autosave to the project or the recovery folder, and restore on reopen."""

from __future__ import annotations

import numpy as np
from foam_layers import add_foam_image
from plugin_helpers import PLUGIN

from napari_lazyunet._napari.autosave import label_autosaver
from napari_lazyunet._napari.classes import class_names
from napari_lazyunet._napari.links import linked_layers
from napari_lazyunet._napari.planes import is_strong, set_strong, strong_planes
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import load_project, save_project
from napari_lazyunet.core.recovery import find_recovered_labels, image_digest


def test_paintings_are_autosaved_once_per_change_and_restored_in_a_new_viewer(
    make_napari_viewer_proxy, sample, recovery_dir, qtbot, notifications
):
    viewer = make_napari_viewer_proxy()
    saver = label_autosaver(viewer)
    assert saver.timer.isActive() and saver.interval_ms <= 60_000
    image = add_foam_image(viewer, sample, 0, strong=True)
    layers = linked_layers(viewer, image)

    (folder,) = saver.autosave()
    assert folder.parent == recovery_dir / "labels"
    saved = load_project(folder)
    np.testing.assert_array_equal(saved.images[0], sample.images[0])
    np.testing.assert_array_equal(saved.labels[0].detection, sample.detection[0])
    np.testing.assert_array_equal(saved.labels[0].segmentation, sample.classes[0])
    assert saved.labels[0].strong and saved.class_names == tuple(sample.class_names)
    assert any("autosaved every" in m for _, m in notifications)
    assert saver.autosave() == []  # nothing changed: nothing written

    painted = layers["detection"].data.copy()
    painted[:5, :5] = 2
    layers["detection"].data = painted
    assert saver.autosave() == [folder]
    np.testing.assert_array_equal(load_project(folder).labels[0].detection, painted)

    # Painting after the last timer tick, then closing: the close saves it too.
    painted[-5:, -5:] = 1
    layers["detection"].data = painted
    set_strong(image, 0, False)
    viewer.layers.clear()
    recovered = find_recovered_labels(image_digest(sample.images[0]))
    np.testing.assert_array_equal(recovered.labels[0].detection, painted)
    assert not recovered.labels[0].strong

    # The same pixels opened again, under another name, get their labels back.
    other = make_napari_viewer_proxy()
    label_autosaver(other)
    reopened = other.add_image(sample.images[0].copy(), name="same image, new name")
    qtbot.waitUntil(lambda: bool(linked_layers(other, reopened)), timeout=5000)
    restored = linked_layers(other, reopened)
    np.testing.assert_array_equal(restored["detection"].data, painted)
    np.testing.assert_array_equal(restored["segmentation"].data, sample.classes[0])
    assert not is_strong(reopened, 0)
    assert class_names(reopened) == tuple(sample.class_names)
    assert any(m.startswith("restored the labels of") for _, m in notifications)
    # Another image gets nothing.
    fresh = other.add_image(sample.images[1], name="another")
    qtbot.wait(50)
    assert not linked_layers(other, fresh)


def test_stack_planes_restore_in_place(make_napari_viewer_proxy, foam_truth, qtbot):
    viewer = make_napari_viewer_proxy()
    viewer.open_sample(PLUGIN, "foam")
    saver = label_autosaver(viewer)
    image = next(layer for layer in viewer.layers if layer.__class__.__name__ == "Image")
    layers = linked_layers(viewer, image)
    separation = layers["separation"].data.copy()
    separation[2, 10:20, 10] = 1  # a new scribble on plane 2
    layers["separation"].data = separation
    set_strong(image, 3, True)
    viewer.layers.clear()  # closing the viewer removes every layer: the labels are saved

    other = make_napari_viewer_proxy()
    label_autosaver(other)
    again = other.add_image(np.asarray(image.data))
    qtbot.waitUntil(lambda: bool(linked_layers(other, again)), timeout=5000)
    restored = linked_layers(other, again)
    np.testing.assert_array_equal(restored["separation"].data, separation)
    assert 3 in strong_planes(again)
    del saver


def test_project_images_are_saved_into_their_project_and_nothing_is_deleted(
    make_napari_viewer_proxy, sample, tmp_path, recovery_dir
):
    folder = save_project(
        tmp_path / "project",
        ["a", "b"],
        [sample.images[0], sample.images[1][:40]],  # two shapes: one layer per image
        [
            ImageLabels(detection=sample.detection[0], separation=sample.separation[0]),
            ImageLabels(detection=sample.detection[1][:40]),
        ],
        sample.class_names,
    )
    viewer = make_napari_viewer_proxy()
    saver = label_autosaver(viewer)
    viewer.open(str(folder / "project.json"), plugin=PLUGIN)
    image_a = viewer.layers["a"]
    layers = linked_layers(viewer, image_a)
    detection = layers["detection"].data.copy()
    detection[:3] = 1
    layers["detection"].data = detection

    assert saver.autosave() == [folder]  # only the image that changed
    project = load_project(folder)
    np.testing.assert_array_equal(project.labels[0].detection, detection)
    np.testing.assert_array_equal(project.labels[1].detection, sample.detection[1][:40])

    # A labels layer removed from the viewer keeps its file.
    viewer.layers.remove(layers["separation"])
    detection[-3:] = 2
    layers["detection"].data = detection
    saver.autosave()
    project = load_project(folder)
    np.testing.assert_array_equal(project.labels[0].separation, sample.separation[0])
    np.testing.assert_array_equal(project.labels[0].detection, detection)
    assert not (recovery_dir / "labels").exists()  # nothing went to the recovery folder


def test_a_project_that_cannot_be_written_falls_back_to_the_recovery_folder(
    make_napari_viewer_proxy, sample, tmp_path, recovery_dir, notifications
):
    folder = save_project(
        tmp_path / "yaml",
        ["a"],
        [sample.images[0]],
        [ImageLabels(detection=sample.detection[0])],
        sample.class_names,
    )
    # A hand-written YAML file is never rewritten by the tool.
    (folder / "project.json").rename(folder / "project.yaml")
    viewer = make_napari_viewer_proxy()
    saver = label_autosaver(viewer)
    viewer.open(str(folder / "project.yaml"), plugin=PLUGIN)
    layers = linked_layers(viewer, viewer.layers["a"])
    layers["detection"].data = np.where(layers["detection"].data > 0, 1, 2).astype(np.uint8)
    (written,) = saver.autosave()
    assert written.parent == recovery_dir / "labels"
    np.testing.assert_array_equal(
        load_project(written).labels[0].detection, layers["detection"].data
    )
    assert any("could not be autosaved" in m for _, m in notifications)
