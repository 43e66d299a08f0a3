"""Train widget with a real viewer: train, stop midway, save / load, error notifications."""

from __future__ import annotations

import numpy as np
import pytest
from foam_layers import add_foam_image, tiny_settings
from plugin_helpers import errors

from napari_lazyunet.api import LazyUNet, split_validation

pytestmark = pytest.mark.gui

napari = pytest.importorskip("napari")

from napari_lazyunet._napari._form import device_choices  # noqa: E402
from napari_lazyunet._napari.model_store import model_store  # noqa: E402
from napari_lazyunet._napari.train_widget import TrainWidget  # noqa: E402
from napari_lazyunet._napari.workers import StallMeter  # noqa: E402


def _widget(viewer, steps, validation=0.0, *, threaded=False, checkpoint=None):
    """A Train widget set to a tiny network; ``validation=None`` keeps the form's share."""
    widget = TrainWidget(viewer)
    widget.use_threads = threaded
    tiny_settings(widget, steps=steps)
    if validation is not None:
        widget.validation_spin.setValue(validation)
    if checkpoint is not None:
        widget.checkpoint_edit.setText(str(checkpoint))
    return widget


def test_split_keeps_a_strong_image_for_training():
    train, val = split_validation([True, False, False, False], 0.5, seed=3)
    assert len(val) == 2 and 0 in train
    assert sorted(train + val) == [0, 1, 2, 3]
    assert split_validation([False, False], 0.0) == ([0, 1], [])


def test_device_menu_lists_what_is_available():
    choices = device_choices()
    values = [value for value, _, _ in choices]
    assert values[0] == "auto" and "cpu" in values and "mps" in values
    assert any(value.startswith("cuda") for value in values)
    assert all(ok for value, _, ok in choices if value in ("auto", "cpu"))


def test_train_a_few_steps_with_validation(make_napari_viewer_proxy, sample, notes):
    viewer = make_napari_viewer_proxy()
    add_foam_image(viewer, sample, 0, strong=True)
    add_foam_image(viewer, sample, 1)
    widget = _widget(viewer, steps=4, validation=0.5)

    assert widget.start() is True
    assert widget.last_outcome.status == "finished"
    model = widget.model
    assert model.steps_done == 4
    assert model.class_names == ("bubble", "crystal")
    assert model.config.model.base_channels == 4
    assert model_store(viewer).model is model
    steps, losses = widget.plot.series("loss")
    assert steps == [1.0, 2.0, 3.0, 4.0] and all(np.isfinite(losses))
    seg_steps, seg_losses = widget.plot.series("segmentation")
    assert set(seg_steps) <= set(steps) and all(v > 0 for v in seg_losses)
    assert widget.plot.series("detection")[0] == steps
    val_steps, _ = widget.plot.series("val_loss")
    assert val_steps == [2.0, 4.0]  # validate every 2 steps on the held-out image
    assert widget.progress.value() == 4
    assert "Finished 4 step" in widget.status.text()
    threshold = model.config.predict.separation_threshold
    assert f"Separation threshold {threshold:g}" in widget.status.text()
    # The strong image stayed in training, so the validation set's lack of
    # strong images is not reported as "no strong image".
    assert not any("no strong image" in message for _, message, _ in notes)
    assert not errors(notes)


def test_stop_midway_in_the_worker_keeps_the_checkpoint(
    make_napari_viewer_proxy, qtbot, sample, tmp_path
):
    viewer = make_napari_viewer_proxy()
    add_foam_image(viewer, sample, 0, strong=True)
    checkpoint = tmp_path / "run.pt"
    widget = _widget(viewer, steps=100_000, threaded=True, checkpoint=checkpoint)
    meter = StallMeter()
    meter.start()

    assert widget.start() is True
    assert widget.running and not widget.start_button.isEnabled()
    assert model_store(viewer).model is None  # published only when the run ends
    # Let it train for a few steps and at least 30 ticks (~0.3 s) of the meter.
    qtbot.waitUntil(
        lambda: len(widget.plot.series("loss")[0]) >= 3 and len(meter.gaps_ms) >= 30,
        timeout=60_000,
    )
    assert widget.running  # 100 000 steps: still far from the end
    widget.stop_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    meter.stop()

    assert widget.last_outcome.status == "stopped"
    model = widget.model
    assert 3 <= model.steps_done < 100_000
    assert checkpoint.is_file()
    saved = LazyUNet.load(checkpoint)
    assert saved.steps_done == model.steps_done
    assert "Stopped at step" in widget.status.text() and str(checkpoint) in widget.status.text()
    assert model_store(viewer).model is model
    assert widget.start_button.isEnabled() and not widget.stop_button.isEnabled()
    # Training ran off the GUI thread: the event loop kept ticking throughout.
    print(f"\nlongest event-loop stall while training: {meter.max_gap_ms:.0f} ms")
    assert meter.max_gap_ms < 1000


