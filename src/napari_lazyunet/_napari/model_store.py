"""The model shared by the widgets of one viewer.

The Train widget publishes the model it trained (or loaded) here and the
Predict widget reads it, without either widget knowing about the other and
without process-wide state: every viewer has its own :class:`ModelStore`,
kept in a :class:`weakref.WeakKeyDictionary` keyed by the viewer, so the
store (and the model it holds) goes away with its viewer and two viewers
never see each other's model.

>>> store = model_store(viewer)  # doctest: +SKIP
>>> store.model, store.source    # doctest: +SKIP
(LazyUNet(multi-task U-Net, ...), 'trained in this viewer (200 steps)')
"""

from __future__ import annotations

import weakref
from typing import Any

from psygnal import Signal

from napari_lazyunet.api import LazyUNet

__all__ = ["ModelStore", "model_store"]


class ModelStore:
    """Holds the current model of a viewer and announces changes.

    Attributes
    ----------
    model : LazyUNet or None
        The model trained or loaded last in this viewer.
    source : str
        Where it came from, for display (``"trained in this viewer (200 steps)"``,
        ``"loaded from /path/model.pt"``).
    busy : bool
        True while a training run is updating the model's weights; prediction
        with it must wait.
    changed : psygnal.Signal
        Emitted with the store after :meth:`set` or a change of ``busy``.
    """

    changed = Signal(object)

    def __init__(self) -> None:
        self.model: LazyUNet | None = None
        self.source = ""
        self.busy = False

    def set(self, model: LazyUNet | None, source: str = "") -> None:
        """Publish ``model`` (``None`` clears the store).

        Parameters
        ----------
        model : LazyUNet or None
            The model.
        source : str
            Where it came from, shown in the widgets.
        """
        self.model = model
        self.source = source if model is not None else ""
        self.changed.emit(self)

    def set_busy(self, busy: bool) -> None:
        """Mark the model as being trained (``True``) or free (``False``)."""
        self.busy = bool(busy)
        self.changed.emit(self)

    def describe(self) -> str:
        """One line naming the model and its origin, or saying there is none."""
        if self.model is None:
            return "no model yet: train one or load a model file"
        classes = ", ".join(self.model.class_names)
        channels = self.model.config.model.in_channels
        text = f"{self.source}; classes: {classes}; {channels} channel(s)"
        return text + (" (training…)" if self.busy else "")


_STORES: weakref.WeakKeyDictionary[Any, ModelStore] = weakref.WeakKeyDictionary()


def model_store(viewer: Any) -> ModelStore:
    """The :class:`ModelStore` of a viewer, created on first use.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose widgets share the model.

    Returns
    -------
    ModelStore
    """
    store = _STORES.get(viewer)
    if store is None:
        store = ModelStore()
        _STORES[viewer] = store
    return store
