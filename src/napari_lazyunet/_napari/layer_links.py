"""Links between an image layer and its three lazy-label layers, kept in layer metadata.

An image layer is never found by its name: names change when the user
renames a layer or opens two files with the same name. Instead, each image
gets a link id of its own (a random hex string, so that it can be written
before the layer exists, e.g. by the sample-data and reader hooks) and every
labels layer records its role and that id::

    image.metadata["lazyunet"] = {
        "id": "3f2a...",                  # link id
        "class_names": ["bubble", "crystal"],
        "class_colors": ["#33a3ff", "#ff8c1a"],
        "strong": [0, 3],                 # planes marked strong (flat plane index)
        "sparse": [],                     # planes whose detection is sparse
    }
    labels.metadata["lazyunet"] = {"role": "detection", "image": "3f2a..."}

A 2D or RGB image has one plane (index 0); a stack ``(..., Y, X)`` has one
plane per combination of leading indices, numbered in C order.

:func:`collect_training_data` turns the linked layers into the inputs of
:meth:`napari_lazyunet.api.LazyUNet.fit`; it raises :class:`PluginInputError`
with a message that says what to do for every mistake a user can make.
"""

from __future__ import annotations

import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.layers import Image, Labels

from napari_lazyunet.core.labels import ImageLabels, LabelError, background_value, validate_labels
from napari_lazyunet.sample.synthetic import CLASS_NAMES

from ._notify import PluginInputError, notify_error

__all__ = [
    "DEFAULT_CLASS_COLORS",
    "DEFAULT_CLASS_NAMES",
    "LINK_KEY",
    "ROLES",
    "PluginInputError",
    "TrainingData",
    "apply_class_colors",
    "check_labels_shape",
    "class_colors",
    "class_names",
    "collect_training_data",
    "current_plane",
    "image_labels_for_plane",
    "in_channels_of",
    "is_sparse",
    "is_strong",
    "label_shape",
    "labels_layer_data",
    "link_id",
    "link_label_layers",
    "linked_image",
    "linked_image_layers",
    "linked_layers",
    "mark_strong_with_edit",
    "n_planes",
    "notify_error",
    "plane_data",
    "plane_index",
    "plane_name",
    "role_of",
    "set_class_colors",
    "set_class_names",
    "set_sparse",
    "set_strong",
    "strong_planes",
    "sync_strong_flags",
]

LINK_KEY = "lazyunet"
ROLES = ("detection", "separation", "segmentation")
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


# --------------------------------------------------------------------------- metadata
def _changed(image_layer: Image) -> None:
    """Tell listeners (``image_layer.events.metadata``) that links, classes or flags changed."""
    events = getattr(image_layer, "events", None)
    if events is not None and hasattr(events, "metadata"):
        events.metadata()


def _image_meta(image_layer: Image) -> dict[str, Any]:
    meta = image_layer.metadata.get(LINK_KEY)
    if not isinstance(meta, dict):
        meta = {}
        image_layer.metadata[LINK_KEY] = meta
    return meta


def link_id(image_layer: Image) -> str:
    """The link id of an image layer, created on first use.

    Parameters
    ----------
    image_layer : napari.layers.Image
        The image.

    Returns
    -------
    str
        A random hex id stored in ``image_layer.metadata["lazyunet"]["id"]``.
    """
    meta = _image_meta(image_layer)
    if not meta.get("id"):
        meta["id"] = uuid.uuid4().hex
    return str(meta["id"])


def role_of(layer: Any) -> str | None:
    """Role (``"detection"``, ``"separation"``, ``"segmentation"``) of a linked labels layer."""
    meta = getattr(layer, "metadata", {}).get(LINK_KEY)
    if isinstance(meta, dict) and meta.get("role") in ROLES:
        return str(meta["role"])
    return None


def _linked_to(layer: Any) -> str | None:
    meta = getattr(layer, "metadata", {}).get(LINK_KEY)
    if isinstance(meta, dict) and meta.get("role") in ROLES:
        return meta.get("image")
    return None


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


