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
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_lazyunet.api import LazyUNet, split_validation
from napari_lazyunet.config import LazyUNetConfig, describe_thresholds
from napari_lazyunet.core.autoconfig import CPU_BUDGET_MINUTES
from napari_lazyunet.core.labels import ImageLabels, WeakLabelsOnlyWarning
from napari_lazyunet.core.project import load_project
from napari_lazyunet.core.recovery import model_recovery_path
from napari_lazyunet.core.train import CalibrationEvent, TrainEvent
from napari_lazyunet.sample.demo import DemoSettings

from ._form import MODEL_FILTER, auto_or, check_box, device_combo, spin_box
from ._model_chooser import ModelChooser
from ._notify import EXPECTED_ERRORS, PluginInputError, notify_error, notify_info, notify_warning
from ._scroll import scroll_contents
from .autosave import label_autosaver
from .links import linked_layers
from .loss_plot import LossPlot
from .model_store import model_store
from .prediction_layers import is_output_layer
from .training_data import collect_training_data
from .workers import Job, JobWidgetMixin, Notice, Outcome

__all__ = [
    "TrainWidget",
    "TrainingSet",
    "presets",
]


@dataclass
class TrainingSet:
    """Images and lazy labels to train on, from layers and/or a project folder.

    Attributes
    ----------
    images : list of ndarray
        ``(Y, X)`` or ``(Y, X, C)`` arrays.
    labels : list of ImageLabels
        Their lazy labels.
    names : list of str
        Names for messages.
    class_names : tuple of str
        Object classes.
    in_channels : int
        Channels per pixel.
    """

    images: list[np.ndarray]
    labels: list[ImageLabels]
    names: list[str]
    class_names: tuple[str, ...]
    in_channels: int

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: list[int]) -> TrainingSet:
        """The images at ``indices`` (same classes and channels)."""
        return TrainingSet(
            [self.images[k] for k in indices],
            [self.labels[k] for k in indices],
            [self.names[k] for k in indices],
            self.class_names,
            self.in_channels,
        )


