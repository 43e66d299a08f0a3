"""What the Train widget trains on: the ticked image layers and an optional project folder.

:class:`TrainInputsMixin` builds the "Training data" box of
:class:`~napari_lazyunet._napari.train_widget.TrainWidget` (the list of image
layers, kept in step with the viewer, the project folder and the validation
share) and gathers its choices into one :class:`TrainingSet`: the lazy labels
of the ticked layers (through
:func:`~napari_lazyunet._napari.training_data.collect_training_data`) and the
labelled images of the project folder, refused with a message that says
what to do when they do not fit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.layers import Image
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QListWidget,
    QListWidgetItem,
)

from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import load_project

from ._form import path_row
from ._notify import PluginInputError
from .links import linked_layers
from .prediction_layers import is_output_layer
from .training_data import collect_training_data

__all__ = ["TrainInputsMixin", "TrainingSet"]


@dataclass
class TrainingSet:
    """Images and lazy labels to train on, from layers and/or a project folder.

    Attributes
    ----------
    images : list of ndarray
        ``(Y, X)`` or ``(Y, X, C)`` arrays.
    labels : list of ImageLabels
        Their lazy labels.
    names : list of str
        Names for messages.
    class_names : tuple of str
        Object classes.
    in_channels : int
        Channels per pixel.
    """

    images: list[np.ndarray]
    labels: list[ImageLabels]
    names: list[str]
    class_names: tuple[str, ...]
    in_channels: int

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: list[int]) -> TrainingSet:
        """The images at ``indices`` (same classes and channels)."""
        return TrainingSet(
            [self.images[k] for k in indices],
            [self.labels[k] for k in indices],
            [self.names[k] for k in indices],
            self.class_names,
            self.in_channels,
        )


class TrainInputsMixin:
    """The training-data box of the Train widget (mixed into ``TrainWidget``).

    The box is made by :meth:`_build_data_box`, which sets ``layer_list``,
    ``project_edit`` and ``validation_spin`` on the widget; the widget's
    ``viewer`` is the one whose layers are listed.
    """

    def _build_data_box(self) -> QGroupBox:
        """The "Training data" box: image layers, project folder, validation share."""
        self._checked: dict[int, bool] = {}
        self._listed: list[Image] = []
        data_box = QGroupBox("Training data")
        data_form = QFormLayout(data_box)
        self.layer_list = QListWidget()
        self.layer_list.setMaximumHeight(110)
        self.layer_list.setToolTip(
            "Image layers to train on; only planes with painted lazy labels are used"
        )
        data_form.addRow("Image layers", self.layer_list)
        self.project_edit, row = path_row(self, "Project folder")
        self.project_edit.setPlaceholderText("optional project folder")
        data_form.addRow("Project folder", row)
        self.validation_spin = QDoubleSpinBox()
        self.validation_spin.setRange(0.0, 0.5)
        self.validation_spin.setSingleStep(0.05)
        self.validation_spin.setValue(0.2)
        self.validation_spin.setToolTip(
            "Share of the labelled images held out and scored during training (0: none)"
        )
        data_form.addRow("Validation share", self.validation_spin)
        return data_box

    # ------------------------------------------------------------------ layers
    def _image_layers(self) -> list[Image]:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image) and not is_output_layer(layer)
        ]

    def _refresh_layers(self, *_: Any) -> None:
        self.layer_list.blockSignals(True)
        self.layer_list.clear()
        self._listed = self._image_layers()
        for layer in self._listed:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            default = bool(linked_layers(self.viewer, layer))
            checked = self._checked.get(_layer_key(layer), default)
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.layer_list.addItem(item)
            layer.events.name.disconnect(self._refresh_layers)
            layer.events.name.connect(self._refresh_layers)
        self.layer_list.blockSignals(False)

    def _remember_check(self, item: QListWidgetItem) -> None:
        row = self.layer_list.row(item)
        if 0 <= row < len(self._listed):
            self._checked[_layer_key(self._listed[row])] = (
                item.checkState() == Qt.CheckState.Checked
            )

    def selected_layers(self) -> list[Image]:
        """The image layers ticked in the list."""
        self._refresh_layers()
        return [
            layer
            for row, layer in enumerate(self._listed)
            if self.layer_list.item(row).checkState() == Qt.CheckState.Checked
        ]

    def set_selected_layers(self, layers: list[Image]) -> None:
        """Tick exactly ``layers`` in the list."""
        chosen = {_layer_key(layer) for layer in layers}
        for layer in self._image_layers():
            self._checked[_layer_key(layer)] = _layer_key(layer) in chosen
        self._refresh_layers()

    # -------------------------------------------------------------------- data
    def training_set(self) -> TrainingSet:
        """Gather the ticked layers' lazy labels and the project folder's images.

        Returns
        -------
        TrainingSet

        Raises
        ------
        PluginInputError
            Nothing to train on, labels of another shape, images of other
            classes or channels (messages say what to do).
        ProjectError
            The project folder cannot be read.
        """
        parts: list[TrainingSet] = []
        layers = self.selected_layers()
        folder = self.project_edit.text().strip()
        if layers or not folder:
            if not layers and not self._image_layers():
                raise PluginInputError(
                    "no image layer: open an image with lazy labels (File > Open Sample > "
                    "Lazy-label foam sample (LazyUNet) for a demo) or give a project folder"
                )
            if not layers:
                raise PluginInputError(
                    "no image layer is ticked: tick the images to train on, "
                    "or give a project folder"
                )
            data = collect_training_data(self.viewer, layers, require_strong=False)
            parts.append(
                TrainingSet(
                    list(data.images),
                    list(data.labels),
                    list(data.names),
                    tuple(data.class_names),
                    int(data.in_channels),
                )
            )
        if folder:
            project = load_project(folder)
            keep = project.labelled
            if not keep:
                raise PluginInputError(
                    f"the project {folder} has no labelled image; paint labels first or "
                    "add detection/ files (see docs/project-format.md)"
                )
            parts.append(
                TrainingSet(
                    [project.images[k] for k in keep],
                    [project.labels[k] for k in keep],
                    [f"{folder}: {project.names[k]}" for k in keep],
                    tuple(project.class_names),
                    int(project.in_channels),
                )
            )
        merged = parts[0]
        for other in parts[1:]:
            if other.class_names != merged.class_names:
                raise PluginInputError(
                    f"the layers use classes {list(merged.class_names)} but the project uses "
                    f"{list(other.class_names)}; rename the classes so they match"
                )
            if other.in_channels != merged.in_channels:
                raise PluginInputError(
                    f"the layers have {merged.in_channels} channel(s) but the project images "
                    f"have {other.in_channels}; train on images of one kind"
                )
            merged = TrainingSet(
                merged.images + other.images,
                merged.labels + other.labels,
                merged.names + other.names,
                merged.class_names,
                merged.in_channels,
            )
        return merged


def _layer_key(layer: Any) -> int:
    """The same key for a layer on every access.

    napari hands dock widgets a viewer behind a proxy that wraps every layer
    it returns in a new proxy object, so ``id(layer)`` changes from one
    access to the next; the wrapped layer's does not.
    """
    return id(getattr(layer, "__wrapped__", layer))
