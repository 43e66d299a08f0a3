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

Classes and colours live in :mod:`.classes`, planes and their flags in
:mod:`.planes`, the making of the labels layers in :mod:`.labels_layers`.
"""

from __future__ import annotations

import uuid
from typing import Any

from napari.layers import Image, Labels

from napari_lazyunet.core.labels import TASKS

__all__ = [
    "LINK_KEY",
    "ROLES",
    "labels_metadata",
    "link_id",
    "link_meta",
    "linked_image",
    "linked_image_layers",
    "linked_layers",
    "linked_to",
    "metadata_changed",
    "role_of",
]

LINK_KEY = "lazyunet"


ROLES = TASKS  # one linked labels layer per task


# --------------------------------------------------------------------------- metadata
def metadata_changed(image_layer: Image) -> None:
    """Tell listeners (``image_layer.events.metadata``) that links, classes or flags changed."""
    events = getattr(image_layer, "events", None)
    if events is not None and hasattr(events, "metadata"):
        events.metadata()


def link_meta(image_layer: Image) -> dict[str, Any]:
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
    meta = link_meta(image_layer)
    if not meta.get("id"):
        meta["id"] = uuid.uuid4().hex
    return str(meta["id"])


def role_of(layer: Any) -> str | None:
    """Role (``"detection"``, ``"separation"``, ``"segmentation"``) of a linked labels layer."""
    meta = getattr(layer, "metadata", {}).get(LINK_KEY)
    if isinstance(meta, dict) and meta.get("role") in ROLES:
        return str(meta["role"])
    return None


def linked_to(layer: Any) -> str | None:
    meta = getattr(layer, "metadata", {}).get(LINK_KEY)
    if isinstance(meta, dict) and meta.get("role") in ROLES:
        return meta.get("image")
    return None


def labels_metadata(link: str, role: str) -> dict[str, Any]:
    """The ``metadata`` dict of a linked labels layer (for layer data tuples)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return {LINK_KEY: {"role": role, "image": link}}


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
        if isinstance(layer, Labels) and linked_to(layer) == link:
            found.setdefault(role_of(layer), layer)
    return found


def linked_image(viewer: Any, labels_layer: Any) -> Image | None:
    """The image layer a labels layer is linked to, or ``None``."""
    link = linked_to(labels_layer)
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
