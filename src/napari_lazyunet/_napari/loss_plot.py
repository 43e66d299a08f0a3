"""Live training curves drawn with matplotlib's Qt canvas.

:class:`LossPlot` takes training records (one per step) as they arrive and
redraws at most :attr:`LossPlot.max_rate` times per second from a Qt timer,
so a fast training loop (hundreds of steps per second on a GPU) cannot flood
the GUI thread with redraws. One axes shows the total loss and the loss of
each task per step, and the validation loss and Dice where validation ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

__all__ = ["TRAIN_SERIES", "VALIDATION_SERIES", "LossPlot"]

#: Training curves: record key -> (label, colour).
TRAIN_SERIES: dict[str, tuple[str, str]] = {
    "loss": ("total", "#e0e0e0"),
    "detection": ("detection", "#33a3ff"),
    "segmentation": ("segmentation", "#4dd94d"),
    "separation": ("separation", "#ffb000"),
}
#: Validation curves: record key -> (label, colour).
VALIDATION_SERIES: dict[str, tuple[str, str]] = {
    "val_loss": ("validation loss", "#ff6680"),
    "val_dice": ("validation Dice", "#b28cff"),
}


class LossPlot(QWidget):
    """Loss per task and validation scores against the training step.

    Parameters
    ----------
    parent : QWidget, optional
        Parent widget.
    max_rate : float
        Highest redraw rate in Hz (default 5).
    foreground, background : str
        Text / axis colour and face colour (napari's dark theme by default).
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        max_rate: float = 5.0,
        foreground: str = "#d2d2d2",
        background: str = "#262930",
    ):
        super().__init__(parent)
        self.max_rate = max_rate
        # One axes, linear scale, fixed margins: a redraw of a constrained-layout,
        # log-scale, two-axes figure measured ~0.5 s on a busy 2-core machine,
        # this one a small fraction of that (see benchmarks/gui_responsiveness.py).
        self.figure = Figure(figsize=(4, 2.6), facecolor=background)
        self.figure.subplots_adjust(left=0.12, right=0.97, top=0.96, bottom=0.2)
        self.canvas = FigureCanvasQTAgg(self.figure)
        # A fixed height: a canvas resize (e.g. when a status text above wraps
        # differently) would cost a full redraw.
        self.canvas.setFixedHeight(200)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

        self.ax = ax = self.figure.add_subplot(1, 1, 1)
        ax.set_facecolor(background)
        ax.tick_params(colors=foreground, labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        for spine in ax.spines.values():
            spine.set_color(foreground)
        ax.set_xlabel("step", color=foreground, fontsize=8)
        self.lines = {}
        for key, (label, color) in TRAIN_SERIES.items():
            (self.lines[key],) = ax.plot(
                [],
                [],
                label=label,
                color=color,
                lw=1.6 if key == "loss" else 1.0,
                animated=True,
            )
        for key, (label, color) in VALIDATION_SERIES.items():
            (self.lines[key],) = ax.plot(
                [], [], "o--", label=label, color=color, ms=3, lw=1.0, animated=True
            )
        # The legend is a Qt label: text is the costly part of a matplotlib redraw.
        entries = [
            f'<span style="color:{color}">&#9644;</span>&nbsp;{label}'
            for label, color in (*TRAIN_SERIES.values(), *VALIDATION_SERIES.values())
        ]
        self.legend = QLabel(" &nbsp; ".join(entries))
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("font-size: 10px")
        layout.addWidget(self.legend)

        self._data: dict[str, tuple[list[float], list[float]]] = {
            key: ([], []) for key in self.lines
        }
        self._dirty = False
        self._x_range: tuple[float, float] | None = None
        self._background = None
        self.redraws = 0  # number of redraws (full or blitted), for tests and benchmarks
        self.full_redraws = 0
        self.canvas.mpl_connect("draw_event", self._on_full_draw)
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, int(1000 / max_rate)))
        self._timer.timeout.connect(self.redraw)
        self._timer.start()

    # ----------------------------------------------------------------- data
    def add_record(self, record: Mapping[str, float]) -> None:
        """Append one step: ``{"step": n, "loss": ..., "<task>": ..., "val_loss": ...}``.

        Parameters
        ----------
        record : mapping
            Needs ``"step"``; every known key present (see :data:`TRAIN_SERIES`
            and :data:`VALIDATION_SERIES`) extends its curve.
        """
        step = float(record["step"])
        for key, (xs, ys) in self._data.items():
            value = record.get(key)
            if value is not None:
                xs.append(step)
                ys.append(float(value))
        self._dirty = True

    def add_event(self, event) -> None:
        """Append a :class:`~napari_lazyunet.core.train.TrainEvent`.

        A task with no labelled pixel in the step's batch (e.g. segmentation
        when no patch came from a strong image) reports a loss of exactly 0;
        such points are left out rather than drawn as a drop to zero.
        """
        losses = {task: value for task, value in event.losses.items() if value != 0.0}
        record = {"step": event.step, "loss": event.loss, **losses}
        record.update(event.validation or {})
        self.add_record(record)

    def set_history(self, history: Iterable[Mapping[str, float]]) -> None:
        """Replace the curves by a model's training history (``LazyUNet.history``)."""
        self.clear()
        for record in history:
            kept = {
                k: v for k, v in record.items() if k not in TRAIN_SERIES or k == "loss" or v != 0.0
            }
            self.add_record(kept)
        self.redraw()

    def set_range(self, first_step: float, last_step: float) -> None:
        """Fix the step axis to ``[first_step, last_step]`` (the planned run).

        With a fixed step axis the axes need no full redraw while a run
        progresses; only the curves are redrawn (blitted).
        """
        self._x_range = (float(first_step), float(max(last_step, first_step + 1)))
        # No redraw for the new range alone: the first data point triggers one
        # full redraw with both the step range and the loss range known.
        self._dirty = self._dirty or any(xs for xs, _ in self._data.values())

    def clear(self) -> None:
        """Remove all points."""
        had_data = any(xs for xs, _ in self._data.values())
        for xs, ys in self._data.values():
            xs.clear()
            ys.clear()
        self._dirty = self._dirty or had_data

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """The ``(steps, values)`` of one curve (copies)."""
        xs, ys = self._data[key]
        return list(xs), list(ys)

    # -------------------------------------------------------------- drawing
    def _limits(self) -> tuple[float, float, float, float]:
        xs = [x for key in self._data for x in self._data[key][0]]
        ys = [y for key in self._data for y in self._data[key][1]]
        if self._x_range is not None:
            x0, x1 = self._x_range
            x1 = max(x1, max(xs, default=x1))
        else:
            x0, x1 = min(xs, default=0.0), max(max(xs, default=1.0), min(xs, default=0.0) + 1)
        top = _nice_ceiling(max(ys, default=1.0))
        return x0, x1, 0.0, top

    def redraw(self) -> None:
        """Redraw if data arrived since the last redraw (called by the timer).

        Only the curves are redrawn onto a cached background (blitting) while
        the axis limits stay the same; when a value leaves the axes the
        limits grow (to a round number) and the whole figure is redrawn once.
        """
        if not self._dirty:
            return
        self._dirty = False
        for key, line in self.lines.items():
            line.set_data(*self._data[key])
        limits = self._limits()
        current = (*self.ax.get_xlim(), *self.ax.get_ylim())
        self.redraws += 1
        if self._background is None or not np.allclose(limits, current):
            self.ax.set_xlim(limits[0], limits[1])
            self.ax.set_ylim(limits[2], limits[3])
            self.canvas.draw()  # full redraw; _on_full_draw caches the background
            return
        self.canvas.restore_region(self._background)
        self._draw_lines()
        # Schedule a paint of the canvas widget only. ``canvas.blit`` would
        # repaint synchronously, and inside napari's window that repaint
        # measured ~30 ms per call under Xvfb (software OpenGL).
        self.canvas.update()

    def _draw_lines(self) -> None:
        for line in self.lines.values():
            self.ax.draw_artist(line)

    def _on_full_draw(self, _event) -> None:
        # Every full draw (ours, a resize, a theme change) renders the axes without
        # the animated curves: cache that as the background, then add the curves.
        self.full_redraws += 1
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_lines()


def _nice_ceiling(value: float) -> float:
    """Smallest of 1, 1.5, 2, 3, 5, 7.5 x 10^k that is >= ``value`` (1 for non-positive)."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    exponent = np.floor(np.log10(value))
    for mantissa in (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0):
        candidate = mantissa * 10**exponent
        if candidate >= value * (1 - 1e-9):
            return float(candidate)
    return float(10 ** (exponent + 1))
