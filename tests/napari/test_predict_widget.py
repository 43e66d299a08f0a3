"""Predict widget with a real viewer: output layers, worker, cancel, folders, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from foam_layers import add_foam_image
from plugin_helpers import errors

from napari_lazyunet.api import LazyUNet

pytestmark = pytest.mark.gui

napari = pytest.importorskip("napari")

from napari_lazyunet._napari.model_store import model_store  # noqa: E402
from napari_lazyunet._napari.predict_widget import PredictWidget  # noqa: E402
from napari_lazyunet._napari.prediction_layers import find_output_layer  # noqa: E402

ROLES = ("detection", "segmentation", "separation", "instances")
DTYPES = {
    "detection": np.uint8,
    "segmentation": np.uint8,
    "separation": np.uint8,
    "instances": np.int32,
}


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    """A tiny model trained for a few steps, and its file."""
    model = LazyUNet(class_names=sample.class_names, base_channels=4, depth=2)
    model.fit(
        sample.images[:2],
        detection=sample.detection[:2],
        separation=sample.separation[:2],
        segmentation=[sample.classes[0], None],
        steps=3,
        batch_size=2,
        patch_size=32,
        validate_every=0,
        device="cpu",
    )
    path = model.save(tmp_path_factory.mktemp("model") / "model.pt")
    return model, path


def _widget(viewer, tile=64):
    widget = PredictWidget(viewer)
    widget.use_threads = False
    widget.tile_spin.setValue(tile)
    widget.device_combo.setCurrentIndex(widget.device_combo.findData("cpu"))
    return widget


def test_predict_layer_adds_then_updates_outputs(make_napari_viewer_proxy, sample, trained):
    model, _ = trained
    viewer = make_napari_viewer_proxy()
    image = add_foam_image(viewer, sample, 2, scale=(0.5, 2.0), translate=(10.0, -3.0))
    model_store(viewer).set(model, "trained in a test")
    widget = _widget(viewer)
    widget.probability_check.setChecked(True)
    widget.set_input(image)
    n_layers = len(viewer.layers)

    assert widget.run() is True
    assert widget.last_outcome.status == "finished"
    expected = model.predict(sample.images[2], tile_size=64, device="cpu")
    for role in ROLES:
        layer = find_output_layer(viewer, image, role)
        assert isinstance(layer, napari.layers.Labels), role
        assert layer.data.shape == (64, 64) and layer.data.dtype == DTYPES[role]
        np.testing.assert_array_equal(layer.scale, (0.5, 2.0))
        np.testing.assert_array_equal(layer.translate, (10.0, -3.0))
        np.testing.assert_array_equal(layer.data, getattr(expected, role))
    assert set(np.unique(viewer.layers["foam 2 predicted segmentation"].data)) <= {0, 1, 2}
    assert viewer.layers["foam 2 instances"].data.max() >= 1
    for task in ("detection", "segmentation", "separation"):
        prob = find_output_layer(viewer, image, task, probability=True)
        assert prob.data.dtype == np.float32 and prob.data.shape == (64, 64)
        assert prob.data.min() >= 0.0 and prob.data.max() <= 1.0
    assert len(viewer.layers) == n_layers + 7

    # A second run updates the same layers, found by metadata even when renamed.
    viewer.layers["foam 2 instances"].name = "my instances"
    viewer.layers["my instances"].data = np.zeros((64, 64), np.int32)
    assert widget.run()
    assert len(viewer.layers) == n_layers + 7
    np.testing.assert_array_equal(viewer.layers["my instances"].data, expected.instances)
    # The painted lazy labels were left alone.
    np.testing.assert_array_equal(viewer.layers["foam 2 detection"].data, sample.detection[2])


def _foam_image_ready(make_napari_viewer_proxy, sample, model):
    """A viewer with foam image 2, ``model`` as its model, and the widget set on the image."""
    viewer = make_napari_viewer_proxy()
    image = add_foam_image(viewer, sample, 2)
    model_store(viewer).set(model, "trained in a test")
    widget = _widget(viewer)
    widget.set_input(image)
    return viewer, image, widget


def test_separation_threshold_from_the_form(make_napari_viewer_proxy, sample, trained):
    model, _ = trained
    viewer, image, widget = _foam_image_ready(make_napari_viewer_proxy, sample, model)
    widget.probability_check.setChecked(True)
    # By default the model's own (calibrated) threshold applies.
    assert "separation_threshold" not in widget.predict_options()
    assert widget.separation_spin.text() == "model's"

    assert widget.run()
    interface = find_output_layer(viewer, image, "separation", probability=True).data
    threshold = round(float(np.quantile(interface, 0.5)), 2)
    widget.separation_spin.setValue(threshold)
    assert widget.run()
    separation = find_output_layer(viewer, image, "separation").data
    expected = model.predict(
        sample.images[2], tile_size=64, device="cpu", separation_threshold=threshold
    ).separation
    np.testing.assert_array_equal(separation, expected)
    assert separation.sum() > 0


def test_segmentation_threshold_from_the_form(make_napari_viewer_proxy, sample, trained):
    model, _ = trained
    viewer, image, widget = _foam_image_ready(make_napari_viewer_proxy, sample, model)
    assert "segmentation_threshold" not in widget.predict_options()
    assert widget.segmentation_spin.text() == "model's"

    widget.segmentation_spin.setValue(0.1)
    assert widget.predict_options()["segmentation_threshold"] == pytest.approx(0.1)
    assert widget.run()
    segmentation = find_output_layer(viewer, image, "segmentation").data
    expected = model.predict(
        sample.images[2], tile_size=64, device="cpu", segmentation_threshold=0.1
    ).segmentation
    np.testing.assert_array_equal(segmentation, expected)
    half = model.predict(
        sample.images[2], tile_size=64, device="cpu", segmentation_threshold=0.5
    ).segmentation
    # A lower threshold segments more, never less.
    assert (segmentation > 0).sum() > (half > 0).sum()
    assert not np.any((half > 0) & (segmentation == 0))


def test_min_instance_size_is_the_models_unless_set(make_napari_viewer_proxy):
    widget = PredictWidget(make_napari_viewer_proxy())
    assert widget.min_size_spin.text() == "model's"
    assert "min_instance_size" not in widget.predict_options()
    widget.min_size_spin.setValue(0)  # keep every instance
    assert widget.predict_options()["min_instance_size"] == 0


def test_input_scale_from_the_form(make_napari_viewer_proxy, sample, trained):
    model, _ = trained
    viewer, image, widget = _foam_image_ready(make_napari_viewer_proxy, sample, model)
    assert "input_scale" not in widget.predict_options()
    assert widget.scale_spin.text() == "model's"

    widget.scale_spin.setValue(0.5)
    assert widget.run()
    segmentation = find_output_layer(viewer, image, "segmentation").data
    assert segmentation.shape == sample.images[2].shape[:2]
    expected = model.predict(sample.images[2], tile_size=64, device="cpu", input_scale=0.5)
    np.testing.assert_array_equal(segmentation, expected.segmentation)
    unscaled = model.predict(sample.images[2], tile_size=64, device="cpu").segmentation
    assert not np.array_equal(segmentation, unscaled)


def test_predict_all_layers_in_worker_with_a_stack(
    make_napari_viewer_proxy, qtbot, sample, trained
):
    model, _ = trained
    viewer = make_napari_viewer_proxy()
    flat = viewer.add_image(sample.images[0], name="flat")
    stack = viewer.add_image(np.stack(sample.images[:2]), name="stack", scale=(3.0, 1.0, 1.0))
    model_store(viewer).set(model, "trained in a test")
    widget = _widget(viewer)
    widget.use_threads = True
    widget.set_input("all")

    assert widget.run()
    assert widget.running and not widget.run_button.isEnabled()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert widget.last_outcome.status == "finished"
    assert widget.progress.value() == 1000
    inst = find_output_layer(viewer, stack, "instances")
    assert inst.data.shape == (2, 64, 64) and inst.data.dtype == np.int32
    np.testing.assert_array_equal(inst.scale, (3.0, 1.0, 1.0))
    np.testing.assert_array_equal(
        inst.data[1], model.predict(sample.images[1], tile_size=64, device="cpu").instances
    )
    assert find_output_layer(viewer, flat, "instances").data.shape == (64, 64)
    assert "Predicted 2 image(s)" in widget.status.text()


def test_cancel_keeps_finished_images(make_napari_viewer_proxy, qtbot, sample, trained):
    model, _ = trained
    viewer = make_napari_viewer_proxy()
    big = viewer.add_image(np.tile(sample.images[0], (6, 4, 4)), name="big")  # 6 planes 256^2
    model_store(viewer).set(model, "trained in a test")
    widget = _widget(viewer, tile=32)
    widget.use_threads = True
    widget.batch_spin.setValue(1)
    widget.set_input(big)

    assert widget.run()
    qtbot.waitUntil(lambda: widget.progress.value() > 0, timeout=60_000)
    widget.cancel_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert widget.last_outcome.status == "stopped"
    assert widget.progress.value() < 1000
    assert find_output_layer(viewer, big, "instances") is None
    assert "Cancelled" in widget.status.text()


def test_predict_folder_with_model_file(make_napari_viewer_proxy, sample, trained, tmp_path):
    model, path = trained
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for k in range(2):
        tifffile.imwrite(source / f"img{k}.tif", sample.images[k])
    viewer = make_napari_viewer_proxy()
    widget = _widget(viewer)
    widget.model_edit.setText(str(path))
    widget.set_input("folder")
    widget.in_folder_edit.setText(str(source))
    widget.out_folder_edit.setText(str(out))

    assert widget.run()
    assert widget.last_outcome.status == "finished"
    for k in range(2):
        for role in ROLES:
            written = tifffile.imread(out / role / f"img{k}.tif")
            assert written.shape == (64, 64) and written.dtype == DTYPES[role]
        expected = model.predict(sample.images[k], tile_size=64, device="cpu").instances
        np.testing.assert_array_equal(tifffile.imread(out / "instances" / f"img{k}.tif"), expected)
    assert "Predicted 2 image(s)" in widget.status.text()
    assert len(viewer.layers) == 0
    # Written like lazyunet predict: listed in the folder's manifest, so a second run may
    # write there again, and same-stem inputs get distinct outputs.
    manifest = json.loads((out / "prediction.json").read_text())
    assert {f["path"] for f in manifest["files"]} >= {"instances/img0.tif", "detection/img1.tif"}
    tifffile.imwrite(source / "img0.png", sample.images[2])  # a second "img0"
    assert widget.run() and widget.last_outcome.status == "finished"
    assert (out / "instances" / "img0.png.tif").is_file()
    assert (out / "instances" / "img0.tif.tif").is_file()


def test_predict_folder_never_writes_into_a_project(
    make_napari_viewer_proxy, sample, trained, tmp_path, notes
):
    from napari_lazyunet.core.labels import ImageLabels
    from napari_lazyunet.core.project import save_project

    _, path = trained
    project = save_project(
        tmp_path / "project",
        ["a"],
        [sample.images[0]],
        [ImageLabels(detection=sample.detection[0])],
        sample.class_names,
    )
    before = (project / "detection" / "a.tif").read_bytes()
    viewer = make_napari_viewer_proxy()
    widget = _widget(viewer)
    widget.model_edit.setText(str(path))
    widget.set_input("folder")
    widget.in_folder_edit.setText(str(project / "images"))
    widget.out_folder_edit.setText(str(project))
    assert widget.run() is False
    assert "is a project folder" in errors(notes)[-1]
    assert (project / "detection" / "a.tif").read_bytes() == before


def test_predict_error_notifications(make_napari_viewer_proxy, sample, trained, tmp_path, notes):
    model, _ = trained
    viewer = make_napari_viewer_proxy()
    widget = _widget(viewer)

    assert widget.run() is False
    assert "no model yet" in errors(notes)[-1]

    model_store(viewer).set(model, "trained in a test")
    assert widget.run() is False
    assert "no image layer" in errors(notes)[-1]

    rgb = viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    widget.set_input(rgb)
    assert widget.run() is False
    assert "expects 1 channel(s) but the image has 3" in errors(notes)[-1]

    widget.model_edit.setText(str(tmp_path / "missing.pt"))
    assert widget.run() is False
    assert "does not exist" in errors(notes)[-1]

    assert all(kind == "Notification" for severity, _, kind in notes if severity == "error")
    assert len(viewer.layers) == 1


def test_train_then_predict_on_the_plugin_sample(foam_viewer, qtbot):
    """Through the manifest: dock both widgets, train on the sample stack, predict it."""
    from plugin_helpers import PLUGIN

    viewer = foam_viewer
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train")
    _, predict = viewer.window.add_plugin_dock_widget(PLUGIN, "Predict")
    assert [layer.name for layer in train.selected_layers()] == ["foam"]
    train.use_threads = False
    train.set_fields(
        base_channels=4,
        depth=2,
        steps=2,
        batch_size=2,
        patch_size=32,
        validation_share=0.25,
        device="cpu",
    )
    assert train.start()
    assert train.last_outcome.status == "finished"
    assert "trained in this viewer (2 steps)" in predict.model_label.text()

    image = viewer.layers["foam"]
    predict.set_input(image)
    predict.tile_spin.setValue(96)
    assert predict.run()
    qtbot.waitUntil(lambda: not predict.running, timeout=60_000)
    instances = find_output_layer(viewer, image, "instances")
    assert instances.data.shape == image.data.shape and instances.data.dtype == np.int32
    # The plugin's own lazy-label layers are still the three linked ones.
    from napari_lazyunet._napari.links import linked_layers

    assert sorted(linked_layers(viewer, image)) == ["detection", "segmentation", "separation"]


def test_output_layers_are_added_one_per_turn_of_the_event_loop(
    make_napari_viewer_proxy, qtbot, sample, trained
):
    """Adding a layer builds its visual on the GUI thread; all of them at once froze the viewer."""
    from qtpy.QtCore import QTimer

    model, _ = trained
    viewer = make_napari_viewer_proxy()
    viewer.add_image(np.stack(sample.images[:2]), name="stack")
    model_store(viewer).set(model, "trained in a test")
    widget = _widget(viewer)
    widget.use_threads = True
    widget.probability_check.setChecked(True)
    ticks = [0]
    ticker = QTimer()
    ticker.setInterval(0)
    ticker.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    inserted_at: list[int] = []
    viewer.layers.events.inserted.connect(lambda event: inserted_at.append(ticks[0]))
    ticker.start()
    assert widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    ticker.stop()
    assert widget.last_outcome.status == "finished"
    assert len(inserted_at) == 7  # four label layers, three probability images
    assert len(set(inserted_at)) == len(inserted_at)  # never two in one turn
    assert "Predicted 1 image(s)" in widget.status.text()


def test_a_large_image_is_opened_lazily_and_predicted_into_ome_zarr(
    make_napari_viewer_proxy, sample, trained, tmp_path, monkeypatch
):
    """A whole-slide image: a dask layer in, OME-Zarr stores out, shown as dask layers."""
    import dask.array as da

    from napari_lazyunet.core import lazy_images

    monkeypatch.setattr(lazy_images, "LARGE_IMAGE_PIXELS", 50 * 50)  # 64 x 64 is large here
    model, _ = trained
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, sample.images[2], tile=(16, 16))
    viewer = make_napari_viewer_proxy()
    model_store(viewer).set(model, "trained in a test")
    widget = _widget(viewer)
    image = widget.open_large_image(path)
    assert isinstance(image.data, da.Array) and widget.input_combo.currentText() == "slide"

    assert widget.run() is True, errors()
    assert widget.last_outcome.status == "finished"
    expected = model.predict(sample.images[2], tile_size=64, device="cpu")
    recovery = tmp_path / "recovery" / "predictions" / "slide"
    for role in ROLES:
        layer = find_output_layer(viewer, image, role)
        assert isinstance(layer.data, da.Array), role  # read from the store, not in memory
        np.testing.assert_array_equal(np.asarray(layer.data), getattr(expected, role))
        assert (recovery / role / "slide.ome.zarr").is_dir()
    assert str(recovery) in widget.status.text()
