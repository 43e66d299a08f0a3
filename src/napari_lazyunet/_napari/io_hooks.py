"""Reader and writer hooks for the project folder format (``docs/project-format.md``).

Reading a project folder gives image layers with their three linked labels
layers; images of one shape are stacked into one layer (one plane per
image, names kept in the metadata), otherwise each image is its own layer.
Writing does the reverse for the selected (or all) layers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import (
    PROJECT_FILE,
    PROJECT_YAML,
    infer_class_names,
    load_project,
    save_project,
)

from .classes import image_metadata, labels_layer_data
from .links import LINK_KEY, ROLES

__all__ = [
    "get_reader",
    "label_stack",
    "plane_file_names",
    "project_folder_of",
    "read_project",
    "saved_plane",
    "write_project",
]

LayerData = tuple[Any, dict[str, Any], str]


def _single_path(path: str | Sequence[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return path[0] if len(path) == 1 else None
    return str(path)


def is_project_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder with ``project.json`` (or ``project.yaml``) and ``images/``."""
    folder = Path(path)
    has_settings = (folder / PROJECT_FILE).is_file() or (folder / PROJECT_YAML).is_file()
    return folder.is_dir() and has_settings and (folder / "images").is_dir()


def project_folder_of(path: str | Sequence[str]) -> Path | None:
    """The project folder that ``path`` opens: the folder itself or the folder of its
    ``project.json`` / ``project.yaml``; ``None`` for anything else."""
    single = _single_path(path)
    if single is None:
        return None
    folder = Path(single)
    if folder.name in (PROJECT_FILE, PROJECT_YAML) and folder.is_file():
        folder = folder.parent
    return folder if is_project_folder(folder) else None


def get_reader(path: str | Sequence[str]) -> Callable[[Any], list[LayerData]] | None:
    """The reader hook: claim project folders, leave every other path to other readers.

    The manifest offers this reader only folders and files named
    ``project.json`` or ``project.yaml`` (never images, so napari opens a
    TIFF with its own reader without asking which reader to use).

    Parameters
    ----------
    path : str or list of str
        What the user opened.

    Returns
    -------
    callable or None
        :func:`read_project` for a project folder (or its settings file), else ``None``.
    """
    return read_project if project_folder_of(path) is not None else None


def label_stack(arrays: list[np.ndarray | None], shape: tuple[int, ...]) -> np.ndarray:
    """Planes of labels as one ``(n, *shape)`` array of the smallest unsigned dtype that
    holds them (zeros where a plane is ``None``)."""
    largest = max([int(a.max()) for a in arrays if a is not None and a.size] or [0])
    dtype = np.uint8 if largest <= 255 else (np.uint16 if largest <= 65535 else np.uint32)
    out = np.zeros((len(arrays), *shape), dtype=dtype)
    for k, array in enumerate(arrays):
        if array is not None:
            out[k] = array
    return out


def _layers_for(
    image: np.ndarray,
    labels: list[ImageLabels],
    names: list[str],
    class_names: Sequence[str],
    in_channels: int,
    layer_name: str,
    stacked: bool,
    folder: Path,
) -> list[LayerData]:
    link = uuid.uuid4().hex
    meta = image_metadata(
        link,
        class_names,
        strong=[k for k, lab in enumerate(labels) if lab.strong],
        sparse=[k for k, lab in enumerate(labels) if not lab.detection_complete],
    )
    meta[LINK_KEY]["plane_names"] = list(names)
    meta[LINK_KEY]["project"] = str(folder)
    rgb = in_channels in (3, 4) and image.shape[-1] == in_channels
    shape = image.shape[1:3] if stacked else image.shape[:2]
    layers: list[LayerData] = [(image, {"name": layer_name, "metadata": meta, "rgb": rgb}, "image")]
    colors = meta[LINK_KEY]["class_colors"]
    for role in ROLES:
        data = label_stack([getattr(lab, role) for lab in labels], tuple(shape))
        if not stacked:
            data = data[0]
        layers.append(labels_layer_data(data, f"{layer_name} {role}", link, role, colors))
    return layers


def read_project(path: str | Sequence[str]) -> list[LayerData]:
    """Read a project folder into image layers and their linked labels layers.

    Parameters
    ----------
    path : str or list of str
        The project folder (or its ``project.json`` / ``project.yaml``).

    Returns
    -------
    list of (data, kwargs, layer_type)
        For each image layer: the image, then detection, separation and
        segmentation labels. All images of one shape and dtype form one
        stack named after the folder.

    Raises
    ------
    ProjectError
        The folder is not a valid project (the message names the file and the fix).
    """
    folder = project_folder_of(path) or Path(_single_path(path) or path[0])
    project = load_project(folder)
    images = project.images
    same = all(i.shape == images[0].shape and i.dtype == images[0].dtype for i in images)
    if same and len(images) > 1:
        return _layers_for(
            np.stack(images),
            list(project.labels),
            list(project.names),
            project.class_names,
            project.in_channels,
            folder.name,
            True,
            folder,
        )
    layers: list[LayerData] = []
    for name, image, lab in zip(project.names, images, project.labels, strict=True):
        layers += _layers_for(
            image, [lab], [name], project.class_names, project.in_channels, name, False, folder
        )
    return layers


