"""The Train widget as napari docks it (*Plugins > LazyUNet > Train*): its form scrolls."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QWidget

from ._scroll import scroll_contents
from .train_widget import TrainWidget

__all__ = ["TrainDock"]


class TrainDock(TrainWidget):
    """:class:`~napari_lazyunet._napari.train_widget.TrainWidget` with its form in a scroll area.

    Same attributes and methods as the Train widget; only the layout
    differs (see :mod:`napari_lazyunet._napari._scroll`).

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose layers are trained on.
    parent : QWidget, optional
        Parent widget.
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        scroll_contents(self)
