"""From the linked layers of a viewer to the inputs of :meth:`napari_lazyunet.api.LazyUNet.fit`.

:func:`collect_training_data` raises :class:`PluginInputError` with a message
that says what to do for every mistake a user can make.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.layers import Image, Labels

from napari_lazyunet.core.labels import ImageLabels, LabelError, validate_labels

from ._notify import PluginInputError
from .classes import (
    DEFAULT_CLASS_NAMES,
    class_names,
)
from .links import (
    ROLES,
    linked_image_layers,
    linked_layers,
)
from .planes import (
    check_labels_shape,
    in_channels_of,
    is_sparse,
    is_strong,
    n_planes,
    plane_data,
    plane_index,
    plane_name,
    sync_strong_flags,
)

__all__ = ["TrainingData", "collect_training_data", "image_labels_for_plane"]


# ------------------------------------------------------------------- training data
def image_labels_for_plane(
    image_layer: Image, layers: Mapping[str, Labels], plane: int
) -> ImageLabels:
    """The lazy labels of one plane, as the engine expects them.

    Detection and separation count only when something is painted on the
    plane (an unpainted plane carries no label for that task, it is not
    background); segmentation counts only when the plane is marked strong.

    Parameters
    ----------
    image_layer : napari.layers.Image
        The image.
    layers : mapping of role to Labels
        Its linked layers (see :func:`linked_layers`).
    plane : int
        Flat plane index.

    Returns
    -------
    ImageLabels
    """
    index = plane_index(image_layer, plane)
    arrays: dict[str, np.ndarray | None] = {}
    for role in ROLES:
        layer = layers.get(role)
        array = None if layer is None else plane_data(layer, index)
        if role != "segmentation" and array is not None and not array.any():
            array = None
        arrays[role] = array
    strong = is_strong(image_layer, plane) and arrays["segmentation"] is not None
    return ImageLabels(
        detection=arrays["detection"],
        separation=arrays["separation"],
        segmentation=arrays["segmentation"] if strong else None,
        strong=strong,
        detection_complete=not is_sparse(image_layer, plane),
    )


@dataclass
class TrainingData:
    """Engine inputs gathered from the viewer's linked layers.

    Attributes
    ----------
    images : list of ndarray
        One ``(Y, X)`` or ``(Y, X, C)`` array per labelled plane.
    labels : list of ImageLabels
        Their lazy labels.
    names : list of str
        Layer (and plane) names, for messages.
    class_names : tuple of str
        Object classes shared by all images.
    in_channels : int
        Channels per pixel (1 gray, 3 RGB).
    sources : list of (Image, int)
        The image layer and flat plane index of each entry.
    """

    images: list[np.ndarray]
    labels: list[ImageLabels]
    names: list[str]
    class_names: tuple[str, ...]
    in_channels: int
    sources: list[tuple[Image, int]] = field(default_factory=list)

    @property
    def n_strong(self) -> int:
        """Number of planes with an exact (strong) segmentation."""
        return sum(lab.has_segmentation for lab in self.labels)

    def fit_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`napari_lazyunet.api.LazyUNet.fit` / ``iter_fit``."""
        return {"images": self.images, "labels": self.labels, "names": self.names}


def _iter_planes(image_layer: Image) -> Iterator[int]:
    yield from range(n_planes(image_layer))


def _check_strong_mask(image_layer: Image, layers: Mapping[str, Labels], plane: int) -> None:
    """Refuse a plane marked strong whose segmentation is empty (it would teach "no object")."""
    if not is_strong(image_layer, plane):
        return
    index = plane_index(image_layer, plane)
    shown = index[0] if len(index) == 1 else index
    where = f"image '{image_layer.name}'" + (f", plane {shown}," if index else "")
    layer = layers.get("segmentation")
    if layer is None:
        raise PluginInputError(
            f"{where} is marked strong but has no segmentation layer; create it in the "
            "Lazy labels widget and paint the mask, or unmark the plane strong"
        )
    if not plane_data(layer, index).any():
        raise PluginInputError(
            f"{where} is marked strong but its segmentation mask is empty; paint the mask "
            "(or refine it in the Refine widget) or unmark the plane strong in the "
            "Lazy labels widget"
        )