def _stem(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")
    return stem or "image"


def saved_plane(array: np.ndarray | None, role: str, strong: bool) -> np.ndarray | None:
    """What is saved of one plane of a labels layer: ``None`` when nothing is painted
    (an empty separation file would say "no interface here"), except the
    segmentation of a strong plane, whose empty mask is exact."""
    if array is not None and not array.any() and not (role == "segmentation" and strong):
        return None
    return array


def plane_file_names(meta: dict[str, Any], layer_name: str, n: int, stacked: bool) -> list[str]:
    """File stems of an image layer's ``n`` planes in a project folder: the names it was
    read with, else the layer name (numbered ``NAME_000``... for a stack)."""
    stored = meta.get("plane_names")
    if isinstance(stored, list) and len(stored) == n:
        return [str(s) for s in stored]
    if not stacked:
        return [_stem(layer_name)]
    return [f"{_stem(layer_name)}_{k:03d}" for k in range(n)]


def write_project(path: str, layer_data: list[LayerData]) -> list[str]:
    """The writer hook: save image layers and their linked labels as a project folder.

    Each image plane becomes ``images/NAME.tif``; the planes of the linked
    detection, separation and segmentation layers go to the matching label
    folders when something is painted on them (segmentation also when the
    plane is strong), and ``project.json`` records the class names and the
    strong and sparse planes. Labels layers whose image is not among the
    saved layers are skipped.

    Parameters
    ----------
    path : str
        The project folder (created when missing).
    layer_data : list of (data, attributes, layer_type)
        The layers napari asks to save.

    Returns
    -------
    list of str
        ``[path]`` when something was written, else ``[]``.

    Raises
    ------
    ProjectError
        Names that collide, or images with different class names.
    """
    from napari_lazyunet.core.files import ProjectError

    labels_by_link: dict[str, dict[str, np.ndarray]] = {}
    for data, attributes, layer_type in layer_data:
        meta = (attributes.get("metadata") or {}).get(LINK_KEY)
        if layer_type == "labels" and isinstance(meta, dict) and meta.get("role") in ROLES:
            labels_by_link.setdefault(str(meta.get("image")), {})[meta["role"]] = np.asarray(data)

    names: list[str] = []
    images: list[np.ndarray] = []
    labels: list[ImageLabels] = []
    class_names: tuple[str, ...] | None = None
    for data, attributes, layer_type in layer_data:
        if layer_type != "image":
            continue
        meta = (attributes.get("metadata") or {}).get(LINK_KEY) or {}
        data = np.asarray(data)
        rgb = bool(attributes.get("rgb"))
        spatial_ndim = data.ndim - (1 if rgb else 0)
        lead = data.shape[: spatial_ndim - 2]
        planes = [()] if not lead else list(np.ndindex(*lead))
        stacked = bool(lead)
        linked = labels_by_link.get(str(meta.get("id")), {}) if meta.get("id") else {}
        here = tuple(meta.get("class_names") or ())
        if linked and here:
            if class_names is not None and here != class_names:
                raise ProjectError(
                    f"image '{attributes.get('name')}' uses classes {list(here)} but another "
                    f"uses {list(class_names)}; save images with the same classes together"
                )
            class_names = here
        strong = {int(p) for p in meta.get("strong") or []}
        sparse = {int(p) for p in meta.get("sparse") or []}
        plane_names = plane_file_names(
            meta, str(attributes.get("name", "image")), len(planes), stacked
        )
        for flat, (index, name) in enumerate(zip(planes, plane_names, strict=True)):
            arrays: dict[str, np.ndarray | None] = {}
            for role in ROLES:
                array = linked.get(role)
                array = None if array is None else np.asarray(array[index] if index else array)
                arrays[role] = saved_plane(array, role, flat in strong)
            names.append(name)
            images.append(np.asarray(data[index] if index else data))
            labels.append(
                ImageLabels(
                    detection=arrays["detection"],
                    separation=arrays["separation"],
                    segmentation=arrays["segmentation"],
                    strong=flat in strong and arrays["segmentation"] is not None,
                    detection_complete=flat not in sparse,
                )
            )
    if not images:
        return []
    if class_names is None:
        class_names = infer_class_names(labels, "the layers being saved")
    folder = save_project(path, names, images, labels, class_names)
    return [str(folder)]
