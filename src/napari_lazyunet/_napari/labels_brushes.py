"""The brushes of the Lazy labels widget: inner regions, explicit background, interfaces, eraser.

:class:`BrushesMixin` builds the "Brushes" box of
:class:`~napari_lazyunet._napari.labels_widget.LabelsWidget` and makes the
right linked labels layer active with the right label and brush size: a
medium brush for inner regions in the detection layer, a thin one for
interface scribbles in the separation layer.
"""

from __future__ import annotations

from napari.layers import Labels
from qtpy.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QPushButton, QSpinBox

from napari_lazyunet.core.labels import background_value

__all__ = ["INNER_BRUSH", "INTERFACE_BRUSH", "BrushesMixin"]

#: Brush presets in pixels: a medium brush for inner regions, a thin one for interfaces.
INNER_BRUSH = 10
INTERFACE_BRUSH = 2


class BrushesMixin:
    """The brushes of the Lazy labels widget (mixed into ``LabelsWidget``).

    The box is made by :meth:`_build_brush_box`, which sets ``inner_size``,
    ``interface_size`` and the brush buttons on the widget. Uses the
    widget's ``viewer``, ``class_names`` and ``_require_layers``.
    """

    def _build_brush_box(self) -> QGroupBox:
        """The "Brushes" box: brush sizes and the background, interface and eraser buttons."""
        brush_box = QGroupBox("Brushes")
        brush_form = QFormLayout(brush_box)
        self.inner_size = QSpinBox()
        self.inner_size.setRange(1, 200)
        self.inner_size.setValue(INNER_BRUSH)
        self.interface_size = QSpinBox()
        self.interface_size.setRange(1, 50)
        self.interface_size.setValue(INTERFACE_BRUSH)
        self.background_button = QPushButton("Explicit background")
        self.background_button.setToolTip(
            "Paint sure background in the detection layer (sparse images)"
        )
        self.background_button.clicked.connect(
            lambda: self.select_class(background_value(len(self.class_names())))
        )
        self.interface_button = QPushButton("Interface scribble")
        self.interface_button.setToolTip(
            "Thin brush in the separation layer, between touching objects"
        )
        self.interface_button.clicked.connect(self.select_interface)
        self.eraser_button = QPushButton("Eraser")
        self.eraser_button.clicked.connect(self.select_eraser)
        brush_form.addRow("inner-region brush", self.inner_size)
        brush_form.addRow("interface brush", self.interface_size)
        row = QHBoxLayout()
        row.addWidget(self.background_button)
        row.addWidget(self.interface_button)
        row.addWidget(self.eraser_button)
        brush_form.addRow(row)
        return brush_box

    def _activate(self, layer: Labels, label: int, size: int) -> None:
        self.viewer.layers.selection.active = layer
        layer.selected_label = int(label)
        layer.brush_size = int(size)
        layer.mode = "paint"

    def select_class(self, value: int) -> None:
        """Paint inner regions of class ``value`` in the detection layer with the medium brush."""
        layers = self._require_layers()
        self._activate(layers["detection"], value, self.inner_size.value())

    def select_interface(self) -> None:
        """Paint interface scribbles in the separation layer with the thin brush."""
        layers = self._require_layers()
        self._activate(layers["separation"], 1, self.interface_size.value())

    def select_eraser(self) -> None:
        """Erase (paint 0) in the active linked layer, or in the detection layer."""
        layers = self._require_layers()
        active = self.viewer.layers.selection.active
        layer = active if active in layers.values() else layers["detection"]
        self.viewer.layers.selection.active = layer
        layer.mode = "erase"