def collect_training_data(
    viewer: Any,
    image_layers: Sequence[Image] | None = None,
    *,
    require_strong: bool = True,
) -> TrainingData:
    """Turn the linked layers of the viewer into training inputs for the engine.

    Every plane that carries a label (an inner region, an interface
    scribble, or a strong segmentation) becomes one training image; planes
    with nothing painted are left out.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    image_layers : sequence of Image, optional
        Images to train on; default: every image layer with linked labels.
    require_strong : bool
        Raise when no plane is marked strong (the segmentation task would
        learn from weak labels only). With ``False`` the caller may warn instead.

    Returns
    -------
    TrainingData

    Raises
    ------
    PluginInputError
        No image layer, no linked labels, labels of another shape, images
        with different class names or channels, nothing painted, a plane
        marked strong with an empty segmentation, no strong image (with
        ``require_strong``), or labels the engine rejects (the
        message of :class:`~napari_lazyunet.core.labels.LabelError`).
    """
    if image_layers is None:
        all_images = [layer for layer in viewer.layers if isinstance(layer, Image)]
        if not all_images:
            raise PluginInputError(
                "no image layer: open an image (File > Open) or the demo "
                "(File > Open Sample > Lazy-label foam sample) first"
            )
        image_layers = linked_image_layers(viewer)
        if not image_layers:
            raise PluginInputError(
                "no image has lazy labels yet: pick an image in the Lazy labels widget "
                "to create its detection, separation and segmentation layers, then paint"
            )
    image_layers = list(image_layers)
    if not image_layers:
        raise PluginInputError("no image layer given; pick at least one image to train on")

    images: list[np.ndarray] = []
    labels: list[ImageLabels] = []
    names: list[str] = []
    sources: list[tuple[Image, int]] = []
    names_seen: tuple[str, ...] | None = None
    channels_seen: int | None = None
    for image_layer in image_layers:
        if not isinstance(image_layer, Image):
            raise PluginInputError(
                f"layer '{getattr(image_layer, 'name', image_layer)}' is not an image layer; "
                "pick the image the labels were painted on"
            )
        layers = linked_layers(viewer, image_layer)
        if not layers:
            raise PluginInputError(
                f"image '{image_layer.name}' has no lazy labels layers; pick it in the "
                "Lazy labels widget to create them"
            )
        for layer in layers.values():
            check_labels_shape(layer, image_layer)
        if "segmentation" in layers:
            sync_strong_flags(layers["segmentation"])
        names_here = class_names(image_layer)
        channels = in_channels_of(image_layer)
        if names_seen is not None and names_here != names_seen:
            raise PluginInputError(
                f"image '{image_layer.name}' uses classes {list(names_here)} but another image "
                f"uses {list(names_seen)}; give all images the same class names"
            )
        if channels_seen is not None and channels != channels_seen:
            raise PluginInputError(
                f"image '{image_layer.name}' has {channels} channel(s) but another image has "
                f"{channels_seen}; train on images of one kind (all gray or all RGB)"
            )
        names_seen, channels_seen = names_here, channels
        for plane in _iter_planes(image_layer):
            _check_strong_mask(image_layer, layers, plane)
            lab = image_labels_for_plane(image_layer, layers, plane)
            if not (lab.has_detection or lab.has_separation or lab.has_segmentation):
                continue
            index = plane_index(image_layer, plane)
            image = plane_data(image_layer, index)
            name = plane_name(image_layer, plane)
            try:
                validate_labels(image, lab, len(names_here), channels, name)
            except LabelError as error:
                raise PluginInputError(str(error)) from error
            images.append(image)
            labels.append(lab)
            names.append(name)
            sources.append((image_layer, plane))
    if not images:
        raise PluginInputError(
            "nothing is painted yet: paint inner regions in the detection layer "
            "(or interface scribbles in the separation layer) of at least one image"
        )
    data = TrainingData(
        images, labels, names, names_seen or DEFAULT_CLASS_NAMES, channels_seen or 1, sources
    )
    if require_strong and data.n_strong == 0:
        raise PluginInputError(
            "no strong image: refine at least one image with GrabCut in the Refine widget "
            "and mark it strong, so the segmentation task learns exact boundaries"
        )
    return data
