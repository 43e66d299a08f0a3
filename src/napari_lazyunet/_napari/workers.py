"""Run the engine's generators off the GUI thread, stoppably, with main-thread callbacks.

The engine does long work as generators (``LazyUNet.iter_fit``,
``LazyUNet.iter_predict``) that can be closed at any yield. A :class:`Job`
drives such a generator in a napari thread worker and delivers every item
to a callback on the main thread, where widgets may touch layers and plots.

Stopping does not use the worker's ``quit()``: napari's worker would just
stop iterating and leave the engine generator unclosed, so the checkpoint
that the engine writes on close would only be written whenever the
generator is garbage-collected. Instead :meth:`Job.stop` sets a flag that
the worker checks between items; the worker then closes the engine
generator itself (writing the checkpoint in the worker thread) and reports
``"stopped"``.

Errors never escape the worker: they end the job with a ``"failed"``
:class:`Outcome`, and the widget shows a notification (expected mistakes
with their message only, see ``_notify.py``) instead of napari's traceback
dialog. Warnings raised while the engine prepares the data (the first
item, e.g. "no strong image") are collected and delivered as
:class:`Notice` items.

``threaded=False`` runs the same loop synchronously on the calling thread
(for tests and scripts; the callbacks are then called before
:meth:`Job.start` returns).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Job", "JobWidgetMixin", "Notice", "Outcome", "StallMeter"]


@dataclass(frozen=True)
class Notice:
    """A warning raised by the engine, to be shown as a notification.

    Attributes
    ----------
    message : str
        The warning text.
    category : type
        The warning class (e.g. ``WeakLabelsOnlyWarning``).
    """

    message: str
    category: type = UserWarning


@dataclass(frozen=True)
class Outcome:
    """How a job ended.

    Attributes
    ----------
    status : {"finished", "stopped", "failed"}
        Ran to the end, stopped on request, or raised.
    error : BaseException or None
        The exception when ``status == "failed"``.
    """

    status: str
    error: BaseException | None = None


def _drain(generator: Iterator[Any], stop: threading.Event) -> Iterator[Any]:
    """Yield the generator's items until it ends or ``stop`` is set; return an :class:`Outcome`."""
    first = True
    try:
        while not stop.is_set():
            try:
                if first:
                    # Data preparation and validation happen on the first step.
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        item = next(generator)
                    first = False
                    for warning in caught:
                        yield Notice(str(warning.message), warning.category)
                else:
                    item = next(generator)
            except StopIteration:
                return Outcome("finished")
            yield item
        return Outcome("stopped")
    except Exception as error:  # noqa: BLE001 - reported on the main thread, never as a dialog
        return Outcome("failed", error)
    finally:
        # The engine writes its checkpoint here on an early stop; a failing
        # close must not hide the outcome.
        with contextlib.suppress(Exception):
            generator.close()


