"""Predict widget: run a model on image layers or a folder, in a cancellable worker.

The model is the one trained or loaded in this viewer (from the viewer's
:class:`~napari_lazyunet._napari.model_store.ModelStore`) or a model file.
The input is one image layer, every image layer, or a folder of images
(written to an output folder in the layout of ``lazyunet predict``:
``OUT/{detection,segmentation,separation,instances}/NAME.tif``). Layers get
Labels layers ``detection``, ``segmentation``, ``separation`` and
``instances`` (and optionally probability Image layers) with the input's
scale and translation; a second run updates them (found by metadata, see
``prediction_layers.py``). Prediction runs in a napari thread worker; the
layers are only touched in main-thread callbacks.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from napari.layers import Image
from qtpy.QtCore import QTimer
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
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_lazyunet import __version__
from napari_lazyunet.api import LazyUNet
from napari_lazyunet.config import PredictConfig
from napari_lazyunet.core.files import list_images
from napari_lazyunet.core.labels import LabelError
from napari_lazyunet.core.prediction_folder import PredictionFolder, output_names
from napari_lazyunet.core.recovery import predictions_recovery_folder, safe_stem

from ._form import MODEL_FILTER, device_combo, model_default_spin, path_row
from ._model_chooser import ModelChooser
from ._notify import EXPECTED_ERRORS, PluginInputError, notify_error, notify_warning
from ._scroll import scroll_contents
from .autosave import label_autosaver
from .large_images import is_large_layer, layer_source, lazy_prediction, open_large_image
from .model_store import model_store
from .planes import label_shape
from .prediction_jobs import LargeResult, Progress, Result, Target, Written, predict_targets
from .prediction_layers import is_output_layer, iter_show_prediction
from .workers import Job, JobWidgetMixin, Notice, Outcome

__all__ = ["PredictWidget", "Target"]

ALL_LAYERS = "All image layers"
FOLDER = "Folder…"


class PredictWidget(JobWidgetMixin, QWidget):
    """Dock widget that predicts detection, segmentation, separation and instances.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer.
    parent : QWidget, optional
        Parent widget.

    Attributes
    ----------
    use_threads : bool
        Predict in a napari thread worker (default); ``False`` runs inside :meth:`run`.
    outputs : dict
        Layers written by the last run, ``{image layer name: {role: layer}}``.
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = model_store(napari_viewer)
        label_autosaver(napari_viewer)
        self.use_threads = True
        self.job: Job | None = None
        self.last_outcome: Outcome | None = None
        self.outputs: dict[str, dict[str, Any]] = {}
        self._showing: deque[tuple[str, Iterator[tuple[str, Any]]]] = deque()
        self._show_scheduled = False
        self._pending_outcome: Outcome | None = None
        self._written: list[Path] = []
        self._file_model: tuple[str, float, LazyUNet] | None = None
        defaults = PredictConfig()

        layout = QVBoxLayout(self)

        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("empty: the model trained or loaded in this viewer")
        browse_model = QPushButton("…")
        browse_model.setMaximumWidth(30)
        browse_model.clicked.connect(self._browse_model)
        row = QHBoxLayout()
        row.addWidget(self.model_edit)
        row.addWidget(browse_model)
        model_form.addRow("Model file", row)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        model_form.addRow(self.model_label)
        self.chooser = ModelChooser(self.store)
        model_form.addRow("Viewer model", self.chooser)
        layout.addWidget(model_box)

        input_box = QGroupBox("Input and output")
        input_form = QFormLayout(input_box)
        self.input_combo = QComboBox()
        self.input_combo.currentTextChanged.connect(self._update_folder_rows)
        open_large = QPushButton("Open large…")
        open_large.setToolTip(
            "Open a whole-slide image (tiled or pyramidal TIFF, OME-Zarr) as a layer that is "
            "read from disk as you look at it; it is predicted block by block"
        )
        open_large.clicked.connect(self._browse_large_image)
        input_row = QHBoxLayout()
        input_row.addWidget(self.input_combo, 1)
        input_row.addWidget(open_large)
        input_form.addRow("Input", input_row)
        self.in_folder_edit, in_row = path_row(self, "Input folder")
        self.out_folder_edit, out_row = path_row(self, "Output folder")
        self._in_row_label = QLabel("Input folder")
        self._out_row_label = QLabel("Output folder")
        input_form.addRow(self._in_row_label, in_row)
        input_form.addRow(self._out_row_label, out_row)
        self._folder_rows = [self._in_row_label, self._out_row_label, in_row, out_row]
        self.probability_check = QCheckBox("also show probability layers")
        input_form.addRow(self.probability_check)
        layout.addWidget(input_box)

        options_box = QGroupBox("Options")
        form = QFormLayout(options_box)
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(16, 4096)
        self.tile_spin.setSingleStep(16)
        self.tile_spin.setValue(defaults.tile_size)
        form.addRow("Tile size", self.tile_spin)
        self.overlap_spin = QDoubleSpinBox()
        self.overlap_spin.setRange(0.0, 0.9)
        self.overlap_spin.setSingleStep(0.05)
        self.overlap_spin.setValue(defaults.overlap)
        form.addRow("Overlap", self.overlap_spin)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setValue(defaults.batch_size)
        form.addRow("Tiles per batch", self.batch_spin)
        # -1, shown as "model's", leaves the size training measured (or 10 untrained).
        self.min_size_spin = QSpinBox()
        self.min_size_spin.setRange(-1, 1_000_000)
        self.min_size_spin.setSpecialValueText("model's")
        default_size = defaults.min_instance_size
        self.min_size_spin.setValue(-1 if default_size is None else int(default_size))
        self.min_size_spin.setToolTip(
            "instances smaller than this many pixels are dropped (default: the size set "
            "when the model was trained from the objects' sizes)"
        )
        form.addRow("Min. instance size", self.min_size_spin)
        # PredictConfig fields that the form leaves to the model unless set:
        # (field, label, maximum, decimals, tooltip).
        model_defaults = (
            (
                "separation_threshold",
                "Separation threshold",
                0.99,
                2,
                "Interface probability that cuts touching objects apart (default: the one "
                "calibrated when the model was trained); lower it if touching objects stay "
                "merged",
            ),
            (
                "segmentation_threshold",
                "Segmentation threshold",
                0.99,
                2,
                "Object probability above which a pixel is segmented (default: the one "
                "calibrated when the model was trained, else the most probable class); lower "
                "it if objects come out too small, raise it if they come out too large",
            ),
            (
                "input_scale",
                "Input scale",
                16.0,
                3,
                "Resize the image by this factor before the network (outputs come back at the "
                "image's size): e.g. 0.5 when the image has twice the resolution of the "
                "training images",
            ),
        )
        self._model_default_spins = {}
        for key, label, maximum, decimals, tooltip in model_defaults:
            spin = model_default_spin(maximum, decimals, tooltip)
            form.addRow(label, spin)
            self._model_default_spins[key] = spin
        self.separation_spin = self._model_default_spins["separation_threshold"]
        self.segmentation_spin = self._model_default_spins["segmentation_threshold"]
        self.scale_spin = self._model_default_spins["input_scale"]
        self.device_combo = device_combo()
        form.addRow("Device", self.device_combo)
        layout.addWidget(options_box)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Predict")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        scroll_contents(self)  # the form scrolls: four docks fit a small screen

        self.viewer.layers.events.inserted.connect(self._refresh_inputs)
        self.viewer.layers.events.removed.connect(self._refresh_inputs)
        self.viewer.layers.events.moved.connect(self._refresh_inputs)
        self.store.changed.connect(self._show_model)
        self.model_edit.textChanged.connect(lambda *_: self._show_model())
        self._refresh_inputs()
        self._show_model()

    # ------------------------------------------------------------------ inputs
    def _image_layers(self) -> list[Image]:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image) and not is_output_layer(layer)
        ]

    def _refresh_inputs(self, *_: Any) -> None:
        current = self.input_combo.currentText()
        self.input_combo.blockSignals(True)
        self.input_combo.clear()
        names = [layer.name for layer in self._image_layers()]
        self.input_combo.addItems([*names, ALL_LAYERS, FOLDER])
        index = self.input_combo.findText(current)
        if index < 0:
            # A new image was added: select it; otherwise the first entry.
            index = 0
        self.input_combo.setCurrentIndex(index)
        self.input_combo.blockSignals(False)
        for layer in self._image_layers():
            layer.events.name.disconnect(self._refresh_inputs)
            layer.events.name.connect(self._refresh_inputs)
        self._update_folder_rows()

    def _browse_large_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a large image (for OME-Zarr, pick the .zattrs or zarr.json file in its folder)",
            "",
            "Large images (*.tif *.tiff .zattrs zarr.json .zarray)",
        )
        if path:
            self.open_large_image(path)

    def open_large_image(self, path: str | Path) -> Image | None:
        """Add a large image as a lazy layer and make it the input.

        ``path`` may name a TIFF, a zarr store, or a metadata file inside one.
        """
        path = Path(path)
        if path.name in (".zattrs", ".zarray", "zarr.json", ".zgroup"):
            path = path.parent
        try:
            layer = open_large_image(self.viewer, path)
        except (OSError, *EXPECTED_ERRORS) as error:
            self._show_error(error)
            return None
        self.set_input(layer)
        return layer

    def _update_folder_rows(self, *_: Any) -> None:
        folder = self.input_combo.currentText() == FOLDER
        for widget in self._folder_rows:
            widget.setVisible(folder)

    def set_input(self, choice: Image | str) -> None:
        """Choose the input: an image layer, ``"all"`` or ``"folder"``."""
        self._refresh_inputs()
        text = {"all": ALL_LAYERS, "folder": FOLDER}.get(choice, choice)
        if isinstance(choice, Image):
            text = choice.name
        index = self.input_combo.findText(text)
        if index < 0:
            raise ValueError(f"no input called {text!r}")
        self.input_combo.setCurrentIndex(index)

    def targets(self) -> list[Target]:
        """What the current choice of input means: the images to predict.

        Raises
        ------
        PluginInputError
            No image layer, an unusable layer, or missing folders.
        ProjectError
            An output folder that holds painted labels (a project folder).
        """
        choice = self.input_combo.currentText()
        if choice == FOLDER:
            source = self.in_folder_edit.text().strip()
            out = self.out_folder_edit.text().strip()
            if not source or not out:
                raise PluginInputError(
                    "choose an input folder with images and an output folder for the results"
                )
            files = list_images(source)
            if not files:
                raise PluginInputError(f"no image file in {source}; use .tif, .png or .jpg files")
            try:
                names, _ = output_names(files)
            except ValueError as error:
                raise PluginInputError(str(error)) from error
            # Refuses a project folder and label files no prediction wrote, before any work.
            folder = PredictionFolder(
                out,
                run={
                    "written_by": f"napari-lazyunet {__version__} Predict widget",
                    "input": str(Path(source).resolve()),
                },
            )
            return [
                Target(path.name, path=path, out=folder, output_name=name)
                for path, name in zip(files, names, strict=True)
            ]
        layers = self._image_layers()
        if not layers:
            raise PluginInputError(
                "no image layer: open an image (File > Open) or the demo sample "
                "(File > Open Sample > Lazy-label foam sample), or choose a folder as input"
            )
        if choice != ALL_LAYERS:
            layers = [layer for layer in layers if layer.name == choice]
            if not layers:
                raise PluginInputError(f"image layer {choice!r} is gone; pick another input")
        for layer in layers:
            if not layer.multiscale:  # a pyramid is predicted block by block from level 0
                label_shape(layer)  # refuses 1D layers with a clear message
        return [Target(layer.name, layer=layer) for layer in layers]

    def _place_large_outputs(self, model: LazyUNet, targets: list[Target]) -> None:
        """Give each large layer a prediction folder for its OME-Zarr outputs.

        The output folder when one is set, else a folder of the recovery area
        named after the layer (the notification at the end names it).
        """
        out = self.out_folder_edit.text().strip()
        for target in targets:
            layer = target.layer
            if layer is None or not (
                layer.multiscale or is_large_layer(layer, model.config.model.in_channels)
            ):
                continue
            folder = Path(out) if out else predictions_recovery_folder(layer.name)
            target.out = PredictionFolder(
                folder,
                run={
                    "written_by": f"napari-lazyunet {__version__} Predict widget",
                    "input": f"image layer {layer.name!r}",
                },
            )
            target.output_name = safe_stem(layer.name)

    # ------------------------------------------------------------------- model
    def current_model(self) -> LazyUNet:
        """The model to predict with: the model file if given, else this viewer's model.

        Raises
        ------
        PluginInputError, CheckpointError
            No model yet, a training run is using it, or the file is unusable.
        """
        path = self.model_edit.text().strip()
        if path:
            if not Path(path).is_file():
                raise PluginInputError(f"model file {path} does not exist; choose a .pt model file")
            mtime = os.path.getmtime(path)
            if self._file_model is None or self._file_model[:2] != (path, mtime):
                self._file_model = (path, mtime, LazyUNet.load(path))
            return self._file_model[2]
        if self.store.model is None:
            raise PluginInputError(
                "no model yet: train one in the Train widget, load one there, "
                "or choose a model file here"
            )
        return self.store.model

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", MODEL_FILTER)
        if path:
            self.model_edit.setText(path)

    def _show_model(self, *_: Any) -> None:
        path = self.model_edit.text().strip()
        self.model_label.setText(f"model file: {path}" if path else self.store.describe())

    def predict_options(self) -> dict[str, Any]:
        """Fields of :class:`~napari_lazyunet.config.PredictConfig` set in the form."""
        options = {
            "tile_size": self.tile_spin.value(),
            "overlap": float(self.overlap_spin.value()),
            "batch_size": self.batch_spin.value(),
            "device": self.device_combo.currentData(),
        }
        if self.min_size_spin.value() >= 0:
            options["min_instance_size"] = self.min_size_spin.value()
        for key, spin in self._model_default_spins.items():
            if spin.value() > 0:
                options[key] = float(spin.value())
        return options

    @staticmethod
    def _check_channels(model: LazyUNet, target: Target) -> None:
        layer = target.layer
        if layer is None:
            return
        expected = model.config.model.in_channels
        shape = layer_source(layer).shape
        if layer.rgb:
            channels = int(shape[-1])
        elif expected > 1 and len(shape) >= 3 and shape[-1] == expected:
            channels = expected  # multichannel image shown as a stack, channels last
        else:
            channels = 1
        try:
            model.check_compatible(in_channels=channels)
        except LabelError as error:
            raise PluginInputError(f"image layer '{layer.name}': {error}") from error

    # --------------------------------------------------------------------- run
    def run(self) -> bool:
        """Predict the chosen input with the chosen model.

        Returns
        -------
        bool
            False when the inputs were refused (a notification says why).
        """
        if self.running:
            return False
        try:
            model = self.current_model()
            targets = self.targets()
            for target in targets:
                self._check_channels(model, target)
            self._place_large_outputs(model, targets)
            options = self.predict_options()
            PredictConfig(**options)  # validate before starting the worker
        except (OSError, *EXPECTED_ERRORS) as error:
            self._show_error(error)
            return False
        self.outputs = {}
        self._showing.clear()
        self._pending_outcome = None
        self._written = []
        self._instance_counts: list[int] = []
        self._finished: set[str] = set()
        self._targets = targets
        self.progress.setValue(0)
        self.status.setText(f"Predicting {len(targets)} image(s)…")
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        generator = predict_targets(model, targets, options, self.probability_check.isChecked())
        self._start_job(generator)
        return True

    def cancel(self) -> None:
        """Stop after the current batch of tiles; layers already written are kept."""
        if self.running:
            self.job.stop()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling…")

    def _on_item(self, item: Any) -> None:
        if isinstance(item, Progress):
            self.progress.setValue(int(1000 * (item.index + item.fraction) / item.total))
            self.status.setText(f"Predicting {item.name} ({item.index + 1}/{item.total})…")
        elif isinstance(item, Result | LargeResult):
            self._finished.add(item.target.name)
            layer = item.target.layer
            if isinstance(item, LargeResult):
                self._written.extend(item.result.files)
                self._instance_counts.append(item.result.n_instances)
                prediction = lazy_prediction(item.result.files, item.result.instance_classes)
            else:
                prediction = item.prediction
                self._instance_counts.append(sum(map(len, prediction.instance_classes)))
            if layer is None or layer not in self.viewer.layers:
                return  # the input layer was removed meanwhile
            shown = iter_show_prediction(
                self.viewer,
                layer,
                prediction,
                probabilities=self.probability_check.isChecked(),
            )
            self._showing.append((layer.name, shown))
            if self.use_threads:
                # One layer per turn of the event loop: adding all of an image's
                # layers at once would freeze the viewer for a second or more.
                self._schedule_show()
            else:
                while self._show_next():
                    pass
        elif isinstance(item, Written):
            self._finished.add(item.target.name)
            self._written.extend(item.files)
        elif isinstance(item, Notice):
            notify_warning(item.message)

    def _schedule_show(self) -> None:
        if not self._show_scheduled:
            self._show_scheduled = True
            QTimer.singleShot(0, self._show_step)

    def _show_step(self) -> None:
        self._show_scheduled = False
        if self._show_next():
            self._schedule_show()
        elif self._pending_outcome is not None:
            outcome, self._pending_outcome = self._pending_outcome, None
            self._report(outcome)

    def _show_next(self) -> bool:
        """Add or update one output layer; False when none is left to show."""
        while self._showing:
            name, shown = self._showing[0]
            try:
                role, layer = next(shown)
            except StopIteration:
                self._showing.popleft()
                continue
            self.outputs.setdefault(name, {})[role] = layer
            return True
        return False

    @property
    def running(self) -> bool:
        """True while predicting, and until the last output layer has been added."""
        return self.job is not None or self._pending_outcome is not None

    def _on_done(self, outcome: Outcome) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        if self._showing:  # the last layers are still being added
            self._pending_outcome = outcome
            self._schedule_show()
            return
        self._report(outcome)

    def _report(self, outcome: Outcome) -> None:
        self.last_outcome = outcome
        self.run_button.setEnabled(True)
        if outcome.status == "failed":
            self._show_error(outcome.error)
            return
        n_done = len(self._finished)
        folders = sorted({str(path.parent.parent) for path in self._written})
        where = f" to {', '.join(folders)}" if folders else ""
        if outcome.status == "stopped":
            self.status.setText(
                f"Cancelled after {n_done} of {len(self._targets)} image(s); "
                "results so far are kept."
            )
            return
        self.progress.setValue(1000)
        counts = self._instance_counts
        found = f": {sum(counts)} instance(s)" if counts else ""
        self.status.setText(f"Predicted {n_done} image(s){where}{found}.")

    def _show_error(self, error: BaseException | str | None) -> None:
        self.status.setText(notify_error(error if error is not None else "prediction failed"))
