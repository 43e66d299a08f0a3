"""Lazy labels dock widget: link labels layers to an image, pick classes and brushes, set flags."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_lazyunet.core.labels import background_value, painted_regions

from ._layer_combo import ImageLayerCombo
from ._notify import PluginInputError, notify_error
from ._scroll import scroll_contents
from .autosave import label_autosaver
from .classes import (
    DEFAULT_CLASS_COLORS,
    DEFAULT_CLASS_NAMES,
    apply_class_colors,
    class_colors,
    class_names,
    set_class_colors,
    set_class_names,
)
from .labels_layers import link_label_layers
from .links import ROLES, linked_layers, role_of
from .planes import (
    current_plane,
    is_sparse,
    is_strong,
    label_shape,
    n_planes,
    plane_data,
    plane_index,
    set_sparse,
    set_strong,
    strong_planes,
)

__all__ = ["LabelCounts", "LabelsWidget", "count_labels"]

#: Brush presets in pixels: a medium brush for inner regions, a thin one for interfaces.
INNER_BRUSH = 10
INTERFACE_BRUSH = 2


@dataclass(frozen=True)
class LabelCounts:
    """What has been painted on an image (all planes).

    Attributes
    ----------
    objects : int
        Painted inner regions (8-connected components of each class).
    interfaces : int
        Interface scribbles (8-connected components of the separation layer).
    strong : int
        Planes marked strong.
    planes : int
        Planes of the image.
    """

    objects: int
    interfaces: int
    strong: int
    planes: int

    def text(self) -> str:
        """One line for the widget."""
        return (
            f"objects marked: {self.objects} · interfaces marked: {self.interfaces} · "
            f"strong images: {self.strong} of {self.planes}"
        )


def _components(mask: np.ndarray) -> int:
    # Components are counted plane by plane: a stroke never spans two planes.
    planes = mask.reshape((-1, *mask.shape[-2:]))
    return sum(painted_regions(plane)[1] for plane in planes if plane.any())


def count_labels(
    detection: np.ndarray | None,
    separation: np.ndarray | None,
    n_classes: int,
    strong: int = 0,
    planes: int = 1,
) -> LabelCounts:
    """Count painted objects and interface scribbles.

    Parameters
    ----------
    detection : ndarray or None
        Detection labels ``(..., Y, X)``; explicit background (``C+1``) is not an object.
    separation : ndarray or None
        Separation labels ``(..., Y, X)``.
    n_classes : int
        Number of classes ``C``.
    strong, planes : int
        Passed through to the result.

    Returns
    -------
    LabelCounts
    """
    objects = 0
    if detection is not None:
        detection = np.asarray(detection)
        for value in range(1, n_classes + 1):
            objects += _components(detection == value)
    interfaces = 0 if separation is None else _components(np.asarray(separation) > 0)
    return LabelCounts(objects, interfaces, int(strong), int(planes))


class LabelsWidget(QWidget):
    """Create or adopt the lazy-label layers of an image and paint them quickly.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (napari passes it when the widget is docked).
    """

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        label_autosaver(napari_viewer)
        self._watched: list[Labels] = []
        self._watched_image: Any = None
        self._shown_classes: tuple[Any, ...] = ()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(150)
        self._refresh_timer.timeout.connect(self.refresh)

        layout = QVBoxLayout(self)

        # --- image and its layers
        self.image_combo = ImageLayerCombo(napari_viewer)
        self.link_button = QPushButton("Create / find labels layers")
        self.link_button.setToolTip(
            "Create the detection, separation and segmentation layers of the image, "
            "or find the ones already linked to it"
        )
        self.link_button.clicked.connect(self._on_link)
        self.adopt_role = QComboBox()
        self.adopt_role.addItems(ROLES)
        self.adopt_layer = QComboBox()
        self.adopt_button = QPushButton("Adopt")
        self.adopt_button.setToolTip("Use an existing labels layer for this role (same shape)")
        self.adopt_button.clicked.connect(self._on_adopt)
        image_box = QGroupBox("Image")
        image_form = QFormLayout(image_box)
        image_form.addRow("image", self.image_combo)
        image_form.addRow(self.link_button)
        adopt_row = QHBoxLayout()
        adopt_row.addWidget(self.adopt_role)
        adopt_row.addWidget(self.adopt_layer, 1)
        adopt_row.addWidget(self.adopt_button)
        image_form.addRow("adopt", adopt_row)
        self.layers_label = QLabel("no labels layers yet")
        self.layers_label.setWordWrap(True)
        image_form.addRow(self.layers_label)
        layout.addWidget(image_box)

        # --- classes
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
        layout.addWidget(class_box)

        # --- brushes
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
        layout.addWidget(brush_box)

        # --- flags of the current plane
        flag_box = QGroupBox("This image (current plane)")
        flag_layout = QVBoxLayout(flag_box)
        self.sparse_check = QCheckBox("detection is sparse (unpainted pixels are unknown)")
        self.sparse_check.toggled.connect(self._on_sparse)
        self.strong_check = QCheckBox("strong (segmentation layer is exact)")
        self.strong_check.toggled.connect(self._on_strong)
        self.plane_label = QLabel("")
        flag_layout.addWidget(self.plane_label)
        flag_layout.addWidget(self.sparse_check)
        flag_layout.addWidget(self.strong_check)
        layout.addWidget(flag_box)

        self.counts_label = QLabel("")
        self.counts_label.setWordWrap(True)
        layout.addWidget(self.counts_label)
        layout.addStretch(1)
        scroll_contents(self)  # the form scrolls: four docks fit a small screen

        self.image_combo.layer_changed.connect(self._on_image_changed)
        napari_viewer.dims.events.current_step.connect(self._schedule_refresh)
        napari_viewer.layers.events.inserted.connect(self._on_layers_changed)
        napari_viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_image_changed(self.image_combo.layer())

    # ------------------------------------------------------------------ helpers
    def image_layer(self) -> Any:
        """The chosen image layer, or ``None``."""
        return self.image_combo.layer()

    def _require_image(self) -> Any:
        image = self.image_layer()
        if image is None:
            raise PluginInputError(
                "no image layer: open an image (File > Open) or the demo "
                "(File > Open Sample > Lazy-label foam sample)"
            )
        return image

    def layers(self) -> dict[str, Labels]:
        """Labels layers linked to the chosen image."""
        image = self.image_layer()
        return {} if image is None else linked_layers(self.viewer, image)

    def _require_layers(self) -> dict[str, Labels]:
        image = self._require_image()
        layers = linked_layers(self.viewer, image)
        if set(layers) != set(ROLES):
            layers = link_label_layers(self.viewer, image)
        return layers

    def class_names(self) -> tuple[str, ...]:
        """Class names of the chosen image (defaults when none is chosen)."""
        image = self.image_layer()
        return class_names(image) if image is not None else DEFAULT_CLASS_NAMES

    def current_plane(self) -> int:
        """Flat index of the plane shown in the viewer."""
        image = self.image_layer()
        return 0 if image is None else current_plane(self.viewer, image)

    # ---------------------------------------------------------------- actions
    def link(self) -> dict[str, Labels]:
        """Create or find the three labels layers of the chosen image."""
        layers = link_label_layers(self.viewer, self._require_image())
        self._on_image_changed(self.image_layer())
        return layers

    def adopt(self, role: str, layer: Labels) -> dict[str, Labels]:
        """Link an existing labels layer to the chosen image as ``role``."""
        layers = link_label_layers(self.viewer, self._require_image(), adopt={role: layer})
        apply_class_colors(self.viewer, self.image_layer())
        self._on_image_changed(self.image_layer())
        return layers

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

    def _guard(self, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as error:  # noqa: BLE001 - shown as a notification
            notify_error(error)
            return None

    # ------------------------------------------------------------- UI updates
    def _on_link(self) -> None:
        self._guard(self.link)

    def _on_adopt(self) -> None:
        layer = self.adopt_layer.currentData()
        if layer is None:
            notify_error(
                "no labels layer to adopt: open or create a labels layer of the image's shape"
            )
            return
        self._guard(self.adopt, self.adopt_role.currentText(), layer)

    def _on_sparse(self, checked: bool) -> None:
        image = self.image_layer()
        if image is not None:
            set_sparse(image, self.current_plane(), checked)
            self.refresh()

    def _on_strong(self, checked: bool) -> None:
        image = self.image_layer()
        if image is None:
            return
        if checked and not np.any(self._segmentation_plane()):
            self.strong_check.blockSignals(True)
            self.strong_check.setChecked(False)
            self.strong_check.blockSignals(False)
            notify_error(
                "the segmentation of this plane is empty: refine it with GrabCut "
                "(Refine widget) or paint its exact mask before marking it strong"
            )
            return
        set_strong(image, self.current_plane(), checked)
        self.refresh()

    def _segmentation_plane(self) -> np.ndarray | None:
        image = self.image_layer()
        layer = self.layers().get("segmentation")
        if image is None or layer is None:
            return None
        return plane_data(layer, plane_index(image, self.current_plane()))

    def _on_layers_changed(self, event: Any = None) -> None:
        self._update_adopt_choices()
        self._watch_layers()
        self._schedule_refresh()

    def _on_image_changed(self, image: Any) -> None:
        if self._watched_image is not None:
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                self._watched_image.events.metadata.disconnect(self._on_metadata)
        self._watched_image = image
        if image is not None:
            image.events.metadata.connect(self._on_metadata)
        self._rebuild_classes()
        self._update_adopt_choices()
        self._watch_layers()
        self.refresh()

    def _update_adopt_choices(self) -> None:
        self.adopt_layer.clear()
        image = self.image_layer()
        if image is None:
            return
        try:
            shape = label_shape(image)
        except PluginInputError:
            return
        for layer in self.viewer.layers:
            free = isinstance(layer, Labels) and role_of(layer) is None
            if free and layer.data.shape == shape:
                self.adopt_layer.addItem(layer.name, layer)

    def _watch_layers(self) -> None:
        for layer in self._watched:
            try:
                layer.events.paint.disconnect(self._schedule_refresh)
                layer.events.data.disconnect(self._schedule_refresh)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._watched = list(self.layers().values())
        for layer in self._watched:
            layer.events.paint.connect(self._schedule_refresh)
            layer.events.data.connect(self._schedule_refresh)

    def _on_metadata(self, event: Any = None) -> None:
        image = self.image_layer()
        shown = None if image is None else (class_names(image), class_colors(image))
        if image is not None and shown != self._shown_classes:
            self._rebuild_classes()
        self._schedule_refresh()

    def _schedule_refresh(self, event: Any = None) -> None:
        self._refresh_timer.start()

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

    def counts(self) -> LabelCounts:
        """Live counts for the chosen image."""
        image = self.image_layer()
        layers = self.layers()
        if image is None or not layers:
            return LabelCounts(0, 0, 0, 0)
        det = layers.get("detection")
        sep = layers.get("separation")
        return count_labels(
            None if det is None else np.asarray(det.data),
            None if sep is None else np.asarray(sep.data),
            len(class_names(image)),
            strong=len(strong_planes(image)),
            planes=n_planes(image),
        )

    def refresh(self) -> None:
        """Update the layer list, plane flags and counts from the viewer."""
        image = self.image_layer()
        layers = self.layers()
        has_layers = image is not None and bool(layers)
        if image is None:
            self.layers_label.setText("no image layer: open an image or the sample data")
        elif not layers:
            self.layers_label.setText("no labels layers yet: press the button above")
        else:
            self.layers_label.setText(
                " · ".join(f"{role}: '{layers[role].name}'" for role in ROLES if role in layers)
            )
        for widget in (self.sparse_check, self.strong_check):
            widget.setEnabled(has_layers)
        if image is not None:
            try:
                plane = current_plane(self.viewer, image)
                planes = n_planes(image)
            except PluginInputError:
                plane, planes = 0, 1
            self.plane_label.setText(f"plane {plane + 1} of {planes}" if planes > 1 else "2D image")
            for check, value in (
                (self.sparse_check, is_sparse(image, plane)),
                (self.strong_check, is_strong(image, plane)),
            ):
                check.blockSignals(True)
                check.setChecked(value)
                check.blockSignals(False)
        self.counts_label.setText(self.counts().text() if has_layers else "")