def presets() -> dict[str, dict[str, Any]]:
    """Named settings for the form: auto, the paper's and a small CPU-sized network.

    Returns
    -------
    dict
        ``{name: {"base_channels", "depth", "steps", "batch_size", "patch_size",
        "validate_every"}}``; 0 means "auto" (chosen from the data when training
        starts, see :mod:`napari_lazyunet.core.autoconfig`). ``"auto"`` leaves
        every size to the engine and fits the steps to the time budget (the
        default); ``"paper"`` is the paper's network and schedule (for a GPU);
        ``"quick"`` is the built-in demo's
        :class:`~napari_lazyunet.sample.demo.DemoSettings` (minutes on a laptop CPU).
    """
    quick = DemoSettings()
    return {
        "auto": {
            "base_channels": 0,
            "depth": 0,
            "steps": 0,
            "batch_size": 0,
            "patch_size": 0,
            "validate_every": LazyUNetConfig().train.validate_every,
        },
        "paper": {
            "base_channels": 64,
            "depth": 4,
            "steps": 10_000,
            "batch_size": 16,
            "patch_size": 256,
            "validate_every": LazyUNetConfig().train.validate_every,
        },
        "quick": {
            "base_channels": quick.base_channels,
            "depth": quick.depth,
            "steps": quick.steps,
            "batch_size": quick.batch_size,
            "patch_size": quick.patch_size,
            "validate_every": max(quick.steps // 10, 1),
        },
    }


PRESET_LABELS = {
    "auto": "auto: sizes from the data, steps from the time budget",
    "quick": "quick: small network, minutes on a CPU",
    "paper": "paper: the paper's network, for a GPU",
    "custom": "custom",
}


class TrainWidget(JobWidgetMixin, QWidget):
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
        self._checked: dict[int, bool] = {}
        self._listed: list[Image] = []
        defaults = LazyUNetConfig()

        layout = QVBoxLayout(self)

        # ---- what to train on
        data_box = QGroupBox("Training data")
        data_form = QFormLayout(data_box)
        self.layer_list = QListWidget()
        self.layer_list.setMaximumHeight(110)
        self.layer_list.setToolTip(
            "Image layers to train on; only planes with painted lazy labels are used"
        )
        data_form.addRow("Image layers", self.layer_list)
        self.project_edit = QLineEdit()
        self.project_edit.setPlaceholderText("optional project folder")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse_project)
        row = QHBoxLayout()
        row.addWidget(self.project_edit)
        row.addWidget(browse)
        data_form.addRow("Project folder", row)
        self.validation_spin = QDoubleSpinBox()
        self.validation_spin.setRange(0.0, 0.5)
        self.validation_spin.setSingleStep(0.05)
        self.validation_spin.setValue(0.2)
        self.validation_spin.setToolTip(
            "Share of the labelled images held out and scored during training (0: none)"
        )
        data_form.addRow("Validation share", self.validation_spin)
        layout.addWidget(data_box)

        # ---- model and training settings (defaults from the engine)
        cfg_box = QGroupBox("Model and training")
        form = QFormLayout(cfg_box)
        self.continue_check = QCheckBox("continue training the chosen model")
        self.continue_check.setToolTip(
            "Fine-tune a copy of the model chosen below instead of a new one; the chosen "
            "model itself stays as it is"
        )
        form.addRow(self.continue_check)
        self.preset_combo = QComboBox()
        for key, label in PRESET_LABELS.items():
            self.preset_combo.addItem(label, key)
        self.preset_combo.setToolTip(
            "Fill the fields below; 'auto' chooses every size from the data and fits the "
            "steps to the time budget (fields showing 'auto')"
        )
        form.addRow("Preset", self.preset_combo)
        self.multitask_check = QCheckBox("multi-task U-Net (off: single-task baseline)")
        self.multitask_check.setChecked(defaults.model.multitask)
        form.addRow(self.multitask_check)
        self.inner_check = check_box(
            "inner regions also teach segmentation",
            defaults.train.segmentation_from_inner,
            "On images without an exact mask, count the painted inner regions as object "
            "pixels for the segmentation output too (off, with the box below: the paper's "
            "loss); alone, with very few strong images, it tends to make objects too large",
        )
        form.addRow(self.inner_check)
        self.far_check = check_box(
            "far background also teaches segmentation",
            defaults.train.segmentation_far_background,
            "On images without an exact mask whose every object is painted (detection not "
            "sparse), count the pixels farther from every inner region than the strong "
            "images' objects reach as background for the segmentation output too, and "
            "all of an image painted with explicit background only (no object)",
        )
        form.addRow(self.far_check)
        # 0 = auto everywhere below: chosen from the data when training starts.
        self.base_spin = spin_box(0, 256, 0, auto=True)
        form.addRow("Base channels", self.base_spin)
        self.depth_spin = spin_box(0, 6, 0, auto=True)
        form.addRow("Depth", self.depth_spin)
        self.steps_spin = spin_box(0, 1_000_000, 0, auto=True)
        self.steps_spin.setToolTip("Optimiser steps; auto: as many as fit in the time budget")
        form.addRow("Steps", self.steps_spin)
        self.budget_spin = QDoubleSpinBox()
        self.budget_spin.setDecimals(1)
        self.budget_spin.setRange(0.5, 7 * 24 * 60.0)
        self.budget_spin.setValue(CPU_BUDGET_MINUTES)
        self.budget_spin.setSuffix(" min")
        self.budget_spin.setToolTip(
            "Wall-clock time for training when Steps is auto, calibration included"
        )
        form.addRow("Time budget", self.budget_spin)
        self.batch_spin = spin_box(0, 1024, 0, auto=True)
        form.addRow("Batch size", self.batch_spin)
        self.patch_spin = spin_box(0, 4096, 0, step=16, auto=True)
        form.addRow("Patch size", self.patch_spin)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.0, 1.0)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setSpecialValueText("auto")
        self.lr_spin.setValue(0.0)
        form.addRow("Learning rate", self.lr_spin)
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setDecimals(3)
        self.scale_spin.setRange(0.0, 16.0)
        self.scale_spin.setSingleStep(0.05)
        self.scale_spin.setSpecialValueText("auto")
        self.scale_spin.setValue(0.0)
        self.scale_spin.setToolTip(
            "Train on the images resized by this factor (e.g. 0.5 when objects are large "
            "and finely sampled); the model keeps it and resizes images it predicts"
        )
        form.addRow("Input scale", self.scale_spin)
        self.validate_spin = spin_box(0, 1_000_000, defaults.train.validate_every)
        form.addRow("Validate every", self.validate_spin)
        self.device_combo = device_combo()
        form.addRow("Device", self.device_combo)
        self.threads_spin = spin_box(0, 1024, max(1, (os.cpu_count() or 2) - 1))
        self.threads_spin.setToolTip(
            "CPU threads for training (0: all). One core is left free by default "
            "so the viewer stays responsive."
        )
        form.addRow("CPU threads", self.threads_spin)
        self.checkpoint_edit = QLineEdit()
        self.checkpoint_edit.setPlaceholderText("empty: a file in the recovery folder")
        self.checkpoint_edit.setToolTip(
            "Model file kept up to date during training (every few minutes, at the end and "
            "on stop); empty: a new file in the recovery folder"
        )
        form.addRow("Checkpoint", self.checkpoint_edit)
        layout.addWidget(cfg_box)
        self._preset_fields = {
            "base_channels": self.base_spin,
            "depth": self.depth_spin,
            "steps": self.steps_spin,
            "batch_size": self.batch_spin,
            "patch_size": self.patch_spin,
            "validate_every": self.validate_spin,
        }
        self.apply_preset("auto")
        self.preset_combo.currentIndexChanged.connect(
            lambda _: self.apply_preset(self.preset_combo.currentData())
        )
        for spin in self._preset_fields.values():
            spin.valueChanged.connect(self._mark_custom)

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
        files = QHBoxLayout()
        self.save_button = QPushButton("Save model…")
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button = QPushButton("Load model…")
        self.load_button.clicked.connect(lambda: self.load_model())
        files.addWidget(self.save_button)
        files.addWidget(self.load_button)
        layout.addLayout(files)
        layout.addStretch(1)

        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.layers.events.moved.connect(self._refresh_layers)
        self.layer_list.itemChanged.connect(self._remember_check)
        self.store.changed.connect(self._on_store_changed)
        self._refresh_layers()
        self._on_store_changed(self.store)
        scroll_contents(self)  # the form scrolls: four docks fit a small screen

    # ------------------------------------------------------------------ layers
    def _image_layers(self) -> list[Image]:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image) and not is_output_layer(layer)
        ]

    def _refresh_layers(self, *_: Any) -> None:
        self.layer_list.blockSignals(True)
        self.layer_list.clear()
        self._listed = self._image_layers()
        for layer in self._listed:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            default = bool(linked_layers(self.viewer, layer))
            checked = self._checked.get(id(layer), default)
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.layer_list.addItem(item)
            layer.events.name.disconnect(self._refresh_layers)
            layer.events.name.connect(self._refresh_layers)
        self.layer_list.blockSignals(False)

    def _remember_check(self, item: QListWidgetItem) -> None:
        row = self.layer_list.row(item)
        if 0 <= row < len(self._listed):
            self._checked[id(self._listed[row])] = item.checkState() == Qt.CheckState.Checked

    def selected_layers(self) -> list[Image]:
        """The image layers ticked in the list."""
        self._refresh_layers()
        return [
            layer
            for row, layer in enumerate(self._listed)
            if self.layer_list.item(row).checkState() == Qt.CheckState.Checked
        ]

    def set_selected_layers(self, layers: list[Image]) -> None:
        """Tick exactly ``layers`` in the list."""
        chosen = {id(layer) for layer in layers}
        for layer in self._image_layers():
            self._checked[id(layer)] = id(layer) in chosen
        self._refresh_layers()

    def _browse_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder")
        if folder:
            self.project_edit.setText(folder)

    # -------------------------------------------------------------------- data
    def training_set(self) -> TrainingSet:
        """Gather the ticked layers' lazy labels and the project folder's images.

        Returns
        -------
        TrainingSet

        Raises
        ------
        PluginInputError
            Nothing to train on, labels of another shape, images of other
            classes or channels (messages say what to do).
        ProjectError
            The project folder cannot be read.
        """
        parts: list[TrainingSet] = []
        layers = self.selected_layers()
        folder = self.project_edit.text().strip()
        if layers or not folder:
            if not layers and not self._image_layers():
                raise PluginInputError(
                    "no image layer: open an image with lazy labels (File > Open Sample > "
                    "Lazy-label foam sample (LazyUNet) for a demo) or give a project folder"
                )
            if not layers:
                raise PluginInputError(
                    "no image layer is ticked: tick the images to train on, "
                    "or give a project folder"
                )
            data = collect_training_data(self.viewer, layers, require_strong=False)
            parts.append(
                TrainingSet(
                    list(data.images),
                    list(data.labels),
                    list(data.names),
                    tuple(data.class_names),
                    int(data.in_channels),
                )
            )
        if folder:
            project = load_project(folder)
            keep = project.labelled
            if not keep:
                raise PluginInputError(
                    f"the project {folder} has no labelled image; paint labels first or "
                    "add detection/ files (see docs/project-format.md)"
                )
            parts.append(
                TrainingSet(
                    [project.images[k] for k in keep],
                    [project.labels[k] for k in keep],
                    [f"{folder}: {project.names[k]}" for k in keep],
                    tuple(project.class_names),
                    int(project.in_channels),
                )
            )
        merged = parts[0]
        for other in parts[1:]:
            if other.class_names != merged.class_names:
                raise PluginInputError(
                    f"the layers use classes {list(merged.class_names)} but the project uses "
                    f"{list(other.class_names)}; rename the classes so they match"
                )
            if other.in_channels != merged.in_channels:
                raise PluginInputError(
                    f"the layers have {merged.in_channels} channel(s) but the project images "
                    f"have {other.in_channels}; train on images of one kind"
                )
            merged = TrainingSet(
                merged.images + other.images,
                merged.labels + other.labels,
                merged.names + other.names,
                merged.class_names,
                merged.in_channels,
            )
        return merged

    # ------------------------------------------------------------------ config
    def train_options(self) -> dict[str, Any]:
        """Fields of :class:`~napari_lazyunet.config.TrainConfig` set in the form."""
        return {
            "steps": auto_or(self.steps_spin.value()),
            "time_budget": float(self.budget_spin.value()),
            "batch_size": auto_or(self.batch_spin.value()),
            "patch_size": auto_or(self.patch_spin.value()),
            "learning_rate": auto_or(float(self.lr_spin.value())),
            "validate_every": self.validate_spin.value(),
            "device": self.device_combo.currentData(),
            "num_threads": self.threads_spin.value(),
            "segmentation_from_inner": self.inner_check.isChecked(),
            "segmentation_far_background": self.far_check.isChecked(),
        }

    def config_for(self, class_names: tuple[str, ...], in_channels: int) -> LazyUNetConfig:
        """The configuration of a new model for these classes and channels."""
        return LazyUNetConfig().replace(
            model={
                "class_names": tuple(class_names),
                "in_channels": int(in_channels),
                "base_channels": auto_or(self.base_spin.value()),
                "depth": auto_or(self.depth_spin.value()),
                "multitask": self.multitask_check.isChecked(),
            },
            train=self.train_options(),
            predict={"input_scale": auto_or(float(self.scale_spin.value()))},
        )

    def apply_preset(self, name: str) -> None:
        """Fill the form with a preset of :func:`presets` (``"custom"`` changes nothing)."""
        values = presets().get(name)
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(name))
        self.preset_combo.blockSignals(False)
        if values is None:
            return
        self._applying_preset = True
        try:
            self.set_fields(**values)
        finally:
            self._applying_preset = False

    def set_fields(self, **values: Any) -> None:
        """Set form fields by name, e.g. ``set_fields(steps=100, device="cpu")``.

        Names: the keys of :func:`presets`, ``learning_rate``, ``num_threads``,
        ``device`` (a value of :func:`device_choices`) and ``validation_share``.
        """
        spins = {
            **self._preset_fields,
            "learning_rate": self.lr_spin,
            "num_threads": self.threads_spin,
            "validation_share": self.validation_spin,
        }
        for key, value in values.items():
            if key == "device":
                self.device_combo.setCurrentIndex(self.device_combo.findData(value))
            elif key in spins:
                spins[key].setValue(value)
            else:
                raise TypeError(f"unknown field {key!r}; known: {[*sorted(spins), 'device']}")

    def _mark_custom(self, *_: Any) -> None:
        if getattr(self, "_applying_preset", False):
            return
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData("custom"))
        self.preset_combo.blockSignals(False)

    def set_form(self, config: LazyUNetConfig) -> None:
        """Show a configuration (e.g. of a loaded model) in the form."""

        def shown(value):  # None (auto) shows as 0, "auto"
            return 0 if value is None else value

        self.base_spin.setValue(shown(config.model.base_channels))
        self.depth_spin.setValue(shown(config.model.depth))
        self.multitask_check.setChecked(config.model.multitask)
        self.inner_check.setChecked(config.train.segmentation_from_inner)
        self.far_check.setChecked(config.train.segmentation_far_background)
        self.batch_spin.setValue(shown(config.train.batch_size))
        self.patch_spin.setValue(shown(config.train.patch_size))
        self.lr_spin.setValue(shown(config.train.learning_rate))
        self.validate_spin.setValue(config.train.validate_every)
        self.scale_spin.setValue(shown(config.predict.input_scale))

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

    # ------------------------------------------------------------------- files
    def save_model(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write the current model to a file (asks for the path when none is given).

        Returns
        -------
        Path or None
            The written file, or None when there was nothing to save or the
            dialog was cancelled.
        """
        model = self.store.model if self.store.model is not None else self.model
        if model is None:
            self._show_error(PluginInputError("no model to save yet: train one first"))
            return None
        if self.running:
            self._show_error(PluginInputError("training is running: stop it or wait, then save"))
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.pt", MODEL_FILTER)
            if not path:
                return None
        try:
            written = model.save(path)
        except (OSError, *EXPECTED_ERRORS) as error:
            self._show_error(error)
            return None
        self.store.mark_saved(model, written)
        notify_info(f"model saved to {written}")
        self.status.setText(f"Saved {written}.")
        return written

    def load_model(self, path: str | os.PathLike | None = None) -> LazyUNet | None:
        """Read a model file and make it this viewer's model (asks for the path when none).

        Returns
        -------
        LazyUNet or None
            The model, or None when the file could not be used or the dialog was cancelled.
        """
        if self.running:
            self._show_error(PluginInputError("training is running: stop it before loading"))
            return None
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load model", "", MODEL_FILTER)
            if not path:
                return None
        try:
            model = LazyUNet.load(path)
        except (OSError, *EXPECTED_ERRORS) as error:
            self._show_error(error)
            return None
        self.model = model
        self.set_form(model.config)
        self.continue_check.setChecked(True)
        self.plot.set_history(model.history)
        self.store.add(model, f"loaded from {Path(path).name}", file=path)
        self.status.setText(f"Loaded {Path(path).name}: {model!r}.")
        return model

    # ------------------------------------------------------------------ helpers
    def _on_store_changed(self, store: Any) -> None:
        self.continue_check.setEnabled(store.model is not None)
        if store.model is None:
            self.continue_check.setChecked(False)

    def _show_error(self, error: BaseException | str | None) -> None:
        text = notify_error(error if error is not None else "training failed")
        self.status.setText(text)
