"""The recovery folder: where labels and models made in the viewer are kept until saved.

Labels painted on an image that came from a project folder are autosaved
into that folder. Labels of any other image, and models trained without a
model file, go to the recovery folder instead::

    RECOVERY/                       $LAZYUNET_RECOVERY_DIR, else
                                    $XDG_DATA_HOME/napari-lazyunet/recovery
                                    (~/.local/share/... when unset)
      labels/NAME-DIGEST/           a project folder (docs/project-format.md):
                                    the image once, its labels at every autosave
      models/model-DATE-TIME.pt     a model file per training run

``DIGEST`` identifies the image by its pixels (:func:`image_digest`), so the
labels of an image are found again when the same image is opened later,
whatever its file or layer is called. Each recovery folder is an ordinary
project: it opens in napari and trains with ``lazyunet train``.

Like ``files.py`` and ``checkpoint.py``, this module touches files; every
write goes through :func:`napari_lazyunet.core.files.write_atomic`.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import (
    PROJECT_FILE,
    PROJECT_YAML,
    Project,
    load_project,
    save_labels,
    save_project,
)

__all__ = [
    "RECOVERY_ENV",
    "autosave_labels",
    "find_recovered_labels",
    "image_digest",
    "labels_recovery_folder",
    "model_recovery_path",
    "recovery_root",
]

RECOVERY_ENV = "LAZYUNET_RECOVERY_DIR"
DIGEST_LENGTH = 16  # hex characters: 64 bits, no collision between one user's images
_CHUNK = 1 << 24  # bytes hashed per update (16 MB): bounded extra memory for big images


def recovery_root() -> Path:
    """The recovery folder: ``$LAZYUNET_RECOVERY_DIR``, else the user's data folder.

    Returns
    -------
    Path
        ``$LAZYUNET_RECOVERY_DIR`` when set, else
        ``$XDG_DATA_HOME/napari-lazyunet/recovery`` (``~/.local/share/...``
        when ``XDG_DATA_HOME`` is unset). Not created here.
    """
    override = os.environ.get(RECOVERY_ENV)
    if override:
        return Path(override).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "napari-lazyunet" / "recovery"


def image_digest(image: np.ndarray) -> str:
    """A short hex digest of an image's shape, dtype and pixels.

    Parameters
    ----------
    image : array-like
        Any array (a dask or zarr array is read chunk by chunk of its first axis).

    Returns
    -------
    str
        :data:`DIGEST_LENGTH` hex characters; equal for equal images.
    """
    digest = hashlib.blake2b(digest_size=DIGEST_LENGTH // 2)
    shape = tuple(int(s) for s in np.shape(image))
    dtype = np.dtype(image.dtype) if hasattr(image, "dtype") else np.asarray(image).dtype
    digest.update(repr((shape, dtype.str)).encode())
    if not shape or 0 in shape:
        return digest.hexdigest()
    per_row = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)
    rows = max(1, _CHUNK // per_row)
    for start in range(0, shape[0], rows):
        block = np.ascontiguousarray(np.asarray(image[start : start + rows]))
        digest.update(memoryview(block).cast("B"))
    return digest.hexdigest()


def safe_stem(name: str) -> str:
    """A file name made of ``name``: letters, digits, ``_.-`` only, at most 60 characters."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return stem[:60] or "image"


def labels_recovery_folder(name: str, digest: str, root: Path | None = None) -> Path:
    """The recovery project of one image (not created here).

    Parameters
    ----------
    name : str
        Layer name, for a folder a person can recognise.
    digest : str
        :func:`image_digest` of the image.
    root : Path, optional
        Recovery folder; default :func:`recovery_root`.

    Returns
    -------
    Path
        ``ROOT/labels/NAME-DIGEST``; an existing folder of the same digest
        (saved under another layer name) is reused.
    """
    labels_root = (root or recovery_root()) / "labels"
    existing = _folders_of(digest, labels_root)
    return existing[0] if existing else labels_root / f"{safe_stem(name)}-{digest}"


