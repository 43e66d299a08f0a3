"""The project folder format: images and their lazy labels on disk.

A project is a folder that the CLI, the scripting API and the plugin all
read the same way (see ``docs/project-format.md``)::

    project/
      project.json    {"class_names": [...], "strong": [...], "sparse": [...], "in_channels": 1}
      images/         NAME.tif / .tiff / .png / .jpg
      detection/      NAME.tif   inner regions (optional per image)
      separation/     NAME.tif   interface scribbles (optional)
      segmentation/   NAME.tif   exact masks (count only for images listed as strong)

Label files are matched to images by file stem, so ``detection/NAME.png``
labels ``images/NAME.tif``. This module reads projects; writing them
(:func:`save_project`, :func:`save_labels`, through
:func:`napari_lazyunet.core.files.write_atomic`) is in :mod:`.project_writer`
and the rules both share (settings file, label folders, names) are in
:mod:`.project_layout`; the writers and the layout constants stay importable
from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import (
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    PathLike,
    ProjectError,
    files_with_suffix,
    finish_interrupted_writes,
    read_image,
)
from .labels import ImageLabels, LabelError, as_label_array
from .project_layout import (
    LABEL_FOLDERS,
    PROJECT_FILE,
    PROJECT_YAML,
    by_stem,
    infer_channels,
    read_settings,
    resolve_names,
)
from .project_writer import save_labels, save_project

__all__ = [
    "LABEL_FOLDERS",
    "PROJECT_FILE",
    "PROJECT_YAML",
    "Project",
    "infer_class_names",
    "load_project",
    "save_labels",
    "save_project",
]


@dataclass(frozen=True)
class Project:
    """Images and lazy labels of a project folder.

    Attributes
    ----------
    folder : Path
        The project folder.
    names : list of str
        Image names (file stems), sorted; ``images[k]`` and ``labels[k]`` belong to ``names[k]``.
    images : list of ndarray
        ``(Y, X)`` or ``(Y, X, C)`` arrays as read from ``images/``.
    labels : list of ImageLabels
        Lazy labels of each image (all ``None`` where the image has no label file).
    class_names : tuple of str
        Object class names, value ``k`` in the label files is ``class_names[k - 1]``.
    in_channels : int
        Channels per image (1 for gray); from ``project.json`` or inferred.
    """

    folder: Path
    names: list[str]
    images: list[np.ndarray]
    labels: list[ImageLabels]
    class_names: tuple[str, ...]
    in_channels: int

    def __len__(self) -> int:
        return len(self.names)

    @property
    def labelled(self) -> list[int]:
        """Indices of the images that carry at least one label."""
        return [
            k
            for k, lab in enumerate(self.labels)
            if lab.has_detection or lab.has_separation or lab.has_segmentation
        ]


def _read_label(path: Path, shape: tuple[int, ...], image_path: Path) -> np.ndarray:
    array = read_image(path)
    # Some painting tools save labels as gray RGB(A) PNGs; equal channels
    # hold the same label value.
    if array.ndim == 3 and array.shape[-1] in (3, 4) and np.all(array[..., :3] == array[..., :1]):
        array = array[..., 0]
    if array.shape != shape:
        raise ProjectError(
            f"{path} has shape {array.shape} but its image {image_path.name} is {shape}; "
            "labels must cover the image pixel for pixel"
        )
    try:
        return as_label_array(array, f"the labels in {path}")
    except LabelError as error:
        raise ProjectError(str(error)) from error


def infer_class_names(labels: Sequence[ImageLabels], where: str) -> tuple[str, ...]:
    """``class 1`` .. ``class C`` for labels whose classes are not named.

    ``C`` is the largest value of the exact masks (segmentation holds
    ``0..C``). The detection layers cannot tell it: they hold ``C + 1`` for
    explicit background, which must never become a class.

    Raises
    ------
    ProjectError
        No exact mask to count the classes on; the message says to name them.
    """
    masks = [lab.segmentation for lab in labels if lab.segmentation is not None]
    masks = [m for m in masks if m.size]
    if not masks:
        raise ProjectError(
            f"{where} does not name the object classes, and without an exact mask they cannot "
            'be counted (detection also holds the explicit background); add e.g. {"class_names": '
            '["nucleus"]} to project.json, one name per class in label-value order'
        )
    largest = max(max(int(m.max()) for m in masks), 1)
    return tuple(f"class {k}" for k in range(1, largest + 1))


def load_project(folder: PathLike) -> Project:
    """Read a project folder.

    Parameters
    ----------
    folder : str or PathLike
        Folder with ``images/`` and optionally ``project.json`` (or
        ``project.yaml``), ``detection/``, ``separation/``, ``segmentation/``.

    Returns
    -------
    Project
        Images sorted by name with their labels. Without ``class_names`` in
        the project file, classes are named ``class 1..C`` with ``C`` the
        largest value in the detection and segmentation files.

    Raises
    ------
    ProjectError
        Missing ``images/``, a label file without image, an unreadable file,
        a name in ``strong`` / ``sparse`` that is not an image, a strong image
        without segmentation, or labels of the wrong shape.
    """
    folder = Path(folder)
    finish_interrupted_writes(folder)
    if not folder.is_dir():
        raise ProjectError(f"{folder} is not a folder; give the project folder")
    image_dir = folder / "images"
    if not image_dir.is_dir():
        raise ProjectError(
            f"{folder} has no images/ folder; put the images in {image_dir} "
            "(labels go in detection/, separation/, segmentation/ next to it)"
        )
    image_files = by_stem(files_with_suffix(image_dir, IMAGE_SUFFIXES), str(image_dir))
    if not image_files:
        raise ProjectError(
            f"{image_dir} holds no image; add files ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    names = sorted(image_files)
    settings, source = read_settings(folder)
    strong = resolve_names(settings.get("strong") or [], set(names), "strong", source)
    sparse = resolve_names(settings.get("sparse") or [], set(names), "sparse", source)

    label_files: dict[str, dict[str, Path]] = {}
    for task in LABEL_FOLDERS:
        task_dir = folder / task
        files = (
            by_stem(files_with_suffix(task_dir, LABEL_SUFFIXES), str(task_dir))
            if task_dir.is_dir()
            else {}
        )
        orphans = sorted(set(files) - set(image_files))
        if orphans:
            raise ProjectError(
                f"{files[orphans[0]]} has no image images/{orphans[0]}.* "
                f"({len(orphans)} label file(s) without image in {task}/); "
                "add the image or remove the label file"
            )
        label_files[task] = files
    missing_strong = sorted(strong - set(label_files["segmentation"]))
    if missing_strong:
        raise ProjectError(
            f"{missing_strong[0]} is listed as strong in {source} but "
            f"segmentation/{missing_strong[0]}.tif is missing; add its exact mask "
            "or remove it from 'strong'"
        )

    images, labels = [], []
    for name in names:
        image_path = image_files[name]
        image = read_image(image_path)
        if image.ndim not in (2, 3):
            raise ProjectError(
                f"{image_path} has shape {image.shape}; expected (Y, X) or (Y, X, C) "
                "with channels last (split stacks into one file per plane)"
            )
        arrays = {
            task: _read_label(label_files[task][name], image.shape[:2], image_path)
            if name in label_files[task]
            else None
            for task in LABEL_FOLDERS
        }
        images.append(image)
        labels.append(
            ImageLabels(
                detection=arrays["detection"],
                separation=arrays["separation"],
                segmentation=arrays["segmentation"],
                strong=name in strong,
                detection_complete=name not in sparse,
            )
        )

    in_channels = settings.get("in_channels") or infer_channels(images, names, folder)
    class_names = settings.get("class_names") or infer_class_names(
        labels, f"{source or folder / PROJECT_FILE}"
    )
    return Project(
        folder=folder,
        names=names,
        images=images,
        labels=labels,
        class_names=tuple(class_names),
        in_channels=int(in_channels),
    )
