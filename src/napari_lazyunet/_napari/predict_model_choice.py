"""The Predict widget's "Model" box: a model file, or the model of this viewer.

:class:`ModelChoiceMixin` builds the box of
:class:`~napari_lazyunet._napari.predict_widget.PredictWidget` (the model
file row, what the chosen model is, the viewer's
:class:`~napari_lazyunet._napari._model_chooser.ModelChooser`) and says which
model a run predicts with: the model file when one is given (loaded again
only when the file changed), else the model chosen in the viewer's
:class:`~napari_lazyunet._napari.model_store.ModelStore`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
)

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core.labels import LabelError

from ._form import MODEL_FILTER
from ._model_chooser import ModelChooser
from ._notify import PluginInputError
from .large_images import layer_source
from .prediction_jobs import Target

__all__ = ["ModelChoiceMixin"]


class ModelChoiceMixin:
    """The model choice of the Predict widget (mixed into ``PredictWidget``).

    The box is made by :meth:`_build_model_box`, which sets ``model_edit``,
    ``model_label`` and ``chooser`` on the widget. Uses the widget's ``store``.
    """

    def _build_model_box(self) -> QGroupBox:
        """The "Model" box: model file row, the chosen model in words, the viewer's models."""
        self._file_model: tuple[str, float, LazyUNet] | None = None
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
        return model_box

    def _connect_model_box(self) -> None:
        """Keep the model's description up to date with the store and the file row."""
        self.store.changed.connect(self._show_model)
        self.model_edit.textChanged.connect(lambda *_: self._show_model())
        self._show_model()

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

    @staticmethod
    def _check_channels(model: LazyUNet, target: Target) -> None:
        """Refuse an image layer whose channels the model was not trained for."""
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
