"""Lazy labels dock widget: link labels layers to an image, pick classes and brushes, set flags.

This module assembles the dock: the image and its linked labels layers
(create, find or adopt), the flags of the current plane, and the live
counts, kept in step with the viewer. The class rows are in
:mod:`.labels_class_rows`, the brushes in :mod:`.labels_brushes` and the
counting in :mod:`.label_counts`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ._layer_combo import ImageLayerCombo
from ._notify import PluginInputError, notify_error
from ._scroll import scroll_contents
from .autosave import label_autosaver
from .classes import apply_class_colors, class_colors, class_names
from .label_counts import LabelCounts, count_labels
from .labels_brushes import BrushesMixin
from .labels_class_rows import ClassRowsMixin
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


class LabelsWidget(ClassRowsMixin, BrushesMixin, QWidget):
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
        layout.addWidget(self._build_class_box())

        # --- brushes
        layout.addWidget(self._build_brush_box())

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
