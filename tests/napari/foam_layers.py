"""Helpers for the widget tests: the synthetic foam as linked napari layers."""

from __future__ import annotations

import numpy as np

from napari_lazyunet._napari.labels_layers import link_label_layers
from napari_lazyunet._napari.planes import set_strong


def add_foam_image(
    viewer,
    sample,
    index: int,
    *,
    strong: bool = False,
    name: str | None = None,
    scale=(1.0, 1.0),
    translate=(0.0, 0.0),
):
    """Add sample image ``index`` with its lazy labels as linked layers; return the image layer."""
    image = viewer.add_image(
        sample.images[index], name=name or f"foam {index}", scale=scale, translate=translate
    )
    layers = link_label_layers(viewer, image, sample.class_names)
    layers["detection"].data = np.asarray(sample.detection[index], dtype=np.uint8)
    layers["separation"].data = np.asarray(sample.separation[index], dtype=np.uint8)
    if strong:
        layers["segmentation"].data = np.asarray(sample.classes[index], dtype=np.uint8)
        set_strong(image, 0, True)
    return image


def tiny_settings(widget, steps: int = 3) -> None:
    """Set a Train widget's form to a network that trains in a fraction of a second."""
    widget.set_fields(
        base_channels=4,
        depth=2,
        steps=steps,
        batch_size=2,
        patch_size=32,
        validate_every=2,
        device="cpu",
        num_threads=1,
    )
