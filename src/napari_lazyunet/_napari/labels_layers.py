"""Create the detection, separation and segmentation labels layers of an image, or adopt
existing ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from napari.layers import Image, Labels

from ._notify import PluginInputError
from .classes import (
    DEFAULT_CLASS_NAMES,
    class_colors,
    colormap_dict,
    labels_opacity,
    set_class_names,
)
from .links import (
    LINK_KEY,
    ROLES,
    labels_metadata,
    link_id,
    link_meta,
    linked_layers,
    linked_to,
)
from .planes import (
    check_labels_shape,
    label_shape,
)

__all__ = ["link_label_layers"]


def link_label_layers(
    viewer: Any,
    image_layer: Image,
    class_names_: Sequence[str] | None = None,
    *,
    adopt: Mapping[str, Labels] | None = None,
) -> dict[str, Labels]:
    """Create or adopt the detection, separation and segmentation layers of an image.

    Layers already linked to the image are kept; layers given in ``adopt``
    are linked to it (their data is kept); missing roles get a new empty
    ``uint8`` labels layer with the image's scale and translation, added to
    the viewer above the image.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    image_layer : napari.layers.Image
        2D, RGB or stack image.
    class_names_ : sequence of str, optional
        Class names to record on the image; default: those already recorded,
        else :data:`DEFAULT_CLASS_NAMES`.
    adopt : mapping of role to Labels, optional
        Existing labels layers to link instead of creating new ones.

    Returns
    -------
    dict
        ``{"detection": Labels, "separation": Labels, "segmentation": Labels}``.

    Raises
    ------
    PluginInputError
        The image is not usable, an adopted layer has another shape or is
        linked to another image, or a role is unknown.
    """
    if not isinstance(image_layer, Image):
        raise PluginInputError(
            "pick an image layer (open an image, or File > Open Sample > Lazy-label foam sample)"
        )
    shape = label_shape(image_layer)
    link = link_id(image_layer)
    if class_names_ is not None:
        set_class_names(image_layer, class_names_)
    elif not link_meta(image_layer).get("class_names"):
        set_class_names(image_layer, DEFAULT_CLASS_NAMES)
    meta = link_meta(image_layer)
    meta.setdefault("strong", [])
    meta.setdefault("sparse", [])

    layers = linked_layers(viewer, image_layer)
    for role, layer in (adopt or {}).items():
        if role not in ROLES:
            raise PluginInputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        other = linked_to(layer)
        if other not in (None, link):
            raise PluginInputError(
                f"labels layer '{layer.name}' already belongs to another image; "
                "duplicate it (Layers > Duplicate) to reuse its labels"
            )
        check_labels_shape(layer, image_layer)
        layer.metadata[LINK_KEY] = {"role": role, "image": link}
        layers[role] = layer
    for layer in layers.values():
        check_labels_shape(layer, image_layer)

    colors = class_colors(image_layer)
    from napari.utils.colormaps import DirectLabelColormap

    for role in ROLES:
        if role in layers:
            continue
        layer = Labels(
            np.zeros(shape, dtype=np.uint8),
            name=f"{image_layer.name} {role}",
            scale=image_layer.scale,
            translate=image_layer.translate,
            metadata=labels_metadata(link, role),
            opacity=labels_opacity(role),
            colormap=DirectLabelColormap(color_dict=colormap_dict(role, colors)),
        )
        viewer.add_layer(layer)
        layers[role] = layer
    return {role: layers[role] for role in ROLES}
