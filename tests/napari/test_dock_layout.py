"""The four dock widgets in a shown viewer: they scroll, so the window fits a 1600 x 1000 screen."""

from __future__ import annotations

from plugin_helpers import PLUGIN
from qtpy.QtWidgets import QApplication, QWidget

from napari_lazyunet._napari._scroll import scroll_area_of, scroll_contents
from napari_lazyunet._napari.labels_widget import LabelsWidget
from napari_lazyunet._napari.predict_widget import PredictWidget
from napari_lazyunet._napari.refine_widget import RefineWidget
from napari_lazyunet._napari.train_widget import TrainWidget

#: Dock name, widget class, and a public attribute near the bottom of its form.
DOCKS = (
    ("Lazy labels", LabelsWidget, "counts_label"),
    ("Refine (GrabCut)", RefineWidget, "status"),
    ("Train", TrainWidget, "status"),
    ("Predict", PredictWidget, "status"),
)


def test_four_docks_fit_the_screen_and_every_form_scrolls_to_its_end(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "foam")
    opened = [viewer.window.add_plugin_dock_widget(PLUGIN, name) for name, _, _ in DOCKS]
    QApplication.processEvents()

    window = opened[0][0].window()
    assert window.minimumSizeHint().height() <= 1000
    assert window.frameGeometry().height() <= 1000
    for (name, cls, bottom), (_, widget) in zip(DOCKS, opened, strict=True):
        assert isinstance(widget, cls), name
        assert widget.minimumSizeHint().height() < 400, name
        area = scroll_area_of(widget)
        assert area is not None, name
        form = area.widget()
        child = getattr(widget, bottom)  # public attributes still point to the form's widgets
        assert form.isAncestorOf(child), name
        # Scrolling reaches the end of the form, whatever height the dock got.
        bar = area.verticalScrollBar()
        assert bar.maximum() >= form.height() - area.viewport().height() - 1, name
        area.ensureWidgetVisible(child)
        QApplication.processEvents()
        top = child.mapTo(area.viewport(), child.rect().topLeft()).y()
        assert 0 <= top < area.viewport().height(), name


def test_scroll_contents_moves_the_layout_once(qtbot):
    from qtpy.QtWidgets import QPushButton, QVBoxLayout

    widget = QWidget()
    qtbot.addWidget(widget)
    layout = QVBoxLayout(widget)
    button = QPushButton("press")
    layout.addWidget(button)
    area = scroll_contents(widget)
    assert scroll_contents(widget) is area and area.widget().isAncestorOf(button)
    assert area.widget().layout() is layout
