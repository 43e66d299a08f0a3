"""Take the user guide's screenshots from a real napari viewer.

Run it again after changing a widget (on a machine without display, under Xvfb)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots.py
    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots.py --only refine_widget.png

Each screenshot is a function registered with :func:`shot`: it receives a
fresh viewer with the foam sample opened (File > Open Sample), sets the
scene up through the plugin's widgets, and the whole window is saved to
``docs/images/<name>``. Add a page's screenshots by writing one more such
function.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PLUGIN = "napari-lazyunet"
IMAGES = Path(__file__).resolve().parent / "images"
WINDOW_SIZE = (1280, 800)

#: File name -> function(viewer) that sets the scene up.
SHOTS: dict[str, Callable] = {}


def shot(filename: str) -> Callable[[Callable], Callable]:
    """Register a scene function under the PNG file name it produces."""

    def register(function: Callable) -> Callable:
        SHOTS[filename] = function
        return function

    return register


def settle(seconds: float = 0.6) -> None:
    """Let Qt and the canvas process pending events (layout, drawing)."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def dock(viewer, name: str):
    """Open one of the plugin's dock widgets and return the widget."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


def linked(viewer):
    """The sample image and its linked labels layers."""
    from napari_lazyunet._napari import layer_links

    image = viewer.layers["foam"]
    return image, layer_links.linked_layers(viewer, image)


# ----------------------------------------------------------------------- scenes
@shot("sample.png")
def sample(viewer) -> None:
    """File > Open Sample > napari-lazyunet > Lazy-label foam sample, on a weak plane."""
    viewer.dims.set_current_step(0, 1)
    viewer.layers.selection.active = viewer.layers["foam detection"]


@shot("labels_widget.png")
def labels_widget(viewer) -> None:
    """Lazy labels widget, ready to paint inner regions of class 2 on the first plane."""
    viewer.dims.set_current_step(0, 0)
    _image, layers = linked(viewer)
    layers["segmentation"].visible = False
    widget = dock(viewer, "Lazy labels")
    widget.class_buttons[1].click()  # "Paint 2": crystals, medium brush, detection layer


@shot("refine_widget.png")
def refine_widget(viewer) -> None:
    """Refine widget after GrabCut on plane 2 (index 1): exact masks in the segmentation layer."""
    viewer.dims.set_current_step(0, 1)
    _image, layers = linked(viewer)
    layers["separation"].visible = False
    layers["detection"].opacity = 1.0
    layers["segmentation"].opacity = 0.45
    widget = dock(viewer, "Refine (GrabCut)")
    widget.use_thread = False
    widget.refine("all objects")
    viewer.layers.selection.active = layers["segmentation"]


def _trained_model_file() -> Path:
    """A model trained on the sample for the Train / Predict shots (trained once, then reused)."""
    import tempfile

    return Path(tempfile.gettempdir()) / "foam-model.pt"


@shot("train_widget.png")
def train_widget(viewer) -> None:
    """Train widget after a short run on the sample: loss per task and validation scores."""
    widget = dock(viewer, "Train")
    widget.use_threads = False  # deterministic scene; the GUI uses a thread worker
    widget.set_fields(
        base_channels=8,
        depth=3,
        steps=400,
        batch_size=4,
        patch_size=96,
        validate_every=25,
        validation_share=0.25,
    )
    widget.start()
    widget.model.save(_trained_model_file())


@shot("predict_widget.png")
def predict_widget(viewer) -> None:
    """Predict widget after predicting the sample stack with the model of the Train shot."""
    if not _trained_model_file().is_file():
        train_widget(viewer)
    image, layers = linked(viewer)
    for layer in layers.values():
        layer.visible = False
    widget = dock(viewer, "Predict")
    widget.use_threads = False
    widget.model_edit.setText(str(_trained_model_file()))
    widget.set_input(image)
    widget.tile_spin.setValue(192)
    widget.run()
    viewer.dims.set_current_step(0, 1)
    viewer.layers.selection.active = viewer.layers["foam instances"]


# ------------------------------------------------------------------------ runner
def take(filename: str, out: Path) -> Path:
    """Open a fresh viewer with the sample, set the scene up and save the window."""
    import imageio.v3 as iio

    import napari

    viewer = napari.Viewer(title="napari-lazyunet")
    try:
        viewer.window.resize(*WINDOW_SIZE)
        viewer.open_sample(PLUGIN, "foam")
        SHOTS[filename](viewer)
        viewer.reset_view()
        settle()
        image = viewer.screenshot(canvas_only=False, flash=False)
        path = out / filename
        iio.imwrite(path, np.asarray(image)[..., :3])
        return path
    finally:
        viewer.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: take all (or ``--only``) screenshots into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="output folder")
    parser.add_argument("--only", nargs="*", default=None, help="file names to (re)take")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(SHOTS)
    unknown = sorted(set(names) - set(SHOTS))
    if unknown:
        parser.error(f"unknown screenshot(s) {unknown}; known: {sorted(SHOTS)}")
    for name in names:
        print(take(name, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
