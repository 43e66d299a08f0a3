"""A combo box of the viewer's image layers that follows additions, removals and renames."""

from __future__ import annotations

import contextlib
from typing import Any

from napari.layers import Image
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QWidget


class ImageLayerCombo(QComboBox):
    """Pick an image layer of ``viewer``; items hold the layer objects, never just names.

    Signals
    -------
    layer_changed(object)
        The chosen image layer (or ``None``) after every change of choice.
    """

    layer_changed = Signal(object)

    def __init__(self, viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self._viewer = viewer
        self.setToolTip("Image layer (2D, RGB or a stack) to label")
        self.currentIndexChanged.connect(lambda _: self.layer_changed.emit(self.layer()))
        events = viewer.layers.events
        events.inserted.connect(self.reset_choices)
        events.removed.connect(self.reset_choices)
        events.reordered.connect(self.reset_choices)
        self.reset_choices()

    def layer(self) -> Image | None:
        """The chosen image layer, or ``None`` when the viewer has none."""
        layer = self.currentData()
        return layer if layer in self._viewer.layers else None

    def set_layer(self, layer: Image) -> None:
        """Choose ``layer`` (it must be an image layer of the viewer)."""
        for k in range(self.count()):
            if self.itemData(k) is layer:
                self.setCurrentIndex(k)
                return

    def reset_choices(self, *_: Any) -> None:
        """Rebuild the list from the viewer's image layers, keeping the choice when possible."""
        current = self.currentData()
        images = [layer for layer in self._viewer.layers if isinstance(layer, Image)]
        self.blockSignals(True)
        self.clear()
        for layer in images:
            self.addItem(layer.name, layer)
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                layer.events.name.disconnect(self._rename)
            layer.events.name.connect(self._rename)
        index = next((k for k, layer in enumerate(images) if layer is current), 0)
        if images:
            self.setCurrentIndex(index)
        self.blockSignals(False)
        if self.currentData() is not current:
            self.layer_changed.emit(self.layer())

    def _rename(self, event: Any = None) -> None:
        for k in range(self.count()):
            self.setItemText(k, self.itemData(k).name)
