"""The Predict widget's input: image layers, a large image opened lazily, or a folder.

:class:`PredictInputsMixin` builds the "Input and output" box of
:class:`~napari_lazyunet._napari.predict_widget.PredictWidget` (the input
menu, kept in step with the viewer's image layers, the input and output
folder rows, the probability check box) and turns the choice into the
:class:`~napari_lazyunet._napari.prediction_jobs.Target` list of a run: the
images of a folder, written to a prediction folder in the layout of
``lazyunet predict``, or image layers, large ones given a prediction folder
for their OME-Zarr outputs (the output folder, else the recovery folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.layers import Image
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
)

from napari_lazyunet import __version__
from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core.files import list_images
from napari_lazyunet.core.prediction_folder import PredictionFolder, output_names
from napari_lazyunet.core.recovery import predictions_recovery_folder, safe_stem

from ._form import path_row
from ._notify import EXPECTED_ERRORS, PluginInputError
from .large_images import is_large_layer, open_large_image
from .planes import label_shape
from .prediction_jobs import Target
from .prediction_layers import is_output_layer

__all__ = ["ALL_LAYERS", "FOLDER", "PredictInputsMixin"]

ALL_LAYERS = "All image layers"
FOLDER = "Folder…"


class PredictInputsMixin:
    """The input choice of the Predict widget (mixed into ``PredictWidget``).

    The box is made by :meth:`_build_input_box`, which sets ``input_combo``,
    ``in_folder_edit``, ``out_folder_edit`` and ``probability_check`` on the
    widget. Uses the widget's ``viewer`` and ``_show_error``.
    """

    def _build_input_box(self) -> QGroupBox:
        """The "Input and output" box: input menu, folder rows, probability layers."""
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
        return input_box

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
            if layer is None or not is_large_layer(layer, model.config.model.in_channels):
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
