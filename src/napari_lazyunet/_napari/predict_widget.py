"""Predict widget: run a model on image layers or a folder, in a cancellable worker.

The model is the one trained or loaded in this viewer (from the viewer's
:class:`~napari_lazyunet._napari.model_store.ModelStore`) or a model file.
The input is one image layer, every image layer, or a folder of images
(written to an output folder in the layout of ``lazyunet predict``:
``OUT/{detection,segmentation,separation,instances}/NAME.tif``). Layers get
Labels layers ``detection``, ``segmentation``, ``separation`` and
``instances`` (and optionally probability Image layers) with the input's
scale and translation; a second run updates them (found by metadata, see
``prediction_layers.py``). Prediction runs in a napari thread worker; the
layers are only touched in main-thread callbacks.

The form is split by concern: the model box and the choice of model are in
:mod:`.predict_model_choice`, the input box and the targets it gives in
:mod:`.predict_inputs`, the options box and the options it gives in
:mod:`.predict_options`, the worker body in :mod:`.prediction_jobs`; this
module assembles the dock, runs the prediction and shows the results.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_lazyunet.config import PredictConfig

from ._notify import EXPECTED_ERRORS, notify_error, notify_warning
from ._scroll import scroll_contents
from .autosave import label_autosaver
from .large_images import lazy_prediction
from .model_store import model_store
from .predict_inputs import PredictInputsMixin
from .predict_model_choice import ModelChoiceMixin
from .predict_options import PredictOptionsMixin
from .prediction_jobs import LargeResult, Progress, Result, Target, Written, predict_targets
from .prediction_layers import iter_show_prediction
from .workers import Job, JobWidgetMixin, Notice, Outcome

__all__ = ["PredictWidget", "Target"]


class PredictWidget(
    PredictInputsMixin, ModelChoiceMixin, PredictOptionsMixin, JobWidgetMixin, QWidget
):
    """Dock widget that predicts detection, segmentation, separation and instances.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer.
    parent : QWidget, optional
        Parent widget.

    Attributes
    ----------
    use_threads : bool
        Predict in a napari thread worker (default); ``False`` runs inside :meth:`run`.
    outputs : dict
        Layers written by the last run, ``{image layer name: {role: layer}}``.
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = model_store(napari_viewer)
        label_autosaver(napari_viewer)
        self.use_threads = True
        self.job: Job | None = None
        self.last_outcome: Outcome | None = None
        self.outputs: dict[str, dict[str, Any]] = {}
        self._showing: deque[tuple[str, Iterator[tuple[str, Any]]]] = deque()
        self._show_scheduled = False
        self._pending_outcome: Outcome | None = None
        self._written: list[Path] = []

        layout = QVBoxLayout(self)

        layout.addWidget(self._build_model_box())
        layout.addWidget(self._build_input_box())
        layout.addWidget(self._build_options_box())

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Predict")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        scroll_contents(self)  # the form scrolls: four docks fit a small screen

        self.viewer.layers.events.inserted.connect(self._refresh_inputs)
        self.viewer.layers.events.removed.connect(self._refresh_inputs)
        self.viewer.layers.events.moved.connect(self._refresh_inputs)
        self._refresh_inputs()
        self._connect_model_box()

    # --------------------------------------------------------------------- run
    def run(self) -> bool:
        """Predict the chosen input with the chosen model.

        Returns
        -------
        bool
            False when the inputs were refused (a notification says why).
        """
        if self.running:
            return False
        try:
            model = self.current_model()
            targets = self.targets()
            for target in targets:
                self._check_channels(model, target)
            self._place_large_outputs(model, targets)
            options = self.predict_options()
            PredictConfig(**options)  # validate before starting the worker
        except (OSError, *EXPECTED_ERRORS) as error:
            self._show_error(error)
            return False
        self.outputs = {}
        self._showing.clear()
        self._pending_outcome = None
        self._written = []
        self._instance_counts: list[int] = []
        self._finished: set[str] = set()
        self._targets = targets
        self.progress.setValue(0)
        self.status.setText(f"Predicting {len(targets)} image(s)…")
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        generator = predict_targets(model, targets, options, self.probability_check.isChecked())
        self._start_job(generator)
        return True

    def cancel(self) -> None:
        """Stop after the current batch of tiles; layers already written are kept."""
        if self.running:
            self.job.stop()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling…")

    def _on_item(self, item: Any) -> None:
        if isinstance(item, Progress):
            self.progress.setValue(int(1000 * (item.index + item.fraction) / item.total))
            self.status.setText(f"Predicting {item.name} ({item.index + 1}/{item.total})…")
        elif isinstance(item, Result | LargeResult):
            self._finished.add(item.target.name)
            layer = item.target.layer
            if isinstance(item, LargeResult):
                self._written.extend(item.result.files)
                self._instance_counts.append(item.result.n_instances)
                prediction = lazy_prediction(item.result.files, item.result.instance_classes)
            else:
                prediction = item.prediction
                self._instance_counts.append(sum(map(len, prediction.instance_classes)))
            if layer is None or layer not in self.viewer.layers:
                return  # the input layer was removed meanwhile
            shown = iter_show_prediction(
                self.viewer,
                layer,
                prediction,
                probabilities=self.probability_check.isChecked(),
            )
            self._showing.append((layer.name, shown))
            if self.use_threads:
                # One layer per turn of the event loop: adding all of an image's
                # layers at once would freeze the viewer for a second or more.
                self._schedule_show()
            else:
                while self._show_next():
                    pass
        elif isinstance(item, Written):
            self._finished.add(item.target.name)
            self._written.extend(item.files)
        elif isinstance(item, Notice):
            notify_warning(item.message)

    def _schedule_show(self) -> None:
        if not self._show_scheduled:
            self._show_scheduled = True
            QTimer.singleShot(0, self._show_step)

    def _show_step(self) -> None:
        self._show_scheduled = False
        if self._show_next():
            self._schedule_show()
        elif self._pending_outcome is not None:
            outcome, self._pending_outcome = self._pending_outcome, None
            self._report(outcome)

    def _show_next(self) -> bool:
        """Add or update one output layer; False when none is left to show."""
        while self._showing:
            name, shown = self._showing[0]
            try:
                role, layer = next(shown)
            except StopIteration:
                self._showing.popleft()
                continue
            self.outputs.setdefault(name, {})[role] = layer
            return True
        return False

    @property
    def running(self) -> bool:
        """True while predicting, and until the last output layer has been added."""
        return self.job is not None or self._pending_outcome is not None

    def _on_done(self, outcome: Outcome) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        if self._showing:  # the last layers are still being added
            self._pending_outcome = outcome
            self._schedule_show()
            return
        self._report(outcome)

    def _report(self, outcome: Outcome) -> None:
        self.last_outcome = outcome
        self.run_button.setEnabled(True)
        if outcome.status == "failed":
            self._show_error(outcome.error)
            return
        n_done = len(self._finished)
        folders = sorted({str(path.parent.parent) for path in self._written})
        where = f" to {', '.join(folders)}" if folders else ""
        if outcome.status == "stopped":
            self.status.setText(
                f"Cancelled after {n_done} of {len(self._targets)} image(s); "
                "results so far are kept."
            )
            return
        self.progress.setValue(1000)
        counts = self._instance_counts
        found = f": {sum(counts)} instance(s)" if counts else ""
        self.status.setText(f"Predicted {n_done} image(s){where}{found}.")

    def _show_error(self, error: BaseException | str | None) -> None:
        self.status.setText(notify_error(error if error is not None else "prediction failed"))
