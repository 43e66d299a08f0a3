"""Train widget: pick the labelled images, set the config, train in a worker, watch the curves.

The widget holds no algorithm: it gathers images and lazy labels (from the
viewer's linked layers and/or a project folder), builds a
:class:`~napari_lazyunet.config.LazyUNetConfig` from its form, and runs
:meth:`napari_lazyunet.api.LazyUNet.iter_fit` in a napari thread worker
(:class:`~napari_lazyunet._napari.workers.Job`). Every
:class:`~napari_lazyunet.core.train.TrainEvent` arrives on the main thread,
where it moves the progress bar and extends the loss plot (redrawn at most
5 times per second). Stop ends the run at the next step; the engine then
writes the model file and the model keeps the weights reached. Without a
model file of the user's, the run writes one into the recovery folder
(:func:`~napari_lazyunet.core.recovery.model_recovery_path`), so closing the
viewer never loses a trained model. Every run adds its model to the viewer's
:class:`~napari_lazyunet._napari.model_store.ModelStore` (continuing
training works on a copy), where the Predict widget finds it: a new run never
replaces a finished model.

The form is split by concern: the training data box and the
:class:`TrainingSet` it gathers are in :mod:`.train_inputs`, the settings
form and :func:`presets` in :mod:`.train_settings`, saving and loading model
files in :mod:`.train_model_files`; this module assembles the dock and runs
the training.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_lazyunet.api import LazyUNet, split_validation
from napari_lazyunet.config import describe_thresholds
from napari_lazyunet.core.labels import WeakLabelsOnlyWarning
from napari_lazyunet.core.recovery import model_recovery_path
from napari_lazyunet.core.train import CalibrationEvent, TrainEvent

from ._model_chooser import ModelChooser
from ._notify import EXPECTED_ERRORS, notify_error, notify_info, notify_warning
from ._scroll import scroll_contents
from .autosave import label_autosaver
from .loss_plot import LossPlot
from .model_store import model_store
from .train_inputs import TrainingSet, TrainInputsMixin
from .train_model_files import ModelFilesMixin
from .train_settings import PRESET_LABELS, TrainSettingsMixin, presets
from .workers import Job, JobWidgetMixin, Notice, Outcome

__all__ = [
    "PRESET_LABELS",
    "TrainWidget",
    "TrainingSet",
    "presets",
]


class TrainWidget(TrainInputsMixin, TrainSettingsMixin, ModelFilesMixin, JobWidgetMixin, QWidget):
    """Dock widget that trains a multi-task U-Net on the viewer's lazy labels.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose layers are trained on.
    parent : QWidget, optional
        Parent widget.

    Attributes
    ----------
    use_threads : bool
        Train in a napari thread worker (default). ``False`` trains
        synchronously inside :meth:`start` (for tests and scripts).
    model : LazyUNet or None
        The model of the last (or current) run.
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = model_store(napari_viewer)
        label_autosaver(napari_viewer)
        self.use_threads = True
        self.model: LazyUNet | None = None
        self.job: Job | None = None
        self.last_outcome: Outcome | None = None
        self._start_step = 0
        self._train_has_strong = False

        layout = QVBoxLayout(self)

        # ---- what to train on
        layout.addWidget(self._build_data_box())

        # ---- model and training settings (defaults from the engine)
        layout.addWidget(self._build_settings_box())

        # ---- run
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.plot = LossPlot(self)
        layout.addWidget(self.plot)
        self.chooser = ModelChooser(self.store)
        layout.addWidget(self.chooser)
        layout.addLayout(self._build_file_buttons())
        layout.addStretch(1)

        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.layers.events.moved.connect(self._refresh_layers)
        self.layer_list.itemChanged.connect(self._remember_check)
        self.store.changed.connect(self._on_store_changed)
        self._refresh_layers()
        self._on_store_changed(self.store)
        scroll_contents(self)  # the form scrolls: four docks fit a small screen

    # --------------------------------------------------------------- training
    def start(self) -> bool:
        """Start training with the form's settings.

        Returns
        -------
        bool
            False when the inputs were refused (a notification says why).
        """
        if self.running:
            return False
        try:
            data = self.training_set()
            train_idx, val_idx = split_validation(
                [lab.has_segmentation for lab in data.labels], self.validation_spin.value()
            )
            model = self._model_for(data)
            options = self.train_options()
            checkpoint = self.checkpoint_edit.text().strip() or str(model_recovery_path())
            train_set = data.subset(train_idx)
            validation = None
            if val_idx:
                val_set = data.subset(val_idx)
                validation = (val_set.images, val_set.labels)
            generator = model.iter_fit(
                train_set.images,
                labels=train_set.labels,
                names=train_set.names,
                validation=validation,
                checkpoint=checkpoint,
                **options,
            )
        except EXPECTED_ERRORS as error:
            self._show_error(error)
            return False

        self.model = model
        self._start_step = model.steps_done
        self._train_has_strong = any(lab.has_segmentation for lab in train_set.labels)
        self._checkpoint = checkpoint
        if self.continue_check.isChecked():
            self.plot.set_history(model.history)
        else:
            self.plot.clear()
        first = model.history[0]["step"] - 1 if model.history else self._start_step
        self._plot_first = first
        self.plot.set_range(first, self._start_step + (options["steps"] or 1))
        # With steps left to the time budget the total is known after the first step.
        self.progress.setRange(0, options["steps"] or 0)
        self.progress.setValue(0)
        held_out = f", {len(val_idx)} held out for validation" if val_idx else ""
        self.status.setText(
            f"Training on {len(train_idx)} image(s){held_out}; classes "
            f"{', '.join(data.class_names)}…"
        )
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.load_button.setEnabled(False)
        self._start_job(generator)
        return True

    def _model_for(self, data: TrainingSet) -> LazyUNet:
        if self.continue_check.isChecked() and self.store.model is not None:
            model = self.store.model
            model.check_compatible(data.class_names, data.in_channels)
            # A copy: the chosen model stays as it is, whatever this run does.
            return copy.deepcopy(model)
        return LazyUNet(self.config_for(data.class_names, data.in_channels))

    def stop(self) -> None:
        """Stop at the next step; the model (and checkpoint file) keep the weights reached."""
        if self.running:
            self.job.stop()
            self.stop_button.setEnabled(False)
            self.status.setText("Stopping after the current step…")

    def _on_item(self, item: Any) -> None:
        if isinstance(item, Notice):
            # The engine checks the validation set like a training set; a
            # validation set without strong images is no reason to warn.
            if not (issubclass(item.category, WeakLabelsOnlyWarning) and self._train_has_strong):
                notify_warning(item.message)
            return
        if isinstance(item, CalibrationEvent):
            self.status.setText(
                f"Calibrating after the last step: {item.stage} ({item.done + 1}/{item.total})…"
            )
            return
        if not isinstance(item, TrainEvent):
            return
        total = item.total_steps - self._start_step
        if self.progress.maximum() != total:
            # Steps fitted to the time budget: the plan is re-estimated as training runs.
            self.progress.setRange(0, total)
            self.plot.set_range(self._plot_first, item.total_steps)
        self.progress.setValue(item.step - self._start_step)
        self.plot.add_event(item)
        text = f"Step {item.step}/{item.total_steps} · loss {item.loss:.4f}"
        if item.validation:
            text += " · " + ", ".join(f"{k} {v:.3f}" for k, v in item.validation.items())
        self.status.setText(text)

    def _on_done(self, outcome: Outcome) -> None:
        self.job = None
        self.last_outcome = outcome
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.load_button.setEnabled(True)
        model = self.model
        self.plot.redraw()
        if outcome.status == "failed":
            self._show_error(outcome.error)
            return
        done = model.steps_done - self._start_step
        if done == 0:
            self.status.setText("Stopped before the first step; no model was added.")
            return
        written = Path(self._checkpoint) if Path(self._checkpoint).is_file() else None
        where = f"; model file: {written}" if written else ""
        if outcome.status == "stopped":
            message = (
                f"Stopped at step {model.steps_done}; the model keeps the weights reached{where}."
            )
        else:
            message = f"Finished {done} step(s){where}."
        thresholds = describe_thresholds(model.config)
        if thresholds:
            message += f" {thresholds[0].upper()}{thresholds[1:]}."
        self.status.setText(message)
        if model.choices:
            notify_info(
                "Settings chosen from the data: "
                + "; ".join(f"{c.field.split('.')[-1]} {c.value}" for c in model.choices)
            )
        verb = "stopped" if outcome.status == "stopped" else "trained"
        self.store.add(model, f"{verb} in this viewer ({model.steps_done} steps)", file=written)
        if written is not None and not self.checkpoint_edit.text().strip():
            notify_info(f"the model is kept in {written}; use 'Save model…' to put it elsewhere")

    # ------------------------------------------------------------------ helpers
    def _on_store_changed(self, store: Any) -> None:
        self.continue_check.setEnabled(store.model is not None)
        if store.model is None:
            self.continue_check.setChecked(False)

    def _show_error(self, error: BaseException | str | None) -> None:
        text = notify_error(error if error is not None else "training failed")
        self.status.setText(text)
