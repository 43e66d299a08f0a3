"""Dock widgets scroll: their form sits in a scroll area, so four docks fit a small screen.

A dock widget builds its form as usual (``QVBoxLayout(self)``, its
attributes on ``self``) and ends its ``__init__`` with
``scroll_contents(self)``: the form moves into a scroll area that fills the
widget. The widget then asks for little height (napari stacks the docks of
one side and sizes the window to fit their minimum heights) and scrolls
vertically; its minimum width stays that of the form, so nothing scrolls
sideways.
"""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

__all__ = ["SCROLL_AREA_NAME", "scroll_area_of", "scroll_contents"]

#: Object name of the scroll area (and, with ``-contents``, of the form inside).
SCROLL_AREA_NAME = "lazyunet-scroll"


class _VerticalScrollArea(QScrollArea):
    """Scrolls vertically only: as wide as the form (plus a scroll bar), any height."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is not None:
            width = inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
            hint.setWidth(max(hint.width(), width + 2 * self.frameWidth()))
        return hint


def scroll_area_of(widget: QWidget) -> QScrollArea | None:
    """The scroll area :func:`scroll_contents` put into ``widget``, or ``None``."""
    direct = Qt.FindChildOption.FindDirectChildrenOnly
    return widget.findChild(QScrollArea, SCROLL_AREA_NAME, direct)


def scroll_contents(widget: QWidget) -> QScrollArea:
    """Move ``widget``'s layout (and its child widgets) into a vertical scroll area.

    Calling it twice on one widget does nothing more. The widget's
    attributes still point to the same child widgets; only their parent
    changes (the form inside the scroll area).

    Parameters
    ----------
    widget : QWidget
        A widget with its layout set.

    Returns
    -------
    QScrollArea
        The scroll area, the only child in ``widget``'s new layout.
    """
    area = scroll_area_of(widget)
    if area is not None:
        return area
    layout = widget.layout()
    contents = QWidget()
    contents.setObjectName(f"{SCROLL_AREA_NAME}-contents")
    if layout is not None:
        contents.setLayout(layout)  # Qt moves the layout and reparents its widgets
    area = _VerticalScrollArea(widget)
    area.setObjectName(SCROLL_AREA_NAME)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(contents)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return area
