"""A row that lists a viewer's models, chooses one and discards one (Train and Predict docks)."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox, QHBoxLayout, QMessageBox, QPushButton, QWidget

from .model_store import ModelStore

__all__ = ["ModelChooser"]


class ModelChooser(QWidget):
    """Combo box of the store's models (the chosen one selected) and a Discard button.

    Parameters
    ----------
    store : ModelStore
        The viewer's models.
    parent : QWidget, optional
        Parent widget.

    Attributes
    ----------
    combo : QComboBox
        One item per model, newest last.
    discard_button : QPushButton
        Removes the chosen model from the viewer, asking first when no file
        holds its weights.
    confirm : bool
        Ask before discarding an unsaved model (``False`` in tests and scripts).
    """

    def __init__(self, store: ModelStore, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.confirm = True
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setToolTip(
            "Models trained or loaded in this viewer; a new training run adds one and "
            "never replaces another"
        )
        self.combo.setMinimumContentsLength(12)
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Remove the chosen model from this viewer")
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.discard_button)
        self.combo.activated.connect(self._chosen)
        self.discard_button.clicked.connect(self.discard)
        store.changed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        """Show the store's models and its choice."""
        self.combo.blockSignals(True)
        self.combo.clear()
        for k, entry in enumerate(self.store.entries, start=1):
            self.combo.addItem(f"{k}. {entry.label()}")
        if self.store.current is not None:
            self.combo.setCurrentIndex(self.store.index)
        self.combo.blockSignals(False)
        self.combo.setEnabled(bool(self.store.entries))
        self.discard_button.setEnabled(self.store.current is not None)

    def _chosen(self, index: int) -> None:
        if 0 <= index < len(self.store.entries):
            self.store.choose(index)

    def discard(self) -> bool:
        """Discard the chosen model (after asking, when it is in no file).

        Returns
        -------
        bool
            True when a model was discarded.
        """
        entry = self.store.current
        if entry is None:
            return False
        if entry.file is None and self.confirm:
            answer = QMessageBox.question(
                self,
                "Discard model",
                f"'{entry.source}' is not saved in any file. Discard it?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.store.discard()
        return True