def labels_metadata(link: str, role: str) -> dict[str, Any]:
    """The ``metadata`` dict of a linked labels layer (for layer data tuples)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return {LINK_KEY: {"role": role, "image": link}}


def _default_colors(n: int) -> list[str]:
    return [DEFAULT_CLASS_COLORS[k % len(DEFAULT_CLASS_COLORS)] for k in range(n)]


def class_names(image_layer: Image) -> tuple[str, ...]:
    """Class names recorded on the image (default: the paper's two classes)."""
    names = _image_meta(image_layer).get("class_names")
    return tuple(str(n) for n in names) if names else DEFAULT_CLASS_NAMES


def class_colors(image_layer: Image) -> tuple[str, ...]:
    """One colour per class (hex strings), completed with defaults when missing."""
    n = len(class_names(image_layer))
    stored = list(_image_meta(image_layer).get("class_colors") or [])
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
    meta = _image_meta(image_layer)
    meta["class_names"] = names
    meta["class_colors"] = colors
    _changed(image_layer)


def set_class_colors(image_layer: Image, colors: Sequence[str]) -> None:
    """Record one colour per class (any napari colour string, e.g. ``"#ff8c1a"``)."""
    n = len(class_names(image_layer))
    if len(colors) != n:
        raise PluginInputError(f"{n} classes but {len(colors)} colours; give one colour per class")
    _image_meta(image_layer)["class_colors"] = [str(c) for c in colors]
    _changed(image_layer)


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


# ------------------------------------------------------------------------ geometry
def label_shape(image_layer: Image) -> tuple[int, ...]:
    """Shape a labels layer of this image must have: the data shape without RGB channels."""
    if getattr(image_layer, "multiscale", False):
        raise PluginInputError(
            f"image layer '{image_layer.name}' is multiscale (a pyramid); open its full-resolution "
            "level as a plain image layer to label and train on it"
        )
    shape = tuple(int(s) for s in image_layer.data.shape)
    if image_layer.rgb:
        shape = shape[:-1]
    if len(shape) < 2:
        raise PluginInputError(
            f"image layer '{image_layer.name}' has shape {shape}; a 2D image (Y, X), "
            "an RGB image (Y, X, 3) or a stack (..., Y, X) is needed"
        )
    return shape


def in_channels_of(image_layer: Image) -> int:
    """Channels per pixel: the last axis of an RGB(A) layer, else 1."""
    return int(image_layer.data.shape[-1]) if image_layer.rgb else 1


def n_planes(image_layer: Image) -> int:
    """Number of 2D planes (1 for a 2D or RGB image)."""
    return int(np.prod(label_shape(image_layer)[:-2], dtype=np.int64))


def plane_index(image_layer: Image, plane: int) -> tuple[int, ...]:
    """Leading indices of flat plane ``plane`` (``()`` for a 2D image)."""
    lead = label_shape(image_layer)[:-2]
    if not 0 <= plane < max(int(np.prod(lead, dtype=np.int64)), 1):
        raise PluginInputError(f"plane {plane} is outside '{image_layer.name}'")
    return tuple(int(i) for i in np.unravel_index(plane, lead)) if lead else ()


def plane_name(image_layer: Image, plane: int) -> str:
    """How messages call a plane: the layer name, plus its leading indices on stacks."""
    index = plane_index(image_layer, plane)
    if not index:
        return image_layer.name
    shown = index[0] if len(index) == 1 else index
    return f"{image_layer.name} [plane {shown}]"


def current_plane(viewer: Any, image_layer: Image) -> int:
    """Flat index of the plane of ``image_layer`` shown in the viewer now."""
    lead = label_shape(image_layer)[:-2]
    if not lead:
        return 0
    coords = np.asarray(image_layer.world_to_data(viewer.dims.point))[: len(lead)]
    index = tuple(int(np.clip(np.round(c), 0, s - 1)) for c, s in zip(coords, lead, strict=True))
    return int(np.ravel_multi_index(index, lead))


def plane_data(layer: Any, index: tuple[int, ...]) -> np.ndarray:
    """The 2D (or ``(Y, X, C)``) numpy array of one plane of a layer."""
    return np.asarray(layer.data[index] if index else layer.data)


# --------------------------------------------------------------------------- linking
def linked_layers(viewer: Any, image_layer: Image) -> dict[str, Labels]:
    """The labels layers linked to an image, by role (only those that exist).

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    image_layer : napari.layers.Image
        The image.

    Returns
    -------
    dict
        ``{"detection": Labels, ...}``; empty when nothing is linked yet.
    """
    meta = image_layer.metadata.get(LINK_KEY)
    link = meta.get("id") if isinstance(meta, dict) else None
    if not link:
        return {}
    found: dict[str, Labels] = {}
    for layer in viewer.layers:
        if isinstance(layer, Labels) and _linked_to(layer) == link:
            found.setdefault(role_of(layer), layer)
    return found


def linked_image(viewer: Any, labels_layer: Any) -> Image | None:
    """The image layer a labels layer is linked to, or ``None``."""
    link = _linked_to(labels_layer)
    if link is None:
        return None
    for layer in viewer.layers:
        if isinstance(layer, Image):
            meta = layer.metadata.get(LINK_KEY)
            if isinstance(meta, dict) and meta.get("id") == link:
                return layer
    return None


def linked_image_layers(viewer: Any) -> list[Image]:
    """Image layers that have at least one linked labels layer, in layer order."""
    images = [layer for layer in viewer.layers if isinstance(layer, Image)]
    return [layer for layer in images if linked_layers(viewer, layer)]


def check_labels_shape(labels_layer: Labels, image_layer: Image) -> None:
    """Raise :class:`PluginInputError` unless the labels layer matches the image pixel for pixel."""
    expected = label_shape(image_layer)
    shape = tuple(int(s) for s in labels_layer.data.shape)
    if shape != expected:
        raise PluginInputError(
            f"labels layer '{labels_layer.name}' has shape {shape} but image "
            f"'{image_layer.name}' needs {expected}; remove that labels layer (a new one "
            "is created) or pick the image it was painted on"
        )


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
    elif not _image_meta(image_layer).get("class_names"):
        set_class_names(image_layer, DEFAULT_CLASS_NAMES)
    meta = _image_meta(image_layer)
    meta.setdefault("strong", [])
    meta.setdefault("sparse", [])

    layers = linked_layers(viewer, image_layer)
    for role, layer in (adopt or {}).items():
        if role not in ROLES:
            raise PluginInputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        other = _linked_to(layer)
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


# ---------------------------------------------------------------------- plane flags
def _flag_planes(image_layer: Image, key: str) -> set[int]:
    return {int(p) for p in _image_meta(image_layer).get(key) or []}


def _set_flag(image_layer: Image, key: str, plane: int, value: bool) -> None:
    plane_index(image_layer, plane)  # validates the plane
    planes = _flag_planes(image_layer, key)
    if value:
        planes.add(int(plane))
    else:
        planes.discard(int(plane))
    _image_meta(image_layer)[key] = sorted(planes)
    _changed(image_layer)


def is_strong(image_layer: Image, plane: int = 0) -> bool:
    """Whether the segmentation of ``plane`` is marked exact (strong)."""
    return int(plane) in _flag_planes(image_layer, "strong")


def set_strong(image_layer: Image, plane: int = 0, value: bool = True) -> None:
    """Mark (or unmark) the segmentation of ``plane`` as exact."""
    _set_flag(image_layer, "strong", plane, value)


def is_sparse(image_layer: Image, plane: int = 0) -> bool:
    """Whether unpainted detection pixels of ``plane`` are unknown (sparse), not background."""
    return int(plane) in _flag_planes(image_layer, "sparse")


def set_sparse(image_layer: Image, plane: int = 0, value: bool = True) -> None:
    """Mark ``plane`` as sparse (``True``) or complete (``False``, the default)."""
    _set_flag(image_layer, "sparse", plane, value)


def strong_planes(image_layer: Image) -> list[int]:
    """Flat indices of the planes marked strong."""
    return sorted(p for p in _flag_planes(image_layer, "strong") if p < n_planes(image_layer))


# ------------------------------------------------------ strong flags follow undo
#: Edits remembered per segmentation layer; older ones no longer move the flag on undo.
MAX_FLAGGED_EDITS = 32


@dataclass
class _FlaggedEdit:
    """Pixels an edit wrote into a segmentation plane (0 before) as it marked the plane strong."""

    image: weakref.ref
    plane: int
    index: tuple[int, ...]
    pixels: tuple[np.ndarray, ...]
    values: np.ndarray
    undone: bool = False


class _FlagFollower:
    """Keeps the strong flags set by edits of one segmentation layer in step with its undo / redo.

    napari's undo and redo restore the layer's data but know nothing of the
    image's metadata. After an undo the pixels the edit wrote are 0 again:
    the flag it set is cleared. After a redo they hold the written values
    again: the flag is set again (only if this follower cleared it, so a
    flag the user changed by hand in between is left alone).
    """

    def __init__(self, layer: Labels):
        self.layer = weakref.ref(layer)
        self.edits: deque[_FlaggedEdit] = deque(maxlen=MAX_FLAGGED_EDITS)

    def sync(self, event: Any = None) -> None:
        layer = self.layer()
        if layer is None:
            return
        for edit in self.edits:
            image = edit.image()
            if image is None:
                continue
            try:
                written = plane_data(layer, edit.index)[edit.pixels]
                strong = is_strong(image, edit.plane)
                if not edit.undone and strong and not written.any():
                    edit.undone = True
                    set_strong(image, edit.plane, False)
                elif edit.undone and not strong and np.array_equal(written, edit.values):
                    edit.undone = False
                    set_strong(image, edit.plane, True)
            except (IndexError, ValueError, PluginInputError):
                continue  # the layer or the image changed shape: the edit is gone


_followers: weakref.WeakKeyDictionary[Labels, _FlagFollower] = weakref.WeakKeyDictionary()


def mark_strong_with_edit(
    image_layer: Image,
    segmentation_layer: Labels,
    plane: int,
    pixels: tuple[np.ndarray, ...],
    values: np.ndarray,
) -> None:
    """Mark ``plane`` strong as part of an edit the segmentation layer can undo.

    Call it right after writing ``values`` at ``pixels`` of the plane (pixels
    that were 0, as one undo step of ``segmentation_layer``). When the flag
    was not set before, undoing that step (``segmentation_layer.undo()``,
    ``Ctrl+Z``) clears it again and redoing sets it again. The layer's
    ``set_data`` event, which undo and redo emit on a visible layer,
    triggers the check; :func:`collect_training_data` repeats it, for an
    undo made while the layer was hidden.

    Parameters
    ----------
    image_layer : napari.layers.Image
        The image whose flag is set.
    segmentation_layer : napari.layers.Labels
        Its segmentation layer, just written.
    plane : int
        Flat plane index.
    pixels : tuple of ndarray
        ``(ys, xs)`` written within the plane.
    values : ndarray
        The values written there.
    """
    if is_strong(image_layer, plane):
        return  # not this edit's flag: undoing the edit leaves it
    set_strong(image_layer, plane, True)
    if not np.size(pixels[0]):
        return  # nothing written: no undo step to follow
    follower = _followers.get(segmentation_layer)
    if follower is None:
        follower = _followers[segmentation_layer] = _FlagFollower(segmentation_layer)
        segmentation_layer.events.set_data.connect(follower.sync)
    follower.edits.append(
        _FlaggedEdit(
            weakref.ref(image_layer),
            int(plane),
            plane_index(image_layer, plane),
            tuple(np.asarray(p) for p in pixels),
            np.array(values, copy=True),
        )
    )


def sync_strong_flags(segmentation_layer: Labels) -> None:
    """Clear (or set again) the strong flags of edits undone (or redone) on this layer."""
    follower = _followers.get(segmentation_layer)
    if follower is not None:
        follower.sync()


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