def _folders_of(digest: str, labels_root: Path) -> list[Path]:
    """Recovery projects of ``digest``, most recently saved first."""
    if not labels_root.is_dir():
        return []
    found = [
        folder for folder in labels_root.glob(f"*-{digest}") if (folder / PROJECT_FILE).is_file()
    ]
    return sorted(found, key=lambda f: (f / PROJECT_FILE).stat().st_mtime, reverse=True)


def find_recovered_labels(digest: str, root: Path | None = None) -> Project | None:
    """The labels autosaved for the image of ``digest``, if any.

    Parameters
    ----------
    digest : str
        :func:`image_digest` of the image.
    root : Path, optional
        Recovery folder; default :func:`recovery_root`.

    Returns
    -------
    Project or None
        The recovery project (its ``labels`` hold one entry per plane, in
        the plane order of the saved image), or ``None`` when nothing was saved.

    Raises
    ------
    ProjectError
        The recovery project is damaged (the message names the file).
    """
    folders = _folders_of(digest, (root or recovery_root()) / "labels")
    return load_project(folders[0]) if folders else None


def autosave_labels(
    folder: Path,
    names: Sequence[str],
    labels: Sequence[ImageLabels],
    *,
    class_names: Sequence[str],
    images: Sequence[np.ndarray] | None = None,
    keep: Sequence[str] = (),
) -> None:
    """Write the labels of some planes into a project folder, keeping everything else.

    A folder that is not a project yet (a new recovery folder) gets the
    images too (``images`` is then required); afterwards only label files
    are written. The tasks in ``keep`` (layers missing from the viewer)
    keep their files; a layer that is ``None`` otherwise (nothing painted)
    has its old file removed, as when saving a project.

    Parameters
    ----------
    folder : Path
        Project folder (the image's own, or :func:`labels_recovery_folder`).
    names : sequence of str
        Plane names (file stems in the project).
    labels : sequence of ImageLabels
        Labels of each named plane.
    class_names : sequence of str
        Object classes, recorded when the project is created.
    images : sequence of ndarray, optional
        The planes' images, written only when the folder is new.
    keep : sequence of str
        Tasks whose files are never removed.
    """
    folder = Path(folder)
    if not ((folder / PROJECT_FILE).is_file() or (folder / PROJECT_YAML).is_file()):
        if images is None:
            raise ValueError(f"{folder} is not a project yet: give the images to create it")
        save_project(folder, names, images, labels, class_names)
        return
    for name, lab in zip(names, labels, strict=True):
        save_labels(folder, name, lab, keep=keep)


def model_recovery_path(root: Path | None = None, now: float | None = None) -> Path:
    """A new model file name in the recovery folder (not created here).

    Parameters
    ----------
    root : Path, optional
        Recovery folder; default :func:`recovery_root`.
    now : float, optional
        Time stamp (seconds since the epoch); default: now.

    Returns
    -------
    Path
        ``ROOT/models/model-YYYYmmdd-HHMMSS.pt`` (with ``-2``, ``-3``... when
        that name is taken).
    """
    folder = (root or recovery_root()) / "models"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    path = folder / f"model-{stamp}.pt"
    k = 2
    while path.exists():
        path = folder / f"model-{stamp}-{k}.pt"
        k += 1
    return path


def predictions_recovery_folder(name: str, root: Path | None = None) -> Path:
    """The folder for the outputs of a large image predicted in napari without an output folder.

    Parameters
    ----------
    name : str
        The image layer's name.
    root : Path, optional
        Recovery folder; default :func:`recovery_root`.

    Returns
    -------
    Path
        ``ROOT/predictions/NAME`` (a prediction folder, see
        :class:`~napari_lazyunet.core.prediction_folder.PredictionFolder`).
    """
    return (root or recovery_root()) / "predictions" / safe_stem(name)
