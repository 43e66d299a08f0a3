"""The class rows of the Lazy labels widget: a name, a colour and a paint button per class.

:class:`ClassRowsMixin` builds the "Classes" box of
:class:`~napari_lazyunet._napari.labels_widget.LabelsWidget` and keeps it in
step with the chosen image's class names and colours (stored in its
metadata, :mod:`.classes`): renaming, recolouring, adding a class and
removing the last one (refused while it is painted somewhere).
"""

from __future__ import annotations

import numpy as np
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QColorDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from napari_lazyunet.core.labels import background_value

from ._notify import notify_error
from .classes import (
    DEFAULT_CLASS_COLORS,
    DEFAULT_CLASS_NAMES,
    apply_class_colors,
    class_colors,
    class_names,
    set_class_colors,
    set_class_names,
)

__all__ = ["ClassRowsMixin"]


class ClassRowsMixin:
    """The class rows of the Lazy labels widget (mixed into ``LabelsWidget``).

    The box is made by :meth:`_build_class_box`, which sets ``class_grid``,
    the buttons that add and remove a class and the per-row lists
    ``name_edits``, ``color_buttons`` and ``class_buttons`` on the widget.
    Uses the widget's ``viewer``, ``image_layer``, ``layers``,
    ``background_button``, ``select_class``, ``refresh`` and ``_guard``.
    """

    def _build_class_box(self) -> QGroupBox:
        """The "Classes" box; its rows are filled by :meth:`_rebuild_classes`."""
        class_box = QGroupBox("Classes (detection value = row number)")
        self.class_grid = QGridLayout()
        class_layout = QVBoxLayout(class_box)
        class_layout.addLayout(self.class_grid)
        buttons = QHBoxLayout()
        self.add_class_button = QPushButton("+ class")
        self.add_class_button.clicked.connect(self.add_class)
        self.remove_class_button = QPushButton("− class")
        self.remove_class_button.clicked.connect(self.remove_class)
        buttons.addWidget(self.add_class_button)
        buttons.addWidget(self.remove_class_button)
        class_layout.addLayout(buttons)
        self.name_edits: list[QLineEdit] = []
        self.color_buttons: list[QPushButton] = []
        self.class_buttons: list[QPushButton] = []
        return class_box

    def class_names(self) -> tuple[str, ...]:
        """Class names of the chosen image (defaults when none is chosen)."""
        image = self.image_layer()
        return class_names(image) if image is not None else DEFAULT_CLASS_NAMES

    def set_class_names(self, names: list[str]) -> None:
        """Rename, add or remove classes and recolour the labels layers."""
        image = self._require_image()
        set_class_names(image, names)
        apply_class_colors(self.viewer, image)
        self._rebuild_classes()
        self.refresh()

    def set_class_color(self, row: int, color: str) -> None:
        """Give class ``row + 1`` a new colour (any napari colour string)."""
        image = self._require_image()
        colors = list(class_colors(image))
        colors[row] = color
        set_class_colors(image, colors)
        apply_class_colors(self.viewer, image)
        self._rebuild_classes()

    def add_class(self) -> None:
        """Append a class named ``class N``."""
        names = list(self.class_names())
        names.append(f"class {len(names) + 1}")
        self._guard(self.set_class_names, names)

    def remove_class(self) -> None:
        """Remove the last class (refused while it is painted somewhere)."""
        names = list(self.class_names())
        if len(names) <= 1:
            notify_error("at least one class is needed")
            return
        value = len(names)
        for role, layer in self.layers().items():
            if role != "separation" and np.any(np.asarray(layer.data) == value):
                notify_error(
                    f"class {value} ('{names[-1]}') is painted in '{layer.name}'; "
                    "erase it (or repaint it with another class) before removing the class"
                )
                return
        self._guard(self.set_class_names, names[:-1])

    def _rebuild_classes(self) -> None:
        while self.class_grid.count():
            item = self.class_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.name_edits, self.color_buttons, self.class_buttons = [], [], []
        image = self.image_layer()
        names = self.class_names()
        colors = class_colors(image) if image is not None else DEFAULT_CLASS_COLORS
        self._shown_classes = (names, tuple(colors))
        for row, name in enumerate(names):
            value = row + 1
            edit = QLineEdit(name)
            edit.setToolTip(f"name of class {value}")
            edit.editingFinished.connect(self._on_names_edited)
            color = QPushButton()
            color.setFixedWidth(28)
            color.setToolTip("change the colour of this class")
            color.setStyleSheet(f"background-color: {colors[row % len(colors)]};")
            color.clicked.connect(lambda _=False, r=row: self._pick_color(r))
            paint = QPushButton(f"Paint {value}")
            paint.setToolTip(f"paint inner regions of '{name}' in the detection layer")
            paint.clicked.connect(lambda _=False, v=value: self._guard(self.select_class, v))
            self.class_grid.addWidget(QLabel(str(value)), row, 0)
            self.class_grid.addWidget(edit, row, 1)
            self.class_grid.addWidget(color, row, 2)
            self.class_grid.addWidget(paint, row, 3)
            self.name_edits.append(edit)
            self.color_buttons.append(color)
            self.class_buttons.append(paint)
        self.background_button.setText(f"Explicit background ({background_value(len(names))})")

    def _on_names_edited(self) -> None:
        names = [edit.text() for edit in self.name_edits]
        if tuple(n.strip() for n in names) != self.class_names():
            self._guard(self.set_class_names, names)

    def _pick_color(self, row: int) -> None:
        image = self.image_layer()
        if image is None:
            return
        current = QColor(class_colors(image)[row])
        chosen = QColorDialog.getColor(current, self, "Class colour")
        if chosen.isValid():
            self._guard(self.set_class_color, row, chosen.name())
