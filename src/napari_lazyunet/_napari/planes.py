"""Planes of an image layer and their strong / sparse flags.

A 2D or RGB image has one plane (index 0); a stack ``(..., Y, X)`` has one
plane per combination of leading indices, numbered in C order. The strong
flag a refinement sets follows napari's undo and redo of that edit
(:func:`mark_strong_with_edit`).
"""

from __future__ import annotations

import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.layers import Image, Labels

from ._notify import PluginInputError
from .links import (
    link_meta,
    metadata_changed,
)

__all__ = [
    "MAX_FLAGGED_EDITS",
    "check_labels_shape",
    "current_plane",
    "in_channels_of",
    "is_sparse",
    "is_strong",
    "label_shape",
    "mark_strong_with_edit",
    "n_planes",
    "plane_data",
    "plane_index",
    "plane_name",
    "set_sparse",
    "set_strong",
    "strong_planes",
    "sync_strong_flags",
]


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


# ---------------------------------------------------------------------- plane flags
def _flag_planes(image_layer: Image, key: str) -> set[int]:
    return {int(p) for p in link_meta(image_layer).get(key) or []}


def _set_flag(image_layer: Image, key: str, plane: int, value: bool) -> None:
    plane_index(image_layer, plane)  # validates the plane
    planes = _flag_planes(image_layer, key)
    if value:
        planes.add(int(plane))
    else:
        planes.discard(int(plane))
    link_meta(image_layer)[key] = sorted(planes)
    metadata_changed(image_layer)


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
