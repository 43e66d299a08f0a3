"""Autosave of the lazy labels painted in a viewer, and their return when an image is reopened.

Every dock widget of the plugin starts the :class:`LabelAutosaver` of its
viewer (:func:`label_autosaver`). It writes the detection, separation and
segmentation planes of every linked image, with the strong and sparse
flags:

- every :attr:`LabelAutosaver.interval_ms` (30 s), only the planes changed
  since the last save (compared by digest, so painting, undo, GrabCut and
  scripts that assign ``layer.data`` are all seen);
- when a linked layer is removed, which includes closing the viewer
  (napari removes every layer first).

An image opened from a project folder is saved into that folder (the
project stays the one place its labels live); any other image goes to its
recovery project (:mod:`napari_lazyunet.core.recovery`), named after the
image's pixels. When an image without labels layers is added to the viewer
and a recovery project of the same pixels exists, its labels layers are
created from it and a notification says where they came from.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QTimer

from napari_lazyunet.core.files import ProjectError
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.recovery import (
    autosave_labels,
    find_recovered_labels,
    image_digest,
    labels_recovery_folder,
)

from ._notify import PluginInputError, notify_error, notify_info, notify_warning
from .classes import class_names
from .io_hooks import is_project_folder, label_stack, plane_file_names, saved_plane
from .labels_layers import link_label_layers
from .links import LINK_KEY, ROLES, linked_image, linked_layers
from .planes import (
    is_sparse,
    is_strong,
    label_shape,
    n_planes,
    plane_data,
    plane_index,
    set_sparse,
    set_strong,
)

__all__ = ["AUTOSAVE_INTERVAL_MS", "LabelAutosaver", "label_autosaver"]

AUTOSAVE_INTERVAL_MS = 30_000


def _plane_labels(image: Image, layers: dict[str, Labels], plane: int) -> tuple[ImageLabels, bytes]:
    """The labels of one plane as they would be saved, and a digest of that state."""
    index = plane_index(image, plane)
    digest = hashlib.blake2b(digest_size=16)
    arrays: dict[str, np.ndarray | None] = {}
    for role in ROLES:
        layer = layers.get(role)
        array = None if layer is None else plane_data(layer, index)
        array = saved_plane(array, role, is_strong(image, plane))  # as saving a project does
        if array is not None:
            digest.update(role.encode())
            digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        arrays[role] = array
    # A segmentation layer removed from the viewer keeps its file (see ``keep``),
    # and so its strong flag.
    strong = is_strong(image, plane) and (
        arrays["segmentation"] is not None or "segmentation" not in layers
    )
    sparse = is_sparse(image, plane)
    digest.update(repr((strong, sparse, class_names(image))).encode())
    labels = ImageLabels(
        detection=arrays["detection"],
        separation=arrays["separation"],
        segmentation=arrays["segmentation"],
        strong=strong,
        detection_complete=not sparse,
    )
    return labels, digest.digest()


class LabelAutosaver:
    """Saves the lazy labels of one viewer's images and restores them on reopen.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer (held by weak reference: the autosaver never keeps a
        closed viewer alive).

    Attributes
    ----------
    timer : QTimer
        The autosave timer (started on creation, every
        :data:`AUTOSAVE_INTERVAL_MS`; see :attr:`interval_ms`).
    """

    def __init__(self, viewer: Any) -> None:
        self._viewer = weakref.ref(viewer)
        self._saved: dict[tuple[str, int], bytes] = {}  # (link, plane) -> digest saved
        self._folders: dict[str, Path] = {}  # link -> folder its labels go to
        self._announced: set[Path] = set()  # folders a notification has named
        self._removing: set[str] = set()  # links whose layers are being removed now
        self._image_digests: weakref.WeakKeyDictionary[Image, str] = weakref.WeakKeyDictionary()
        self._reported: set[str] = set()  # failures already shown (once each, not every tick)
        self.timer = QTimer()
        self.timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        viewer.layers.events.removing.connect(self._on_removing)
        viewer.layers.events.inserted.connect(self._on_inserted)

    @property
    def interval_ms(self) -> int:
        """Time between autosaves, in milliseconds (settable)."""
        return self.timer.interval()

    @interval_ms.setter
    def interval_ms(self, value: int) -> None:
        self.timer.setInterval(int(value))

    # ------------------------------------------------------------------ saving
    def autosave(self) -> list[Path]:
        """Save the changed planes of every linked image now.

        Returns
        -------
        list of Path
            The folders written to.
        """
        viewer = self._viewer()
        if viewer is None:
            self.timer.stop()
            return []
        written = []
        for layer in list(viewer.layers):
            if isinstance(layer, Image):
                folder = self._save_reporting(layer)
                if folder is not None:
                    written.append(folder)
        return written

    def _save_reporting(self, image: Image) -> Path | None:
        """:meth:`save_image`, with failures shown as a notification (never raised:
        this runs from timers and layer events)."""
        try:
            return self.save_image(image)
        except Exception as error:  # an autosave must never break the viewer (logged below)
            text = f"labels of '{image.name}' could not be autosaved: {error}"
            if text not in self._reported:  # once, not at every tick of the timer
                self._reported.add(text)
                logging.getLogger("napari_lazyunet").warning(text, exc_info=error)
                notify_error(text)
            return None

    def save_image(self, image: Image) -> Path | None:
        """Save the planes of one image whose labels changed since the last save.

        Parameters
        ----------
        image : napari.layers.Image
            A linked image.

        Returns
        -------
        Path or None
            The folder written to, or ``None`` when nothing had changed (or
            the image has no labels layers).
        """
        viewer = self._viewer()
        if viewer is None:
            return None
        layers = linked_layers(viewer, image)
        if not layers:
            return None
        link = str(image.metadata[LINK_KEY]["id"])
        names = plane_file_names(
            image.metadata[LINK_KEY], image.name, n_planes(image), len(label_shape(image)) > 2
        )
        planes = [(plane, *_plane_labels(image, layers, plane)) for plane in range(n_planes(image))]
        if all(self._saved.get((link, plane)) == digest for plane, _, digest in planes):
            return None
        keep = [role for role in ROLES if role not in layers]
        folder = self._folder_for(image, link)
        try:
            written = self._write(image, folder, names, planes, link, keep)
        except (ProjectError, OSError) as error:
            own = self._recovery_folder(image)
            if folder == own:
                raise
            notify_warning(
                f"labels of '{image.name}' could not be autosaved to {folder} ({error}); "
                f"they are kept in {own} instead"
            )
            folder = self._folders[link] = own
            written = self._write(image, folder, names, planes, link, keep)
        for plane, _, digest in written:
            self._saved[(link, plane)] = digest
        return folder

    def _write(
        self,
        image: Image,
        folder: Path,
        names: list[str],
        planes: list[tuple[int, ImageLabels, bytes]],
        link: str,
        keep: list[str],
    ) -> list[tuple[int, ImageLabels, bytes]]:
        """Write the planes changed since the last save into ``folder`` (all of them into a
        new folder, which holds every plane's image and labels); return those written."""
        new = not is_project_folder(folder)
        changed = [
            (plane, labels, digest)
            for plane, labels, digest in planes
            if new or self._saved.get((link, plane)) != digest
        ]
        autosave_labels(
            folder,
            [names[plane] for plane, _, _ in changed],
            [labels for _, labels, _ in changed],
            class_names=class_names(image),
            images=[plane_data(image, plane_index(image, p)) for p, _, _ in changed]
            if new
            else None,
            keep=keep,
        )
        if folder not in self._announced:
            self._announced.add(folder)
            what = "a project folder: open it to get them back" if new else "its project folder"
            notify_info(
                f"labels of '{image.name}' are autosaved every {self.interval_ms // 1000} s "
                f"and on close to {folder} ({what})"
            )
        return changed

    def _folder_for(self, image: Image, link: str) -> Path:
        folder = self._folders.get(link)
        if folder is None:
            project = image.metadata[LINK_KEY].get("project")
            if project and is_project_folder(project):
                folder = Path(project)
            else:
                folder = self._recovery_folder(image)
            self._folders[link] = folder
        return folder

    def _recovery_folder(self, image: Image) -> Path:
        return labels_recovery_folder(image.name, self.digest_of(image))

    def digest_of(self, image: Image) -> str:
        """:func:`~napari_lazyunet.core.recovery.image_digest` of an image layer (cached)."""
        digest = self._image_digests.get(image)
        if digest is None:
            digest = self._image_digests[image] = image_digest(image.data)
        return digest

    def _on_removing(self, event: Any) -> None:
        viewer = self._viewer()
        if viewer is None:
            return
        layer = event.source[event.index]
        image = layer if isinstance(layer, Image) else linked_image(viewer, layer)
        meta = None if image is None else image.metadata.get(LINK_KEY)
        if not isinstance(meta, dict) or not meta.get("id"):
            return  # not an image with lazy labels
        link = str(meta["id"])
        if link in self._removing:
            return  # saved when the first of its layers went (closing removes them all)
        self._save_reporting(image)
        self._removing.add(link)
        QTimer.singleShot(0, lambda: self._removing.discard(link))

    # --------------------------------------------------------------- restoring
    def _on_inserted(self, event: Any) -> None:
        layer = event.value
        if isinstance(layer, Image) and not getattr(layer, "multiscale", False):
            # After the layers added with it (a sample's or reader's labels) are in.
            QTimer.singleShot(0, lambda: self.restore(layer))

    def _remember_as_saved(self, image: Image) -> None:
        """Record the labels in the viewer now as saved (they were just read from disk)."""
        layers = linked_layers(self._viewer(), image)
        if layers:
            link = str(image.metadata[LINK_KEY]["id"])
            for plane in range(n_planes(image)):
                self._saved[(link, plane)] = _plane_labels(image, layers, plane)[1]

    def restore(self, image: Image) -> dict[str, Labels] | None:
        """Give an image without labels layers the labels autosaved for its pixels.

        Parameters
        ----------
        image : napari.layers.Image
            The image.

        Returns
        -------
        dict or None
            The new labels layers by role, or ``None`` when the image already
            has labels layers, belongs to a project folder, or nothing was
            saved for it.
        """
        viewer = self._viewer()
        if viewer is None or image not in viewer.layers:
            return None
        meta = image.metadata.get(LINK_KEY)
        if isinstance(meta, dict) and meta.get("project"):
            self._remember_as_saved(image)  # read from its project: nothing to save yet
            return None
        try:
            project = find_recovered_labels(self.digest_of(image))
        except ProjectError as error:
            notify_warning(f"autosaved labels of '{image.name}' cannot be read: {error}")
            return None
        if project is None:
            return None
        if linked_layers(viewer, image):
            notify_info(
                f"labels of '{image.name}' autosaved earlier are in {project.folder} "
                "(open that folder to compare them with these layers)"
            )
            return None
        return self._restore_from(viewer, image, project)

    def _restore_from(self, viewer: Any, image: Image, project: Any) -> dict[str, Labels] | None:
        try:
            total = n_planes(image)
        except PluginInputError:
            return None
        if len(project.labels) != total:
            return None
        layers = link_label_layers(viewer, image, project.class_names)
        shape = label_shape(image)
        for role in ROLES:
            arrays = [getattr(labels, role) for labels in project.labels]
            if any(a is not None for a in arrays):
                layers[role].data = label_stack(arrays, shape[-2:]).reshape(shape)
        for plane, labels in enumerate(project.labels):
            set_strong(image, plane, labels.strong)
            set_sparse(image, plane, not labels.detection_complete)
        self._folders[str(image.metadata[LINK_KEY]["id"])] = project.folder
        self._remember_as_saved(image)
        notify_info(f"restored the labels of '{image.name}' autosaved in {project.folder}")
        return layers


_AUTOSAVERS: weakref.WeakKeyDictionary[Any, LabelAutosaver] = weakref.WeakKeyDictionary()


def label_autosaver(viewer: Any) -> LabelAutosaver:
    """The :class:`LabelAutosaver` of a viewer, started on first use.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.

    Returns
    -------
    LabelAutosaver
    """
    saver = _AUTOSAVERS.get(viewer)
    if saver is None:
        saver = _AUTOSAVERS[viewer] = LabelAutosaver(viewer)
    return saver
