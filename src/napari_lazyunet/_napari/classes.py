"""Object classes of a linked image and the colours its labels layers show them in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from napari.layers import Image

from napari_lazyunet.core.labels import background_value
from napari_lazyunet.sample.synthetic import CLASS_NAMES

from ._notify import PluginInputError
from .links import (
    LINK_KEY,
    labels_metadata,
    link_meta,
    linked_layers,
    metadata_changed,
)

__all__ = [
    "BACKGROUND_COLOR",
    "DEFAULT_CLASS_COLORS",
    "DEFAULT_CLASS_NAMES",
    "INTERFACE_COLOR",
    "apply_class_colors",
    "class_colors",
    "class_names",
    "colormap_dict",
    "image_metadata",
    "labels_layer_data",
    "labels_opacity",
    "set_class_colors",
    "set_class_names",
]

DEFAULT_CLASS_NAMES: tuple[str, ...] = tuple(CLASS_NAMES)  # the paper's bubbles / crystals


DEFAULT_CLASS_COLORS: tuple[str, ...] = (
    "#33a3ff",
    "#ff8c1a",
    "#4dd94d",
    "#e64dcc",
    "#ffe633",
    "#8c66ff",
    "#33e6e6",
    "#ff4d4d",
)


BACKGROUND_COLOR = "#9a9a9a"


INTERFACE_COLOR = "#ffff00"


def image_metadata(
    link: str,
    class_names_: Sequence[str],
    colors: Sequence[str] | None = None,
    strong: Iterable[int] = (),
    sparse: Iterable[int] = (),
) -> dict[str, Any]:
    """The ``metadata`` dict of a linked image layer (for layer data tuples).

    Parameters
    ----------
    link : str
        Link id shared with the labels layers.
    class_names_ : sequence of str
        Object class names.
    colors : sequence of str, optional
        One colour per class; default :data:`DEFAULT_CLASS_COLORS`.
    strong, sparse : iterable of int
        Flat plane indices flagged strong / sparse.

    Returns
    -------
    dict
        ``{"lazyunet": {...}}``.
    """
    names = [str(n) for n in class_names_]
    return {
        LINK_KEY: {
            "id": link,
            "class_names": names,
            "class_colors": list(colors) if colors else _default_colors(len(names)),
            "strong": sorted({int(p) for p in strong}),
            "sparse": sorted({int(p) for p in sparse}),
        }
    }


def _default_colors(n: int) -> list[str]:
    return [DEFAULT_CLASS_COLORS[k % len(DEFAULT_CLASS_COLORS)] for k in range(n)]


def class_names(image_layer: Image) -> tuple[str, ...]:
    """Class names recorded on the image (default: the paper's two classes)."""
    names = link_meta(image_layer).get("class_names")
    return tuple(str(n) for n in names) if names else DEFAULT_CLASS_NAMES


def class_colors(image_layer: Image) -> tuple[str, ...]:
    """One colour per class (hex strings), completed with defaults when missing."""
    n = len(class_names(image_layer))
    stored = list(link_meta(image_layer).get("class_colors") or [])
    defaults = _default_colors(n)
    return tuple((stored[k] if k < len(stored) else defaults[k]) for k in range(n))


def set_class_names(image_layer: Image, names: Sequence[str]) -> None:
    """Record the class names of an image (label value ``k`` is ``names[k-1]``).

    Raises
    ------
    PluginInputError
        No name, an empty name or a repeated name.
    """
    names = [str(n).strip() for n in names]
    if not names or any(not n for n in names):
        raise PluginInputError("every class needs a non-empty name; type one or remove the class")
    if len(set(names)) != len(names):
        raise PluginInputError(f"class names must differ, got {names}; rename one of them")
    colors = list(class_colors(image_layer))
    colors = (colors + _default_colors(len(names))[len(colors) :])[: len(names)]
    meta = link_meta(image_layer)
    meta["class_names"] = names
    meta["class_colors"] = colors
    metadata_changed(image_layer)


def set_class_colors(image_layer: Image, colors: Sequence[str]) -> None:
    """Record one colour per class (any napari colour string, e.g. ``"#ff8c1a"``)."""
    n = len(class_names(image_layer))
    if len(colors) != n:
        raise PluginInputError(f"{n} classes but {len(colors)} colours; give one colour per class")
    link_meta(image_layer)["class_colors"] = [str(c) for c in colors]
    metadata_changed(image_layer)


def colormap_dict(role: str, colors: Sequence[str]) -> dict[Any, Any]:
    """Label value -> colour for a labels layer of ``role`` (napari ``DirectLabelColormap``)."""
    mapping: dict[Any, Any] = {None: "transparent", 0: "transparent"}
    if role == "separation":
        mapping[1] = INTERFACE_COLOR
        return mapping
    mapping.update(enumerate(colors, start=1))
    if role == "detection":
        mapping[background_value(len(colors))] = BACKGROUND_COLOR
    return mapping


def labels_opacity(role: str) -> float:
    """Opacity of a new labels layer of ``role`` (the segmentation a little more see-through)."""
    return 0.6 if role == "segmentation" else 0.8


def labels_layer_data(
    data: Any, name: str, link: str, role: str, colors: Sequence[str]
) -> tuple[Any, dict[str, Any], str]:
    """A labels layer linked to image ``link``, as a napari layer data tuple (for the hooks)."""
    return (
        data,
        {
            "name": name,
            "metadata": labels_metadata(link, role),
            "colormap": colormap_dict(role, colors),
            "opacity": labels_opacity(role),
        },
        "labels",
    )


def apply_class_colors(viewer: Any, image_layer: Image) -> None:
    """Colour the linked labels layers with the image's class colours."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = class_colors(image_layer)
    for role, layer in linked_layers(viewer, image_layer).items():
        layer.colormap = DirectLabelColormap(color_dict=colormap_dict(role, colors))
