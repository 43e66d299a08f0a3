"""Refine dock widget: grow the painted inner regions into exact masks with GrabCut."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_lazyunet import api
from napari_lazyunet.core.grabcut import GrabCutResult
from napari_lazyunet.core.labels import background_value, inner_region_ids

from ._layer_combo import ImageLayerCombo
from ._notify import PluginInputError, notify_error, notify_info
from ._scroll import scroll_contents
from .autosave import label_autosaver
from .classes import class_names
from .links import linked_layers
from .planes import (
    check_labels_shape,
    current_plane,
    is_strong,
    mark_strong_with_edit,
    plane_data,
    plane_index,
    plane_name,
)

__all__ = ["MODES", "RefineJob", "RefineWidget", "merge_segmentation"]

#: Which objects to refine: every inner region, those of the selected class, or one object.
MODES = ("all objects", "selected class", "object under cursor")


def merge_segmentation(current: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Where refined classes may be written: only on unpainted (0) segmentation pixels.

    Parameters
    ----------
    current : ndarray
        ``(Y, X)`` segmentation plane as it is now.
    classes : ndarray
        ``(Y, X)`` refined class mask.

    Returns
    -------
    tuple of ndarray
        Indices ``(ys, xs)`` of the pixels to write (``classes[ys, xs]`` are the values).
    """
    return np.nonzero((np.asarray(current) == 0) & (np.asarray(classes) > 0))


@dataclass(frozen=True)
class RefineJob:
    """Everything one GrabCut run needs, taken from the layers on the main thread."""

    image: np.ndarray
    detection: np.ndarray
    instances: np.ndarray
    only_labels: tuple[int, ...] | None
    n_classes: int
    plane: int
    index: tuple[int, ...]
    iterations: int
    margin: int

    def run(self) -> GrabCutResult:
        """Run GrabCut through the scripting API (no Qt, safe in a thread)."""
        return api.refine(
            self.image,
            self.detection,
            instances=self.instances,
            only_labels=self.only_labels,
            iterations=self.iterations,
            margin=self.margin,
            background_value=background_value(self.n_classes),
        )


