"""The models of one viewer, shared by the widgets.

The Train widget adds every model it trains (or loads) here and the Predict
widget predicts with the chosen one, without either widget knowing about the
other and without process-wide state: every viewer has its own
:class:`ModelStore`, kept in a :class:`weakref.WeakKeyDictionary` keyed by
the viewer, so the store (and its models) goes away with its viewer and two
viewers never see each other's models.

A new training run never replaces a finished model: each run adds an entry,
and every entry stays selectable until the user discards it.

>>> store = model_store(viewer)  # doctest: +SKIP
>>> store.model, store.source    # doctest: +SKIP
(LazyUNet(multi-task U-Net, ...), 'trained in this viewer (200 steps)')
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psygnal import Signal

from napari_lazyunet.api import LazyUNet

__all__ = ["ModelStore", "StoredModel", "model_store"]


@dataclass
class StoredModel:
    """One model of a viewer.

    Attributes
    ----------
    model : LazyUNet
        The model.
    source : str
        Where it came from, for display.
    file : Path or None
        A file that holds its current weights (loaded from, saved to, or
        kept by training), ``None`` when only the viewer has it.
    """

    model: LazyUNet
    source: str
    file: Path | None = None

    def label(self) -> str:
        """One line for a list of models."""
        kept = f" · {self.file.name}" if self.file is not None else " · not saved"
        return f"{self.source}{kept}"


class ModelStore:
    """The models of a viewer and the chosen one.

    Attributes
    ----------
    entries : list of StoredModel
        Every model trained or loaded in this viewer and not discarded, oldest first.
    index : int
        Position of the chosen model in :attr:`entries` (-1 when there is none).
    changed : psygnal.Signal
        Emitted with the store after any change.
    """

    changed = Signal(object)

    def __init__(self) -> None:
        self.entries: list[StoredModel] = []
        self.index = -1

    # ------------------------------------------------------------------ reading
    @property
    def current(self) -> StoredModel | None:
        """The chosen entry, or ``None``."""
        return self.entries[self.index] if 0 <= self.index < len(self.entries) else None

    @property
    def model(self) -> LazyUNet | None:
        """The chosen model, or ``None``."""
        return None if self.current is None else self.current.model

    @property
    def source(self) -> str:
        """Where the chosen model came from (``""`` when there is none)."""
        return "" if self.current is None else self.current.source

    def entry_of(self, model: LazyUNet) -> StoredModel | None:
        """The entry holding ``model`` (by identity), or ``None``."""
        return next((e for e in self.entries if e.model is model), None)

    def unsaved(self) -> list[StoredModel]:
        """Entries whose weights are in no file."""
        return [e for e in self.entries if e.file is None]

    # ------------------------------------------------------------------ changing
    def add(self, model: LazyUNet, source: str, file: str | Path | None = None) -> StoredModel:
        """Add a model (or update the entry that already holds it) and choose it.

        Parameters
        ----------
        model : LazyUNet
            The model.
        source : str
            Where it came from, shown in the widgets.
        file : str or Path, optional
            A file holding its current weights.

        Returns
        -------
        StoredModel
        """
        entry = self.entry_of(model)
        if entry is None:
            entry = StoredModel(model, source)
            self.entries.append(entry)
        entry.source = source
        entry.file = None if file is None else Path(file)
        self.index = self.entries.index(entry)
        self.changed.emit(self)
        return entry

    def set(self, model: LazyUNet | None, source: str = "") -> None:
        """Add and choose ``model`` (``None`` discards the chosen entry)."""
        if model is None:
            self.discard()
        else:
            self.add(model, source)

    def choose(self, index: int) -> None:
        """Make entry ``index`` the chosen model."""
        if not 0 <= index < len(self.entries):
            raise IndexError(f"no model {index}; the viewer has {len(self.entries)}")
        if index != self.index:
            self.index = index
            self.changed.emit(self)

    def discard(self, index: int | None = None) -> None:
        """Remove entry ``index`` (default: the chosen one); the newest left is chosen."""
        index = self.index if index is None else index
        if not 0 <= index < len(self.entries):
            return
        del self.entries[index]
        self.index = len(self.entries) - 1
        self.changed.emit(self)

    def mark_saved(self, model: LazyUNet, file: str | Path) -> None:
        """Record that ``file`` now holds ``model``'s weights."""
        entry = self.entry_of(model)
        if entry is not None:
            entry.file = Path(file)
            self.changed.emit(self)

    def describe(self) -> str:
        """One line naming the chosen model and its origin, or saying there is none."""
        if self.model is None:
            return "no model yet: train one or load a model file"
        classes = ", ".join(self.model.class_names)
        channels = self.model.config.model.in_channels
        return f"{self.source}; classes: {classes}; {channels} channel(s)"


_STORES: weakref.WeakKeyDictionary[Any, ModelStore] = weakref.WeakKeyDictionary()


def model_store(viewer: Any) -> ModelStore:
    """The :class:`ModelStore` of a viewer, created on first use.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose widgets share the models.

    Returns
    -------
    ModelStore
    """
    store = _STORES.get(viewer)
    if store is None:
        store = ModelStore()
        _STORES[viewer] = store
    return store
