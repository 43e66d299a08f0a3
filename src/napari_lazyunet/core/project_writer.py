"""Writing project folders: whole projects, and the labels of one image.

Every file goes through :func:`~napari_lazyunet.core.files.write_atomic`
(temporary file, fsync, rename; the files of one image as one journaled
group), so a kill never leaves a half-written file. Label files of an image
that no longer has that layer are removed, so the folder always matches
what was saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .files import (
    LABEL_SUFFIXES,
    PathLike,
    ProjectError,
    Writer,
    finish_interrupted_writes,
    image_writer,
    labels_writer,
    write_atomic,
)
from .labels import ImageLabels
from .project_layout import (
    LABEL_FOLDERS,
    PROJECT_FILE,
    check_name,
    infer_channels,
    read_settings,
    write_settings,
)

__all__ = ["save_labels", "save_project"]


def _label_writes(folder: Path, name: str, labels: ImageLabels) -> dict[Path, Writer]:
    """Writers of the label files of one image (checked before anything is written)."""
    writes = {}
    for task in LABEL_FOLDERS:
        array = getattr(labels, task)
        if array is not None:
            path = folder / task / f"{name}.tif"
            writes[path] = labels_writer(path, array)
    return writes


def _remove_stale_label_files(
    folder: Path, name: str, written: Sequence[Path], keep: Sequence[str] = ()
) -> None:
    """Remove the label files of ``name`` that were not just written (other suffixes, or
    layers that are ``None`` now), except those of the tasks in ``keep``."""
    for task in LABEL_FOLDERS:
        if task in keep:
            continue
        task_dir = folder / task
        if task_dir.is_dir():
            for suffix in LABEL_SUFFIXES:
                stale = task_dir / f"{name}{suffix}"
                if stale not in written and stale.is_file():
                    stale.unlink()


def save_labels(
    folder: PathLike, name: str, labels: ImageLabels, *, keep: Sequence[str] = ()
) -> list[Path]:
    """Write the label files of one image of a project and record its flags.

    Layers that are ``None`` have their old files removed, so the folder
    always matches ``labels`` (except the tasks in ``keep``). ``strong`` /
    ``sparse`` are updated in ``project.json`` (created when missing).

    Parameters
    ----------
    folder : str or PathLike
        Project folder.
    name : str
        Image name (stem, or file name whose stem is used).
    labels : ImageLabels
        The labels to write.
    keep : sequence of str
        Tasks whose files stay when their layer is ``None`` (autosave: a
        layer missing from the viewer is no reason to delete what was saved
        of it).

    Returns
    -------
    list of Path
        Written label files.
    """
    folder = Path(folder)
    finish_interrupted_writes(folder)
    name = check_name(name)
    settings, source = read_settings(folder)
    if source is not None and source.name != PROJECT_FILE:
        # Never rewrite a hand-written YAML file; keep the flags in JSON next to it.
        raise ProjectError(
            f"{source} is read-only for this tool; convert it to {PROJECT_FILE} "
            "to let labels be saved"
        )
    written = write_atomic(_label_writes(folder, name, labels))
    _remove_stale_label_files(folder, name, written, keep)
    for key, flag in (("strong", labels.strong), ("sparse", not labels.detection_complete)):
        entries = [e for e in settings.get(key) or [] if check_name(e) != name]
        if flag:
            entries.append(f"{name}.tif")
        settings[key] = sorted(entries)
    folder.mkdir(parents=True, exist_ok=True)
    write_settings(folder, settings)
    return written


def save_project(
    folder: PathLike,
    names: Sequence[str],
    images: Sequence[np.ndarray],
    labels: Sequence[ImageLabels],
    class_names: Sequence[str],
    in_channels: int | None = None,
) -> Path:
    """Write images and labels in the project folder layout.

    Images go to ``images/NAME.tif`` and labels to
    ``detection|separation|segmentation/NAME.tif`` (zlib-compressed TIFF,
    dtypes kept); ``project.json`` records the class names, the strong and
    sparse images and the channel count.

    Parameters
    ----------
    folder : str or PathLike
        Project folder, created when missing; files of the given names are
        overwritten.
    names : sequence of str
        Image names (file stems), unique.
    images : sequence of ndarray
        ``(Y, X)`` or ``(Y, X, C)`` images.
    labels : sequence of ImageLabels
        Labels of each image.
    class_names : sequence of str
        Object class names.
    in_channels : int or None
        Channels per image; inferred from the images when ``None``.

    Returns
    -------
    Path
        The project folder.
    """
    folder = Path(folder)
    finish_interrupted_writes(folder)
    if not len(names) == len(images) == len(labels):
        raise ProjectError(
            f"{len(names)} names, {len(images)} images and {len(labels)} label sets; "
            "give one name and one label set per image"
        )
    stems = [check_name(n) for n in names]
    if len(set(stems)) != len(stems):
        raise ProjectError(f"image names must be unique, got {list(names)}")
    if not class_names:
        raise ProjectError("give at least one class name, e.g. ['object']")
    arrays = [np.asarray(img) for img in images]
    if in_channels is None:
        in_channels = infer_channels(arrays, stems, folder)
    for stem, image, lab in zip(stems, arrays, labels, strict=True):
        image_path = folder / "images" / f"{stem}.tif"
        writes = {image_path: image_writer(image_path, image), **_label_writes(folder, stem, lab)}
        written = write_atomic(writes)
        _remove_stale_label_files(folder, stem, written)
    # Flags of images already in the folder but not saved now are kept, so
    # saving a subset of images never forgets which of the others are strong.
    previous, _ = read_settings(folder) if (folder / PROJECT_FILE).is_file() else ({}, None)
    saved = set(stems)

    def merged(key: str, flagged: list[str]) -> list[str]:
        kept = [e for e in previous.get(key) or [] if check_name(e) not in saved]
        return sorted(kept + [f"{s}.tif" for s in flagged])

    settings = {
        "class_names": list(class_names),
        "strong": merged("strong", [s for s, lab in zip(stems, labels, strict=True) if lab.strong]),
        "sparse": merged(
            "sparse",
            [s for s, lab in zip(stems, labels, strict=True) if not lab.detection_complete],
        ),
        "in_channels": int(in_channels),
    }
    write_settings(folder, settings)
    return folder
