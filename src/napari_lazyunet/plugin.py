"""The napari plugin's public functions for scripts and the napari console.

The dock widgets find an image's lazy-label layers through metadata links
(:mod:`napari_lazyunet._napari.links`); these functions are the supported
way for a script to do the same, to set the per-plane flags and to gather
the engine's inputs from a viewer. Importing this module imports napari.

>>> from napari_lazyunet import plugin                      # doctest: +SKIP
>>> layers = plugin.linked_layers(viewer, viewer.layers["foam"])  # doctest: +SKIP
"""

from __future__ import annotations

from ._napari.autosave import label_autosaver
from ._napari.classes import class_names, set_class_names
from ._napari.labels_layers import link_label_layers
from ._napari.large_images import open_large_image
from ._napari.links import linked_image, linked_layers
from ._napari.model_store import model_store
from ._napari.planes import (
    is_sparse,
    is_strong,
    mark_strong_with_edit,
    set_sparse,
    set_strong,
    strong_planes,
)
from ._napari.training_data import TrainingData, collect_training_data

__all__ = [
    "TrainingData",
    "class_names",
    "collect_training_data",
    "is_sparse",
    "is_strong",
    "label_autosaver",
    "link_label_layers",
    "linked_image",
    "linked_layers",
    "mark_strong_with_edit",
    "model_store",
    "open_large_image",
    "set_class_names",
    "set_sparse",
    "set_strong",
    "strong_planes",
]