def test_save_load_and_continue(make_napari_viewer_proxy, sample, tmp_path, notes):
    viewer = make_napari_viewer_proxy()
    add_foam_image(viewer, sample, 0, strong=True)
    widget = _widget(viewer, steps=2)
    assert widget.save_model(tmp_path / "none.pt") is None  # nothing trained yet
    assert "no model to save" in errors(notes)[-1]
    assert widget.start()

    path = widget.save_model(tmp_path / "model.pt")
    assert path is not None and path.is_file()

    other = make_napari_viewer_proxy()
    add_foam_image(other, sample, 1)
    second = TrainWidget(other)
    second.use_threads = False
    loaded = second.load_model(path)
    assert loaded is not None and loaded.steps_done == 2
    assert model_store(other).model is loaded
    assert model_store(viewer).model is widget.model  # stores are per viewer
    assert second.base_spin.value() == 4 and second.continue_check.isChecked()
    assert second.plot.series("loss")[0] == [1.0, 2.0]  # history shown

    tiny_settings(second, steps=2)
    second.validation_spin.setValue(0.0)
    assert second.start()
    # Continuing trains a copy: the loaded model stays, both can be chosen.
    continued = second.model
    assert continued is not loaded and continued.steps_done == 4 and loaded.steps_done == 2
    assert second.plot.series("loss")[0] == [1.0, 2.0, 3.0, 4.0]
    store = model_store(other)
    assert [e.model for e in store.entries] == [loaded, continued]
    assert store.model is continued and store.current.file is not None  # kept in a file
    assert LazyUNet.load(store.current.file).steps_done == 4
    assert second.chooser.combo.count() == 2
    second.chooser.combo.activated.emit(0)
    assert store.model is loaded
    second.chooser.discard()  # loaded from a file: discarded without asking
    assert store.entries[0].model is continued and store.model is continued


def test_training_never_replaces_a_model_and_keeps_it_in_a_file(
    make_napari_viewer_proxy, sample, recovery_dir, notes
):
    viewer = make_napari_viewer_proxy()
    add_foam_image(viewer, sample, 0, strong=True)
    widget = _widget(viewer, steps=2, validation=None)
    assert widget.start()
    first = widget.model
    assert widget.start()
    second = widget.model
    store = model_store(viewer)
    assert [e.model for e in store.entries] == [first, second] and store.model is second
    # Without a model file of the user's, each run kept its model in the recovery folder.
    files = sorted((recovery_dir / "models").glob("model-*.pt"))
    assert len(files) == 2 and {e.file for e in store.entries} == set(files)
    assert any("the model is kept in" in n[1] for n in notes)
    store.discard(0)
    assert store.entries[0].model is second and files[0].is_file()  # the file stays


def test_error_notifications(make_napari_viewer_proxy, sample, tmp_path, notes):
    # Behind the proxy napari gives dock widgets, which wraps each layer anew
    # on every access: ticked layers must stay ticked all the same.
    viewer = make_napari_viewer_proxy()
    widget = _widget(viewer, steps=2, validation=None)

    # No image layer at all.
    assert widget.start() is False
    assert "no image layer" in errors(notes)[-1]

    # Labels of another shape than their image.
    image = add_foam_image(viewer, sample, 0, strong=True)
    widget.set_selected_layers([image])
    viewer.layers["foam 0 detection"].data = np.zeros((32, 32), np.uint8)
    assert widget.start() is False
    assert "has shape (32, 32)" in errors(notes)[-1]
    viewer.layers["foam 0 detection"].data = sample.detection[0]

    # A model trained for other classes cannot continue on these labels.
    other = LazyUNet(class_names=("cell",), base_channels=4, depth=2)
    model_store(viewer).set(other, "test")
    widget.continue_check.setChecked(True)
    assert widget.start() is False
    assert "trained for classes ['cell']" in errors(notes)[-1]
    widget.continue_check.setChecked(False)

    # An unreadable model file.
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert widget.load_model(bad) is None
    assert str(bad) in errors(notes)[-1]

    # Every one of these was a plain message, never an error with a traceback.
    assert all(kind == "Notification" for severity, _, kind in notes if severity == "error")
    assert not widget.running


def test_no_strong_image_warns_and_trains(make_napari_viewer_proxy, sample, notes):
    viewer = make_napari_viewer_proxy()
    add_foam_image(viewer, sample, 0)
    widget = _widget(viewer, steps=1)
    assert widget.start()
    warnings = [message for severity, message, _ in notes if severity == "warning"]
    assert any("no strong image" in message for message in warnings)
    assert widget.last_outcome.status == "finished"