class RefineWidget(QWidget):
    """Turn the inner regions of the current image (plane) into exact segmentation masks.

    Writes only where the segmentation layer is still 0, so corrections the
    user painted are never overwritten, and as a single undo step (which also
    takes back the strong flag the refinement set).

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer.
    """

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        label_autosaver(napari_viewer)
        #: Run GrabCut in a worker thread (the viewer stays responsive); tests may turn it off.
        self.use_thread = True
        self.last_result: GrabCutResult | None = None
        self._worker: Any = None

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.image_combo = ImageLayerCombo(napari_viewer)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(MODES)
        self.mode_combo.setToolTip(
            "all objects of the current plane; only the class selected in the detection "
            "layer; or only the inner region under the mouse cursor"
        )
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 50)
        self.iterations.setValue(5)
        self.iterations.setToolTip("GrabCut iterations per object")
        self.margin = QSpinBox()
        self.margin.setRange(1, 500)
        self.margin.setValue(20)
        self.margin.setToolTip("minimum margin in pixels around each inner region (crop size)")
        self.strong_check = QCheckBox("then mark the image strong")
        self.strong_check.setChecked(True)
        form.addRow("image", self.image_combo)
        form.addRow("objects", self.mode_combo)
        form.addRow("iterations", self.iterations)
        form.addRow("margin (px)", self.margin)
        form.addRow(self.strong_check)
        layout.addLayout(form)
        self.refine_button = QPushButton("Refine with GrabCut")
        self.refine_button.clicked.connect(self._on_refine)
        layout.addWidget(self.refine_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        scroll_contents(self)  # the form scrolls: four docks fit a small screen

    # ------------------------------------------------------------------ job
    def prepare(self, mode: str | None = None) -> RefineJob:
        """Read the current plane and its labels into a :class:`RefineJob`.

        Parameters
        ----------
        mode : str, optional
            One of :data:`MODES`; default: the widget's choice.

        Raises
        ------
        PluginInputError
            No image, no linked layers, nothing painted, nothing under the cursor.
        """
        mode = mode or self.mode_combo.currentText()
        if mode not in MODES:
            raise PluginInputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        image_layer = self.image_combo.layer()
        if image_layer is None:
            raise PluginInputError(
                "no image layer: open an image or the demo "
                "(File > Open Sample > Lazy-label foam sample)"
            )
        layers = linked_layers(self.viewer, image_layer)
        if "detection" not in layers or "segmentation" not in layers:
            raise PluginInputError(
                f"image '{image_layer.name}' has no detection / segmentation layers; "
                "create them in the Lazy labels widget and paint inner regions first"
            )
        for layer in layers.values():
            check_labels_shape(layer, image_layer)
        n_classes = len(class_names(image_layer))
        plane = current_plane(self.viewer, image_layer)
        index = plane_index(image_layer, plane)
        detection = plane_data(layers["detection"], index)
        instances = inner_region_ids(detection, range(1, n_classes + 1))
        where = plane_name(image_layer, plane)
        if not instances.any():
            raise PluginInputError(
                f"no inner region is painted on {where}: paint a few strokes inside "
                "each object in the detection layer first"
            )
        only: tuple[int, ...] | None = None
        if mode == "selected class":
            value = int(layers["detection"].selected_label)
            if not 1 <= value <= n_classes:
                raise PluginInputError(
                    f"the detection layer's selected label is {value}, "
                    f"not a class (1..{n_classes}); "
                    "pick a class with its Paint button in the Lazy labels widget"
                )
            only = tuple(int(i) for i in np.unique(instances[detection == value]) if i)
            if not only:
                raise PluginInputError(
                    f"no inner region of class {value} on {where}; pick another class or paint one"
                )
        elif mode == "object under cursor":
            coords = layers["detection"].world_to_data(self.viewer.cursor.position)
            yx = np.round(np.asarray(coords)[-2:]).astype(int)
            shape = detection.shape
            inside = 0 <= yx[0] < shape[0] and 0 <= yx[1] < shape[1]
            object_id = int(instances[yx[0], yx[1]]) if inside else 0
            if object_id == 0:
                raise PluginInputError(
                    "the mouse cursor is not on a painted inner region; move it onto one "
                    "in the viewer, then press Refine again"
                )
            only = (object_id,)
        image = plane_data(image_layer, index)
        return RefineJob(
            image=image,
            detection=detection,
            instances=instances,
            only_labels=only,
            n_classes=n_classes,
            plane=plane,
            index=index,
            iterations=int(self.iterations.value()),
            margin=int(self.margin.value()),
        )

    def apply(self, job: RefineJob, result: GrabCutResult) -> int:
        """Write the refined classes into the segmentation layer as one undo step.

        Only unpainted (0) pixels are written. When the plane gets marked
        strong, undoing that step (and redoing it) moves the flag with it.
        Returns the number of pixels written.
        """
        image_layer = self.image_combo.layer()
        layers = linked_layers(self.viewer, image_layer) if image_layer is not None else {}
        layer = layers.get("segmentation")
        if layer is None:
            raise PluginInputError("the segmentation layer was removed while GrabCut ran")
        current = plane_data(layer, job.index)
        ys, xs = merge_segmentation(current, result.classes)
        lead = tuple(np.full(ys.shape, i, dtype=np.intp) for i in job.index)
        values = result.classes[ys, xs]
        with layer.block_history():
            layer.data_setitem((*lead, ys, xs), values)
        if self.strong_check.isChecked() and np.any(plane_data(layer, job.index)):
            # Undoing the refinement on the segmentation layer clears this flag again.
            mark_strong_with_edit(image_layer, layer, job.plane, (ys, xs), values)
        self.last_result = result
        n_objects = len(result.object_ids)
        strong = " · marked strong" if is_strong(image_layer, job.plane) else ""
        self.status.setText(
            f"{n_objects} object(s) refined in {result.total_seconds:.1f} s; "
            f"{ys.size} pixel(s) written{strong}"
        )
        return int(ys.size)

    def refine(self, mode: str | None = None) -> GrabCutResult:
        """Prepare, run and apply GrabCut on the current plane (blocking; for scripts and tests)."""
        job = self.prepare(mode)
        result = job.run()
        self.apply(job, result)
        return result

    # ------------------------------------------------------------------- UI
    def _on_refine(self) -> None:
        try:
            job = self.prepare()
        except Exception as error:  # noqa: BLE001 - shown as a notification
            notify_error(error)
            return
        if not self.use_thread:
            try:
                self.apply(job, job.run())
            except Exception as error:  # noqa: BLE001
                notify_error(error)
            return
        from napari.qt.threading import create_worker

        self.refine_button.setEnabled(False)
        self.status.setText("refining…")
        worker = create_worker(job.run)
        worker.returned.connect(lambda result: self._done(job, result))
        worker.errored.connect(notify_error)
        worker.finished.connect(lambda: self.refine_button.setEnabled(True))
        self._worker = worker
        worker.start()

    def _done(self, job: RefineJob, result: GrabCutResult) -> None:
        try:
            written = self.apply(job, result)
        except Exception as error:  # noqa: BLE001
            notify_error(error)
            return
        if written == 0:
            notify_info("nothing new to write: the segmentation was already painted there")

    @property
    def busy(self) -> bool:
        """Whether a GrabCut run is in progress."""
        return self._worker is not None and self._worker.is_running
