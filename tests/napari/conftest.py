"""Fixtures for the plugin tests: a real napari viewer (under Xvfb) with the foam sample.

Run with ``xvfb-run -a pytest tests/napari`` on a machine without a display.
"""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytest.importorskip("qtpy")

from plugin_helpers import PLUGIN


@pytest.fixture(autouse=True)
def recovery_dir(tmp_path, monkeypatch):
    """Autosaved labels and models of each test go to its own folder, never the user's."""
    from napari_lazyunet.core.recovery import RECOVERY_ENV

    folder = tmp_path / "recovery"
    monkeypatch.setenv(RECOVERY_ENV, str(folder))
    return folder


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/napari" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.gui)


def _record_notifications(entry):
    """Yield the list of ``entry(notification)`` for every napari notification shown meanwhile."""
    from napari.utils.notifications import notification_manager

    shown: list[tuple[str, ...]] = []

    def record(notification):
        shown.append(entry(notification))

    notification_manager.notification_ready.connect(record)
    yield shown
    notification_manager.notification_ready.disconnect(record)


@pytest.fixture
def notifications(monkeypatch):
    """Every napari notification shown during the test, as ``(severity, message)``."""
    yield from _record_notifications(lambda n: (str(n.severity), str(n.message)))


@pytest.fixture
def notes():
    """Notifications shown during the test: list of (severity, message, type name)."""
    yield from _record_notifications(lambda n: (str(n.severity), str(n.message), type(n).__name__))


@pytest.fixture(scope="module")
def sample():
    """A small foam sample (three 64 x 64 images) for the widget tests of one module."""
    from napari_lazyunet.sample.synthetic import make_foam_sample

    return make_foam_sample(n_images=3, shape=(64, 64), seed=0)


@pytest.fixture
def foam_viewer(make_napari_viewer):
    """A viewer with the plugin's sample opened through File > Open Sample."""
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "foam")
    return viewer


@pytest.fixture(scope="session")
def foam_truth():
    """Ground truth of the sample's planes (same seed and shape as the sample)."""
    from napari_lazyunet._napari.sample_data import N_PLANES, SHAPE
    from napari_lazyunet.sample.synthetic import make_foam_sample

    return make_foam_sample(n_images=N_PLANES, shape=SHAPE, seed=0)