def test_presets_fill_the_form_from_the_engine(make_napari_viewer_proxy):
    from napari_lazyunet.config import LazyUNetConfig
    from napari_lazyunet.sample.demo import DemoSettings

    widget = TrainWidget(make_napari_viewer_proxy())
    # "auto" is the default: every size left to the engine, steps to the time budget.
    assert widget.preset_combo.currentData() == "auto"
    auto = widget.config_for(("a",), 1)
    assert (auto.model.base_channels, auto.model.depth, auto.train.steps) == (None,) * 3
    assert (auto.train.patch_size, auto.train.learning_rate, auto.predict.input_scale) == (
        None,
        None,
        None,
    )
    assert auto.train.time_budget == widget.budget_spin.value() > 0
    assert widget.base_spin.text() == "auto"
    widget.preset_combo.setCurrentIndex(widget.preset_combo.findData("paper"))
    assert (widget.base_spin.value(), widget.depth_spin.value()) == (64, 4)
    assert (widget.steps_spin.value(), widget.patch_spin.value()) == (10_000, 256)
    paper = widget.config_for(("a",), 1)
    widget.preset_combo.setCurrentIndex(widget.preset_combo.findData("quick"))
    assert widget.steps_spin.value() == DemoSettings().steps
    assert widget.base_spin.value() == DemoSettings().base_channels
    widget.steps_spin.setValue(7)
    assert widget.preset_combo.currentData() == "custom"
    assert widget.steps_spin.value() == 7
    # The input scale goes into the new model's configuration (training and
    # prediction both use it), and a loaded model's scale is shown.
    assert widget.config_for(("a",), 1).predict.input_scale is None
    widget.scale_spin.setValue(0.5)
    assert widget.config_for(("a",), 1).predict.input_scale == 0.5
    widget.set_form(paper.replace(predict={"input_scale": 0.25}))
    assert widget.scale_spin.value() == 0.25
    # Inner regions as segmentation labels: on by default, a training option.
    assert widget.config_for(("a",), 1).train.segmentation_from_inner is True
    widget.inner_check.setChecked(False)
    assert widget.config_for(("a",), 1).train.segmentation_from_inner is False
    widget.set_form(paper)
    assert widget.inner_check.isChecked()
    # Far background as segmentation labels: the same, in its own box.
    far = widget.config_for(("a",), 1).train.segmentation_far_background
    assert far is LazyUNetConfig().train.segmentation_far_background
    widget.far_check.setChecked(not far)
    assert widget.config_for(("a",), 1).train.segmentation_far_background is (not far)
    widget.set_form(paper.replace(train={"segmentation_far_background": far}))
    assert widget.far_check.isChecked() is far


def test_loss_plot_skips_unlabelled_tasks_and_blits(qtbot):
    from napari_lazyunet._napari.loss_plot import LossPlot
    from napari_lazyunet.core.train import TrainEvent

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    plot.set_range(0, 100)
    plot.redraw()
    assert plot.redraws == 0  # a range alone draws nothing
    for step in range(1, 4):
        plot.add_event(
            TrainEvent(
                step,
                100,
                2.0,
                {"detection": 1.0, "segmentation": 0.0, "separation": 0.5},
                None,
                0.1,
            )
        )
    plot.redraw()
    assert plot.series("segmentation") == ([], [])  # 0 = no labelled pixel in the batch
    assert plot.series("detection") == ([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    full = plot.full_redraws
    plot.add_event(TrainEvent(4, 100, 1.5, {"detection": 0.9}, {"val_loss": 0.7}, 0.2))
    plot.redraw()
    assert plot.full_redraws == full  # same axes: only the curves were redrawn
    assert plot.series("val_loss") == ([4.0], [0.7])
    plot.add_event(TrainEvent(5, 100, 9.0, {"detection": 0.9}, None, 0.3))
    plot.redraw()
    assert plot.full_redraws == full + 1  # the loss left the axes: full redraw
    assert plot.ax.get_ylim()[1] >= 9.0


def test_closing_the_widget_stops_training(make_napari_viewer_proxy, qtbot, sample, tmp_path):
    viewer = make_napari_viewer_proxy()
    add_foam_image(viewer, sample, 0, strong=True)
    checkpoint = tmp_path / "closed.pt"
    widget = _widget(viewer, steps=100_000, threaded=True, checkpoint=checkpoint)
    assert widget.start()
    job, model = widget.job, widget.model
    qtbot.waitUntil(lambda: model.steps_done >= 2, timeout=60_000)
    widget.deleteLater()
    qtbot.waitUntil(lambda: not job.running, timeout=60_000)
    assert job.stop_requested and model.steps_done < 100_000
    assert LazyUNet.load(checkpoint).steps_done == model.steps_done
