"""The Train widget's model files: "Save model…" and "Load model…".

:class:`ModelFilesMixin` writes the chosen model (or the last trained one)
to a file and reads a model file into the viewer's
:class:`~napari_lazyunet._napari.model_store.ModelStore`, where both docks
find it; a loaded model's settings are shown in the form and its loss
history in the plot, ready to continue training. Neither runs while
training is running.
"""

from __future__ import annotations

import os
from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QPushButton

from napari_lazyunet.api import LazyUNet

from ._form import MODEL_FILTER
from ._notify import EXPECTED_ERRORS, PluginInputError, notify_info

__all__ = ["ModelFilesMixin"]


class ModelFilesMixin:
    """Saving and loading models in the Train widget (mixed into ``TrainWidget``).

    Uses the widget's ``store``, ``model``, ``running``, ``status``,
    ``plot``, ``continue_check``, ``set_form`` and ``_show_error``.
    """

    def _build_file_buttons(self) -> QHBoxLayout:
        """The row of the "Save model…" and "Load model…" buttons."""
        files = QHBoxLayout()
        self.save_button = QPushButton("Save model…")
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button = QPushButton("Load model…")
        self.load_button.clicked.connect(lambda: self.load_model())
        files.addWidget(self.save_button)
        files.addWidget(self.load_button)
        return files

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