class Job:
    """One generator run in a napari thread worker (or synchronously).

    Parameters
    ----------
    generator : iterator
        Created on the main thread; it is advanced (and closed) in the worker.
    on_item : callable
        Called on the main thread with every yielded item (including :class:`Notice`).
    on_done : callable
        Called on the main thread with the :class:`Outcome` once the job ended.
    threaded : bool
        Run in a napari ``GeneratorWorker`` (default) or synchronously.

    Examples
    --------
    >>> job = Job(iter(range(3)), on_item=print, on_done=print, threaded=False)
    >>> job.start()
    0
    1
    2
    Outcome(status='finished', error=None)
    """

    def __init__(
        self,
        generator: Iterator[Any],
        on_item: Callable[[Any], object],
        on_done: Callable[[Outcome], object],
        *,
        threaded: bool = True,
    ):
        self._generator = generator
        self._on_item = on_item
        self._on_done = on_done
        self._threaded = threaded
        self._stop = threading.Event()
        self._running = False
        self._owner_gone = False
        self.worker = None

    def stop_with(self, widget: Any) -> None:
        """Stop the job when ``widget`` (a QObject) is destroyed, e.g. when its viewer closes.

        The callbacks are not called any more after that; the engine
        generator is still closed in the worker (writing its checkpoint).
        """
        widget.destroyed.connect(self._owner_destroyed)

    def _owner_destroyed(self, *_: Any) -> None:
        self._owner_gone = True
        self.stop()

    @property
    def running(self) -> bool:
        """True from :meth:`start` until ``on_done`` has been called."""
        return self._running

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the job to end after the current item (the engine generator is then closed)."""
        self._stop.set()

    def start(self) -> None:
        """Start the job (returns at once when threaded)."""
        self._running = True
        if not self._threaded:
            outcome = yield_from_sync(_drain(self._generator, self._stop), self._on_item)
            self._finish(outcome)
            return
        from napari.qt.threading import create_worker

        def work():
            return (yield from _drain(self._generator, self._stop))

        worker = create_worker(work, _start_thread=False)
        worker.yielded.connect(self._deliver)
        worker.returned.connect(self._finish)
        self.worker = worker
        worker.start()

    def _deliver(self, item: Any) -> None:
        if not self._owner_gone:
            self._on_item(item)

    def _finish(self, outcome: Outcome | None) -> None:
        self._running = False
        self.worker = None
        if not self._owner_gone:
            self._on_done(outcome if outcome is not None else Outcome("stopped"))


class JobWidgetMixin:
    """What the Train and Predict widgets share: one :class:`Job` at a time.

    The widget sets ``self.job = None`` and ``self.use_threads`` in its
    ``__init__`` and defines ``_on_item(item)`` and ``_on_done(outcome)``
    (``_on_done`` sets ``self.job = None``); list the mixin before ``QWidget``.
    """

    job: Job | None
    use_threads: bool

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self.job is not None and self.job.running

    def _start_job(self, generator: Iterator[Any]) -> None:
        """Run ``generator`` as this widget's job; it stops when the widget is destroyed."""
        self.job = Job(generator, self._on_item, self._on_done, threaded=self.use_threads)
        self.job.stop_with(self)
        self.job.start()

    def wait(self, timeout: float = 60.0) -> bool:
        """Process Qt events until the current run has ended (for scripts and tests).

        Returns
        -------
        bool
            True when no run is in progress any more.
        """
        import time

        from qtpy.QtWidgets import QApplication

        end = time.perf_counter() + timeout
        while self.running and time.perf_counter() < end:
            QApplication.processEvents()
            time.sleep(0.005)
        return not self.running


def yield_from_sync(generator: Iterator[Any], on_item: Callable[[Any], object]) -> Any:
    """Drain ``generator`` on this thread, calling ``on_item`` per item; return its return value."""
    while True:
        try:
            item = next(generator)
        except StopIteration as done:
            return done.value
        on_item(item)


class StallMeter:
    """Measure how long the Qt event loop of the main thread is blocked.

    A timer fires every ``interval_ms`` on the main thread and records the
    time between consecutive ticks. While the event loop is free, gaps stay
    close to the interval; a gap of 250 ms means the GUI froze for about
    that long (a redraw, a layer update, or Python code holding the GIL).

    Parameters
    ----------
    interval_ms : int
        Timer interval (default 10 ms).

    Examples
    --------
    >>> meter = StallMeter()           # doctest: +SKIP
    >>> meter.start(); ...; meter.stop()  # doctest: +SKIP
    >>> meter.max_gap_ms, meter.percentile_ms(99)  # doctest: +SKIP
    """

    def __init__(self, interval_ms: int = 10):
        from qtpy.QtCore import QTimer

        self.interval_ms = interval_ms
        self.gaps_ms: list[float] = []
        self._last: float | None = None
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        import time

        now = time.perf_counter()
        if self._last is not None:
            self.gaps_ms.append((now - self._last) * 1000.0)
        self._last = now

    def start(self) -> None:
        """Start recording (clears earlier gaps)."""
        self.gaps_ms.clear()
        self._last = None
        self._timer.start()

    def stop(self) -> None:
        """Stop recording."""
        self._timer.stop()

    @property
    def max_gap_ms(self) -> float:
        """Longest gap between ticks (0 before two ticks)."""
        return max(self.gaps_ms, default=0.0)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the gaps in ms (0 before two ticks)."""
        if not self.gaps_ms:
            return 0.0
        import numpy as np

        return float(np.percentile(self.gaps_ms, q))
