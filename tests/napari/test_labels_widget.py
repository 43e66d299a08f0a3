"""Lazy labels widget in a real viewer: link, switch classes and brushes, flags, live counts."""

from __future__ import annotations

import numpy as np
from plugin_helpers import PLUGIN, errors

from napari_lazyunet._napari.classes import class_names
from napari_lazyunet._napari.labels_widget import LabelsWidget, count_labels
from napari_lazyunet._napari.links import ROLES, linked_layers
from napari_lazyunet._napari.planes import is_sparse, strong_planes


def test_count_labels_counts_components_per_class_and_plane():
    det = np.zeros((2, 10, 10), dtype=np.uint8)
    det[0, 1:3, 1:3] = 1
    det[0, 2:4, 3:5] = 2  # touches the first region but is another class: 2 objects
    det[1, 1:3, 1:3] = 1  # same place on the next plane: another object
    det[1, 6:8, 6:8] = 3  # explicit background (C + 1) is not an object
    sep = np.zeros_like(det)
    sep[0, 5, :] = 1
    counts = count_labels(det, sep, n_classes=2, strong=1, planes=2)
    assert (counts.objects, counts.interfaces) == (3, 1)
    assert "strong images: 1 of 2" in counts.text()


def test_sample_flow_classes_brushes_flags_and_counts(foam_viewer, qtbot, notifications):
    viewer = foam_viewer
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Lazy labels")
    assert isinstance(widget, LabelsWidget)
    image = widget.image_layer()
    assert image is viewer.layers["foam"]
    layers = linked_layers(viewer, image)
    assert set(layers) == set(ROLES)
    before = widget.counts()
    assert before.objects > 20 and before.interfaces > 0
    assert (before.strong, before.planes) == (1, 4)
    assert "strong images: 1 of 4" in widget.counts_label.text()

    # One click switches to a class with the medium brush in the detection layer.
    widget.class_buttons[1].click()
    detection = layers["detection"]
    assert viewer.layers.selection.active is detection
    assert (detection.selected_label, detection.mode) == (2, "paint")
    assert detection.brush_size == widget.inner_size.value()
    widget.interface_button.click()
    separation = layers["separation"]
    assert viewer.layers.selection.active is separation
    assert (separation.selected_label, separation.brush_size) == (1, widget.interface_size.value())

    # Paint a new object in an empty corner: the count follows.
    viewer.dims.set_current_step(0, 0)
    detection.data[0, :] = 0
    detection.data[0, 2:6, 2:6] = 0
    with detection.block_history():
        ys, xs = np.mgrid[2:6, 2:6]
        detection.data_setitem((np.zeros(ys.size, int), ys.ravel(), xs.ravel()), 1)
    qtbot.waitUntil(lambda: widget.counts_label.text() == widget.counts().text(), timeout=2000)
    assert widget.counts() != before

    # Flags are per plane: strong on plane 0 only; an empty plane refuses "strong".
    assert widget.strong_check.isChecked()
    viewer.dims.set_current_step(0, 2)
    qtbot.waitUntil(lambda: not widget.strong_check.isChecked(), timeout=2000)
    widget.strong_check.setChecked(True)
    assert not widget.strong_check.isChecked() and strong_planes(image) == [0]
    assert any("segmentation of this plane is empty" in m for m in errors(notifications))
    widget.sparse_check.setChecked(True)
    assert is_sparse(image, 2) and not is_sparse(image, 0)


def test_class_names_and_colours_are_editable(foam_viewer):
    viewer = foam_viewer
    widget = LabelsWidget(viewer)
    image = widget.image_layer()
    widget.name_edits[0].setText("air bubble")
    widget.name_edits[0].editingFinished.emit()
    assert class_names(image) == ("air bubble", "crystal")
    widget.add_class()
    assert class_names(image)[-1] == "class 3" and len(widget.class_buttons) == 3
    detection = linked_layers(viewer, image)["detection"]
    # Class 3 got a colour; explicit background moved to C + 1 = 4.
    assert detection.colormap.color_dict[3][3] == 1.0
    assert np.allclose(detection.colormap.color_dict[4][:3], 0x9A / 255, atol=0.01)
    widget.set_class_color(0, "#ff0000")
    np.testing.assert_allclose(detection.colormap.color_dict[1], [1, 0, 0, 1])
    widget.remove_class()
    assert len(class_names(image)) == 2


def test_removing_a_painted_class_is_refused(foam_viewer, notifications):
    widget = LabelsWidget(foam_viewer)
    widget.remove_class()  # class 2 (crystal) is painted in the sample
    assert class_names(widget.image_layer()) == ("bubble", "crystal")
    assert any("erase it" in m for m in errors(notifications))


def test_new_image_gets_linked_layers_and_wrong_shapes_are_reported(
    make_napari_viewer, notifications
):
    viewer = make_napari_viewer()
    widget = LabelsWidget(viewer)
    widget.link_button.click()
    assert any("no image layer" in m for m in errors(notifications))
    rgb = viewer.add_image(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8))
    scribbles = viewer.add_labels(np.zeros((40, 50), dtype=np.uint8), name="my scribbles")
    widget.image_combo.set_layer(rgb)
    assert widget.adopt_layer.findText("my scribbles") >= 0
    widget.adopt_role.setCurrentText("separation")
    widget.adopt_layer.setCurrentIndex(widget.adopt_layer.findText("my scribbles"))
    widget.adopt_button.click()
    widget.link_button.click()
    layers = linked_layers(viewer, rgb)
    assert layers["separation"] is scribbles
    assert layers["detection"].data.shape == (40, 50)
    # A linked layer whose shape no longer matches is reported, not a traceback.
    layers["detection"].data = np.zeros((10, 10), dtype=np.uint8)
    n_errors = len(errors(notifications))
    widget.link_button.click()
    assert len(errors(notifications)) == n_errors + 1
    assert "shape" in errors(notifications)[-1]
