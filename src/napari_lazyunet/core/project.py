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
labels ``images/NAME.tif``. Files are written through
:func:`napari_lazyunet.core.files.write_atomic`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import (
    IMAGE_SUFFIXES,
    LABEL_SUFFIXES,
    PathLike,
    ProjectError,
    Writer,
    files_with_suffix,
    finish_interrupted_writes,
    image_writer,
    json_writer,
    labels_writer,
    read_image,
    write_atomic,
)
from .labels import TASKS, ImageLabels, LabelError, as_label_array

LABEL_FOLDERS = TASKS  # one folder per task
PROJECT_FILE = "project.json"
PROJECT_YAML = "project.yaml"


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


def _by_stem(files: list[Path], what: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for f in files:
        if f.stem in found:
            raise ProjectError(
                f"{what} has two files for {f.stem!r}: {found[f.stem].name} and {f.name}; "
                "keep only one of them"
            )
        found[f.stem] = f
    return found


def _read_settings(folder: Path) -> tuple[dict[str, Any], Path | None]:
    json_path, yaml_path = folder / PROJECT_FILE, folder / PROJECT_YAML
    if json_path.is_file():
        try:
            settings = json.loads(json_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ProjectError(
                f"{json_path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}); fix the syntax"
            ) from exc
        source = json_path
    elif yaml_path.is_file():
        try:
            import yaml
        except ImportError as exc:
            raise ProjectError(
                f"{yaml_path} needs PyYAML to be read; `pip install pyyaml` "
                f"or convert it to {PROJECT_FILE}"
            ) from exc
        try:
            settings = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ProjectError(f"{yaml_path} is not valid YAML ({exc}); fix the syntax") from exc
        source = yaml_path
    else:
        return {}, None
    if not isinstance(settings, dict):
        raise ProjectError(f'{source} must hold a mapping such as {{"class_names": [...]}}')
    known = {"class_names", "strong", "sparse", "in_channels"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ProjectError(
            f"{source} has unknown keys {unknown}; the known keys are {sorted(known)}"
        )
    for key in ("class_names", "strong", "sparse"):
        value = settings.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ProjectError(f"{source}: {key!r} must be a list of strings, got {value!r}")
    channels = settings.get("in_channels")
    if channels is not None and (
        isinstance(channels, bool) or not isinstance(channels, int) or channels < 1
    ):
        raise ProjectError(f"{source}: 'in_channels' must be a positive integer, got {channels!r}")
    return settings, source


def _resolve_names(entries: list[str], names: set[str], key: str, source: Path | None) -> set[str]:
    """Map entries of "strong" / "sparse" (file names or stems) to image stems."""
    resolved = set()
    for entry in entries:
        stem = Path(entry).stem if Path(entry).suffix.lower() in IMAGE_SUFFIXES else entry
        if stem not in names:
            raise ProjectError(
                f"{source}: {key!r} lists {entry!r} but images/ has no such image; "
                "fix the name or add the image"
            )
        resolved.add(stem)
    return resolved


def _infer_channels(images: list[np.ndarray], names: list[str], folder: Path) -> int:
    counts = [1 if img.ndim == 2 else int(img.shape[-1]) for img in images]
    channels = set(counts)
    if len(channels) > 1:
        per_image = dict(zip(names, counts, strict=True))
        raise ProjectError(
            f"images in {folder / 'images'} have different channel counts {per_image}; "
            "convert them to one layout (all gray or all RGB)"
        )
    return channels.pop() if channels else 1


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
    image_files = _by_stem(files_with_suffix(image_dir, IMAGE_SUFFIXES), str(image_dir))
    if not image_files:
        raise ProjectError(
            f"{image_dir} holds no image; add files ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    names = sorted(image_files)
    settings, source = _read_settings(folder)
    strong = _resolve_names(settings.get("strong") or [], set(names), "strong", source)
    sparse = _resolve_names(settings.get("sparse") or [], set(names), "sparse", source)

    label_files: dict[str, dict[str, Path]] = {}
    for task in LABEL_FOLDERS:
        task_dir = folder / task
        files = (
            _by_stem(files_with_suffix(task_dir, LABEL_SUFFIXES), str(task_dir))
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

    in_channels = settings.get("in_channels") or _infer_channels(images, names, folder)
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


def _check_name(name: str) -> str:
    if not name or name != Path(name).name or name.startswith("."):
        raise ProjectError(
            f"image name {name!r} cannot be used as a file name; "
            "use a plain name without folders, e.g. 'img_003'"
        )
    return Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name


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


def _write_settings(folder: Path, settings: dict[str, Any]) -> None:
    write_atomic({folder / PROJECT_FILE: json_writer(settings)})


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
    name = _check_name(name)
    settings, source = _read_settings(folder)
    if source is not None and source.name != PROJECT_FILE:
        # Never rewrite a hand-written YAML file; keep the flags in JSON next to it.
        raise ProjectError(
            f"{source} is read-only for this tool; convert it to {PROJECT_FILE} "
            "to let labels be saved"
        )
    written = write_atomic(_label_writes(folder, name, labels))
    _remove_stale_label_files(folder, name, written, keep)
    for key, flag in (("strong", labels.strong), ("sparse", not labels.detection_complete)):
        entries = [e for e in settings.get(key) or [] if _check_name(e) != name]
        if flag:
            entries.append(f"{name}.tif")
        settings[key] = sorted(entries)
    folder.mkdir(parents=True, exist_ok=True)
    _write_settings(folder, settings)
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
    stems = [_check_name(n) for n in names]
    if len(set(stems)) != len(stems):
        raise ProjectError(f"image names must be unique, got {list(names)}")
    if not class_names:
        raise ProjectError("give at least one class name, e.g. ['object']")
    arrays = [np.asarray(img) for img in images]
    if in_channels is None:
        in_channels = _infer_channels(arrays, stems, folder)
    for stem, image, lab in zip(stems, arrays, labels, strict=True):
        image_path = folder / "images" / f"{stem}.tif"
        writes = {image_path: image_writer(image_path, image), **_label_writes(folder, stem, lab)}
        written = write_atomic(writes)
        _remove_stale_label_files(folder, stem, written)
    # Flags of images already in the folder but not saved now are kept, so
    # saving a subset of images never forgets which of the others are strong.
    previous, _ = _read_settings(folder) if (folder / PROJECT_FILE).is_file() else ({}, None)
    saved = set(stems)

    def merged(key: str, flagged: list[str]) -> list[str]:
        kept = [e for e in previous.get(key) or [] if _check_name(e) not in saved]
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
    _write_settings(folder, settings)
    return folder
