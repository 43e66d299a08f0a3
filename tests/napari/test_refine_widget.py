"""Refine widget in a real viewer: GrabCut into the segmentation layer, one undo step."""

from __future__ import annotations

import numpy as np
from plugin_helpers import PLUGIN, dice, errors
from scipy import ndimage as ndi

from napari_lazyunet._napari.labels_layers import link_label_layers
from napari_lazyunet._napari.links import linked_layers
from napari_lazyunet._napari.planes import is_strong, set_strong, strong_planes
from napari_lazyunet._napari.refine_widget import RefineWidget
from napari_lazyunet._napari.training_data import collect_training_data
from napari_lazyunet.core.labels import inner_region_ids


def _open(viewer, plane):
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Refine (GrabCut)")
    assert isinstance(widget, RefineWidget)
    viewer.dims.set_current_step(0, plane)
    image = widget.image_combo.layer()
    return widget, image, linked_layers(viewer, image)


def test_inner_region_ids_number_components_class_by_class():
    det = np.zeros((8, 8), dtype=np.uint8)
    det[0:2, 0:2] = 1
    det[5:7, 5:7] = 1
    det[0:2, 5:7] = 2
    det[3, 3] = 3  # explicit background of a two-class image
    ids = inner_region_ids(det, values=(1, 2))
    assert sorted(np.unique(ids)) == [0, 1, 2, 3]
    assert ids[0, 5] == 3 and ids[3, 3] == 0


def test_refine_all_keeps_user_pixels_marks_strong_and_undoes_in_one_step(
    foam_viewer, foam_truth, qtbot
):
    viewer = foam_viewer
    widget, image, layers = _open(viewer, plane=1)
    seg = layers["segmentation"]
    assert not seg.data[1].any() and not is_strong(image, 1)
    # The user already corrected a patch by hand (class 2 on a bubble region, on purpose).
    truth = foam_truth.classes[1]
    ys, xs = np.nonzero(truth == 1)
    user = (np.full(20, 1), ys[:20], xs[:20])
    seg.data_setitem(user, 2)
    before = np.array(seg.data, copy=True)

    widget.use_thread = True
    widget.refine_button.click()
    qtbot.waitUntil(lambda: widget.last_result is not None, timeout=30000)

    after = np.array(seg.data, copy=True)
    assert dice(after[1], truth) > 0.85  # GrabCut grew the inner regions to the objects
    assert np.all(after[1][ys[:20], xs[:20]] == 2)  # user pixels untouched
    np.testing.assert_array_equal(after[[0, 2, 3]], before[[0, 2, 3]])  # other planes untouched
    painted = linked_layers(viewer, image)["detection"].data[1]
    assert np.all(after[1][(painted == 1) & (before[1] == 0)] == 1)
    assert is_strong(image, 1)
    assert "refined" in widget.status.text()

    seg.undo()  # one step back restores the data exactly as before the refinement
    np.testing.assert_array_equal(seg.data, before)
    seg.redo()
    np.testing.assert_array_equal(seg.data, after)


def test_undo_and_redo_of_a_refinement_move_the_strong_flag_it_set(foam_viewer):
    viewer = foam_viewer
    widget, image, layers = _open(viewer, plane=1)
    widget.use_thread = False
    seg = layers["segmentation"]
    widget.refine()
    assert seg.data[1].any() and is_strong(image, 1)

    seg.undo()  # Ctrl+Z on the segmentation layer
    assert not seg.data[1].any() and not is_strong(image, 1)
    seg.redo()
    assert seg.data[1].any() and strong_planes(image) == [0, 1]

    # Undo on a hidden layer emits no event: training checks the flags itself.
    seg.visible = False
    seg.undo()
    data = collect_training_data(viewer)
    assert [lab.strong for lab in data.labels] == [True, False, False, False]
    assert strong_planes(image) == [0]

    # A flag set before the refinement is not the refinement's: undo leaves it.
    seg.visible = True
    viewer.dims.set_current_step(0, 2)
    seg.data_setitem((np.array([2]), np.array([0]), np.array([0])), 1)
    set_strong(image, 2, True)
    widget.refine()
    seg.undo()
    assert seg.data[2].sum() == 1 and is_strong(image, 2)


def test_refine_selected_class_and_object_under_cursor(foam_viewer):
    viewer = foam_viewer
    widget, image, layers = _open(viewer, plane=2)
    widget.use_thread = False
    widget.strong_check.setChecked(False)
    seg, det = layers["segmentation"], layers["detection"]

    det.selected_label = 2
    widget.refine("selected class")
    assert set(np.unique(seg.data[2])) == {0, 2}
    assert not is_strong(image, 2)

    # Object under the cursor: a bubble's inner region.
    ids = inner_region_ids(det.data[2], (1, 2))
    target = int(ids[det.data[2] == 1][0])
    cy, cx = (int(round(c)) for c in ndi.center_of_mass(ids == target))
    if ids[cy, cx] != target:  # a non-convex region: take one of its pixels
        cy, cx = (int(v[0]) for v in np.nonzero(ids == target))
    viewer.cursor.position = (2, cy, cx)
    before = np.array(seg.data[2], copy=True)
    widget.refine("object under cursor")
    new = seg.data[2] != before
    assert new.any() and set(np.unique(seg.data[2][new])) == {1}
    labelled, n = ndi.label(new, structure=np.ones((3, 3)))
    assert labelled[cy, cx] > 0 and n <= 3  # one object (its mask may be cut by user pixels)


def test_refine_errors_are_notifications(make_napari_viewer_proxy, notifications):
    viewer = make_napari_viewer_proxy()
    widget = RefineWidget(viewer)
    widget.use_thread = False
    widget.refine_button.click()
    assert "no image layer" in errors(notifications)[-1]
    image = viewer.add_image(np.random.default_rng(0).random((40, 40)))
    widget.refine_button.click()
    assert "Lazy labels widget" in errors(notifications)[-1]
    layers = link_label_layers(viewer, image)
    widget.refine_button.click()
    assert "no inner region is painted" in errors(notifications)[-1]
    layers["detection"].data[10:14, 10:14] = 1
    widget.mode_combo.setCurrentText("object under cursor")
    viewer.cursor.position = (30, 30)
    widget.refine_button.click()
    assert "cursor is not on a painted inner region" in errors(notifications)[-1]
    assert not layers["segmentation"].data.any()
