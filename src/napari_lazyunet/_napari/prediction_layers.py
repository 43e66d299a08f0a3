"""Show a :class:`~napari_lazyunet.core.predict.Prediction` as napari layers.

Output layers are found again by metadata, not by name, so a second run
updates the layers of the first even when the user renamed them::

    labels.metadata["lazyunet"] = {"prediction": "instances", "image": "<link id>"}
    image.metadata["lazyunet"] = {"probability": "segmentation", "image": "<link id>"}

``"<link id>"`` is the input image's link id (see ``links.py``). The
keys differ from the ``"role"`` key of lazy-label layers, so a predicted
detection is never mistaken for painted labels. Output layers take the
scale and translation of the input image.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from napari.layers import Image, Labels

from napari_lazyunet.core.labels import OUTPUTS, TASKS
from napari_lazyunet.core.predict import Prediction

from .links import LINK_KEY, link_id

__all__ = [
    "OUTPUT_ROLES",
    "PROBABILITY_TASKS",
    "find_output_layer",
    "is_output_layer",
    "iter_show_prediction",
    "output_name",
    "show_prediction",
]

#: Labels layers added per input image, in this order.
OUTPUT_ROLES = OUTPUTS
#: Tasks whose foreground probability can be shown as an Image layer.
PROBABILITY_TASKS = TASKS


def is_output_layer(layer: Any) -> bool:
    """True for layers written by :func:`show_prediction`."""
    meta = getattr(layer, "metadata", {}).get(LINK_KEY)
    return isinstance(meta, dict) and ("prediction" in meta or "probability" in meta)


def output_name(image_layer: Image, role: str, probability: bool = False) -> str:
    """Name of a new output layer, e.g. ``"foam 0 instances"``."""
    if probability:
        return f"{image_layer.name} {role} probability"
    if role == "instances":
        return f"{image_layer.name} instances"
    return f"{image_layer.name} predicted {role}"


def find_output_layer(
    viewer: Any, image_layer: Image, role: str, probability: bool = False
) -> Labels | Image | None:
    """The output layer of ``role`` for ``image_layer`` already in the viewer, or None.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    image_layer : napari.layers.Image
        The input image.
    role : str
        One of :data:`OUTPUT_ROLES` (or :data:`PROBABILITY_TASKS` with ``probability``).
    probability : bool
        Look for a probability Image layer instead of a Labels layer.

    Returns
    -------
    Labels or Image or None
    """
    meta = image_layer.metadata.get(LINK_KEY)
    link = meta.get("id") if isinstance(meta, dict) else None
    if not link:
        return None
    key, kind = ("probability", Image) if probability else ("prediction", Labels)
    for layer in viewer.layers:
        layer_meta = layer.metadata.get(LINK_KEY)
        if (
            isinstance(layer, kind)
            and isinstance(layer_meta, dict)
            and layer_meta.get(key) == role
            and layer_meta.get("image") == link
        ):
            return layer
    return None


def _foreground(probabilities: np.ndarray, task: str) -> np.ndarray:
    """``(..., K, Y, X)`` softmax -> ``(..., Y, X)`` probability of "object" / "interface"."""
    if task == "separation":
        return probabilities[..., 1, :, :]
    return 1.0 - probabilities[..., 0, :, :]


def _geometry(image_layer: Image, ndim: int) -> dict[str, Any]:
    scale = np.asarray(image_layer.scale, dtype=float)
    translate = np.asarray(image_layer.translate, dtype=float)
    # Multichannel (non-RGB) inputs keep the channel axis in the layer; outputs drop it.
    return {"scale": tuple(scale[:ndim]), "translate": tuple(translate[:ndim])}


def show_prediction(
    viewer: Any,
    image_layer: Image,
    prediction: Prediction,
    *,
    probabilities: bool = False,
) -> dict[str, Labels | Image]:
    """Add or update the output layers of one input image.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    image_layer : napari.layers.Image
        The image that was predicted (its scale and translation are copied).
    prediction : Prediction
        What :meth:`napari_lazyunet.api.LazyUNet.predict` returned for it.
    probabilities : bool
        Also show the foreground probability of each task as an Image layer.

    Returns
    -------
    dict
        ``{"detection": Labels, "segmentation": ..., "separation": ...,
        "instances": ..., "segmentation probability": Image, ...}`` (roles the
        model does not predict, e.g. separation of a single-task model, are absent).
    """
    return dict(iter_show_prediction(viewer, image_layer, prediction, probabilities=probabilities))


def iter_show_prediction(
    viewer: Any,
    image_layer: Image,
    prediction: Prediction,
    *,
    probabilities: bool = False,
) -> Iterator[tuple[str, Labels | Image]]:
    """:func:`show_prediction` one layer at a time: yields ``(name, layer)`` after each.

    Adding a layer to a viewer costs a tenth of a second or more (its
    visual is built on the GUI thread); a widget that resumes this generator
    on the next turns of the event loop never blocks the viewer for all
    layers at once.
    """
    link = link_id(image_layer)
    ndim = prediction.instances.ndim
    geometry = _geometry(image_layer, ndim)
    for role in OUTPUT_ROLES:
        data = getattr(prediction, role)
        if data is None:
            continue
        layer = find_output_layer(viewer, image_layer, role)
        if layer is None:
            layer = viewer.add_labels(
                data,
                name=output_name(image_layer, role),
                metadata={LINK_KEY: {"prediction": role, "image": link}},
                opacity=0.5 if role != "instances" else 0.7,
                visible=role in ("instances",),
                **geometry,
            )
        else:
            layer.data = data
            layer.scale = geometry["scale"]
            layer.translate = geometry["translate"]
        yield role, layer
    if not probabilities:
        return
    for task in PROBABILITY_TASKS:
        probs = prediction.probabilities.get(task)
        if probs is None:
            continue
        data = _foreground(probs, task).astype(np.float32)
        layer = find_output_layer(viewer, image_layer, task, probability=True)
        if layer is None:
            layer = viewer.add_image(
                data,
                name=output_name(image_layer, task, probability=True),
                metadata={LINK_KEY: {"probability": task, "image": link}},
                colormap="magma",
                contrast_limits=(0.0, 1.0),
                blending="additive",
                visible=False,
                **geometry,
            )
        else:
            layer.data = data
            layer.scale = geometry["scale"]
            layer.translate = geometry["translate"]
        yield f"{task} probability", layer
