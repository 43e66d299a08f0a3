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
labels ``images/NAME.tif``. This module and ``checkpoint.py`` are the only
parts of the core that touch files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from napari_lazyunet.core.labels import ImageLabels

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
LABEL_SUFFIXES = (".tif", ".tiff", ".png")
LABEL_FOLDERS = ("detection", "separation", "segmentation")
PROJECT_FILE = "project.json"
PROJECT_YAML = "project.yaml"

PathLike = str | os.PathLike


class ProjectError(ValueError):
    """A project folder or file cannot be used; the message names the file and the fix."""


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


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def read_image(path: PathLike) -> np.ndarray:
    """Read one image or label file.

    Parameters
    ----------
    path : str or PathLike
        ``.tif`` / ``.tiff`` (read with tifffile) or ``.png`` / ``.jpg`` /
        ``.jpeg`` (read with imageio).

    Returns
    -------
    ndarray
        The array as stored, channels last for colour images.

    Raises
    ------
    ProjectError
        The file is missing, has an unsupported suffix or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise ProjectError(f"{path} does not exist or is not a file; check the path")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ProjectError(
            f"{path} has an unsupported suffix {path.suffix!r}; "
            f"convert it to one of {', '.join(IMAGE_SUFFIXES)}"
        )
    try:
        if _is_tiff(path):
            import tifffile

            return np.asarray(tifffile.imread(path))
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except Exception as exc:  # decoders raise many types; one clear message is what helps
        raise ProjectError(
            f"{path} could not be read ({type(exc).__name__}: {exc}); "
            "check that the file is a complete, uncorrupted image or re-export it"
        ) from exc


Writer = Callable[[BinaryIO], None]


def _write_temporary(path: Path, write: Writer) -> Path:
    """Write a file under a temporary name next to ``path``, flushed and fsynced.

    On any error (Ctrl-C included) the temporary file is removed and the
    error raised again; ``path`` itself is never touched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)  # reopened by name: tifffile wants a stream with a file name
    temporary = Path(name)
    try:
        with open(temporary, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _sync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


JOURNAL_PREFIX = ".lazyunet-journal."


def _write_journal(pairs: Sequence[tuple[Path, Path]]) -> Path:
    """Record the renames of a group before doing them (see :func:`finish_interrupted_writes`)."""
    folder = Path(os.path.commonpath([str(path.parent) for _, path in pairs]))
    entries = [
        [os.path.relpath(temporary, folder), os.path.relpath(path, folder)]
        for temporary, path in pairs
    ]
    handle, name = tempfile.mkstemp(dir=folder, prefix=JOURNAL_PREFIX, suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(entries, stream)
        stream.flush()
        os.fsync(stream.fileno())
    _sync_folder(folder)
    return Path(name)


def finish_interrupted_writes(folder: PathLike) -> int:
    """Complete the group writes that a killed process left half renamed in ``folder``.

    :func:`write_atomic` renames the files of a group one by one; a process
    killed between two renames would leave some files new and some old. It
    therefore first records the renames in a journal file next to them
    (every temporary file complete and fsynced by then) and removes the
    journal when all are done. This function finishes the renames of every
    journal left in ``folder`` (or one level below), so the group is all
    new. Every function of this module that reads or writes a project or a
    prediction folder calls it first, so a later write is never undone.

    Parameters
    ----------
    folder : str or PathLike
        A folder written by :func:`write_atomic` (a project, a prediction folder).

    Returns
    -------
    int
        Number of interrupted groups completed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    finished = 0
    journals = [*folder.glob(f"{JOURNAL_PREFIX}*.json"), *folder.glob(f"*/{JOURNAL_PREFIX}*.json")]
    for journal in sorted(journals):
        base = journal.parent
        try:
            entries = json.loads(journal.read_text(encoding="utf-8"))
        except ValueError:
            journal.unlink(missing_ok=True)  # cut while written: no rename had started
            continue
        targets = set()
        for temporary, path in entries:
            if (base / temporary).is_file():
                os.replace(base / temporary, base / path)
            targets.add((base / path).parent)
        for target in targets:
            _sync_folder(target)
        journal.unlink()
        _sync_folder(base)
        finished += 1
    return finished


def _replace_all(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Rename every temporary file onto its target; on error remove those not yet renamed.

    A group of several files is journaled first, so that a kill between two
    renames is completed by :func:`finish_interrupted_writes`.
    """
    journal = _write_journal(pairs) if len(pairs) > 1 else None
    done = 0
    try:
        for temporary, path in pairs:
            os.replace(temporary, path)
            done += 1
    finally:
        for temporary, _ in pairs[done:]:
            temporary.unlink(missing_ok=True)
        if journal is not None:
            journal.unlink(missing_ok=True)
    for folder in {path.parent for _, path in pairs} | ({journal.parent} if journal else set()):
        _sync_folder(folder)


def write_atomic(writes: Mapping[PathLike, Writer]) -> list[Path]:
    """Write files atomically and together: all of them or none.

    Every file is first written to a temporary name in its own folder
    (flushed and fsynced); only when all of them are complete are they
    renamed onto their targets with ``os.replace``. An error while writing
    (a full disk, a bad array, Ctrl-C) removes the temporary files and leaves
    every old file as it was. This is the one place where this module writes
    files.

    Parameters
    ----------
    writes : mapping of path to callable
        For each target file, a function that writes its bytes to a binary
        stream.

    Returns
    -------
    list of Path
        The written files, in the order given.
    """
    pairs: list[tuple[Path, Path]] = []
    try:
        for path, write in writes.items():
            path = Path(path)
            pairs.append((_write_temporary(path, write), path))
    except BaseException:
        for temporary, _ in pairs:
            temporary.unlink(missing_ok=True)
        raise
    _replace_all(pairs)
    return [path for _, path in pairs]


def labels_writer(path: PathLike, array: np.ndarray) -> Writer:
    """Check a label array and return the writer of its TIFF bytes (see :func:`write_labels`)."""
    import tifffile

    path = Path(path)
    if not _is_tiff(path):
        raise ProjectError(f"labels are written as TIFF; use a .tif name instead of {path.name}")
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise ProjectError(
            f"labels for {path} have dtype {array.dtype}; labels must be integers, "
            "convert with .astype(np.uint8) (or uint16 for many instances)"
        )
    # A stack of label planes is never colour: tifffile would store (3, Y, X) or
    # (4, Y, X) as planar RGB without being told.
    return lambda stream: tifffile.imwrite(
        stream, array, compression="zlib", photometric="minisblack"
    )


def image_writer(path: PathLike, image: np.ndarray) -> Writer:
    """Check an image and return the writer of its TIFF bytes (see :func:`write_image`)."""
    import tifffile

    path = Path(path)
    if not _is_tiff(path):
        raise ProjectError(f"images are written as TIFF; use a .tif name instead of {path.name}")
    image = np.asarray(image)
    # Three or four trailing channels are colour; tell tifffile so it does not
    # guess a plane stack.
    photometric = "rgb" if image.ndim == 3 and image.shape[-1] in (3, 4) else "minisblack"
    return lambda stream: tifffile.imwrite(
        stream, image, compression="zlib", photometric=photometric
    )


def json_writer(data: Any) -> Writer:
    """The writer of ``data`` as indented UTF-8 JSON text."""
    text = json.dumps(data, indent=2) + "\n"
    return lambda stream: stream.write(text.encode("utf-8"))


def write_labels(path: PathLike, array: np.ndarray) -> Path:
    """Write a label array as a zlib-compressed TIFF, keeping its integer dtype.

    The file is replaced atomically (:func:`write_atomic`): a failed write
    leaves the old file intact.

    Parameters
    ----------
    path : str or PathLike
        Target file; its suffix must be ``.tif`` or ``.tiff``. Parent
        folders are created.
    array : ndarray
        Integer or boolean labels (booleans are written as ``uint8``).

    Returns
    -------
    Path
        The written file.
    """
    (written,) = write_atomic({path: labels_writer(path, array)})
    return written


def write_image(path: PathLike, image: np.ndarray) -> Path:
    """Write an image as a zlib-compressed TIFF, keeping dtype and channels.

    The file is replaced atomically (:func:`write_atomic`).

    Parameters
    ----------
    path : str or PathLike
        Target ``.tif`` file; parent folders are created.
    image : ndarray
        ``(Y, X)`` or ``(Y, X, C)``.

    Returns
    -------
    Path
        The written file.
    """
    (written,) = write_atomic({path: image_writer(path, image)})
    return written


def _files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )


def list_images(folder_or_file: PathLike) -> list[Path]:
    """Image files of a project, a plain folder or a single file.

    Parameters
    ----------
    folder_or_file : str or PathLike
        A project folder (its ``images/`` is listed), a folder of images or
        one image file.

    Returns
    -------
    list of Path
        Image files sorted by name.
    """
    path = Path(folder_or_file)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ProjectError(
                f"{path} is not an image this tool reads; use one of {', '.join(IMAGE_SUFFIXES)}"
            )
        return [path]
    if not path.is_dir():
        raise ProjectError(f"{path} does not exist; give an image file or a folder")
    if (path / "images").is_dir():
        path = path / "images"
    return _files(path, IMAGE_SUFFIXES)


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
    if not np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
        if np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)
        else:
            raise ProjectError(
                f"{path} holds non-integer values (dtype {array.dtype}); "
                "label files must store integer values"
            )
    return array


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
    image_files = _by_stem(_files(image_dir, IMAGE_SUFFIXES), str(image_dir))
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
            _by_stem(_files(task_dir, LABEL_SUFFIXES), str(task_dir)) if task_dir.is_dir() else {}
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
    class_names = settings.get("class_names")
    if not class_names:
        largest = max(
            [
                int(a.max())
                for lab in labels
                for a in (lab.detection, lab.segmentation)
                if a is not None and a.size
            ]
            or [1]
        )
        class_names = [f"class {k}" for k in range(1, max(largest, 1) + 1)]
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


# ---------------------------------------------------------------- prediction folders
PREDICTION_MANIFEST = "prediction.json"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


class PredictionFolder:
    """An output folder of ``lazyunet predict`` that never overwrites painted labels.

    Opening it refuses (``ProjectError``) a project folder (``images/``,
    ``project.json`` or ``project.yaml``) and any folder whose
    ``detection/``, ``separation/`` or ``segmentation/`` hold a file that a
    prediction run did not write, or that changed since: a prediction run
    lists every file it writes, with its SHA-256, in
    ``OUT/prediction.json``.

    Parameters
    ----------
    folder : str or PathLike
        The output folder (created on the first write).
    run : mapping
        What the manifest records about this run (model, input, settings...);
        ``date`` and ``files`` are added.
    """

    def __init__(self, folder: PathLike, run: Mapping[str, Any]):
        self.folder = Path(folder)
        self.run = dict(run)
        self.files: dict[str, str] = self._check()

    @property
    def manifest(self) -> Path:
        return self.folder / PREDICTION_MANIFEST

    def _check(self) -> dict[str, str]:
        """The files listed by an earlier run (relative path -> SHA-256); refuse unsafe folders."""
        out = self.folder
        if out.exists() and not out.is_dir():
            raise ProjectError(f"{out} is a file; give a folder for the predictions")
        if not out.is_dir():
            return {}
        finish_interrupted_writes(out)
        markers = [m for m in ("images", PROJECT_FILE, PROJECT_YAML) if (out / m).exists()]
        if markers:
            raise ProjectError(
                f"{out} is a project folder (it has {markers[0]}); predictions are never "
                "written over painted labels: choose another output folder, "
                f"e.g. {out.name}-predictions"
            )
        recorded: dict[str, str] = {}
        if self.manifest.is_file():
            try:
                data = json.loads(self.manifest.read_text(encoding="utf-8"))
                recorded = {str(f["path"]): str(f["sha256"]) for f in data["files"]}
            except (ValueError, KeyError, TypeError) as exc:
                raise ProjectError(
                    f"{self.manifest} is not a manifest written by lazyunet predict "
                    f"({type(exc).__name__}: {exc}); choose another output folder"
                ) from exc
        for task in LABEL_FOLDERS:
            task_dir = out / task
            if not task_dir.is_dir():
                continue
            for path in sorted(task_dir.iterdir()):
                if path.name.startswith("."):
                    continue  # hidden files, e.g. temporary files left by a crash
                key = f"{task}/{path.name}"
                if key not in recorded:
                    raise ProjectError(
                        f"{path} was not written by lazyunet predict (it is not listed in "
                        f"{self.manifest}); predictions are never written over painted "
                        "labels: choose another output folder or move the file"
                    )
                if not path.is_file() or _digest(path) != recorded[key]:
                    raise ProjectError(
                        f"{path} changed after lazyunet predict wrote it (painted?); "
                        "predictions are never written over painted labels: choose another "
                        "output folder or move the file"
                    )
        return recorded

    def write(self, outputs: Mapping[str, Writer]) -> list[Path]:
        """Write the outputs of one image together, and the manifest with them.

        Parameters
        ----------
        outputs : mapping of str to writer
            Paths relative to the folder (``"detection/a.tif"``) and the
            writers of their bytes (:func:`labels_writer`, :func:`image_writer`).

        Returns
        -------
        list of Path
            The written files (the manifest not included).
        """
        pairs: list[tuple[Path, Path]] = []
        try:
            for name, write in outputs.items():
                path = self.folder / name
                pairs.append((_write_temporary(path, write), path))
            files = dict(self.files)
            files.update(
                {name: _digest(tmp) for name, (tmp, _) in zip(outputs, pairs, strict=True)}
            )
            # Keep only files that are still there; the new ones are about to be.
            files = {k: v for k, v in files.items() if k in outputs or (self.folder / k).is_file()}
            manifest = {
                **self.run,
                "date": _now(),
                "files": [{"path": k, "sha256": v} for k, v in sorted(files.items())],
            }
            pairs.append((_write_temporary(self.manifest, json_writer(manifest)), self.manifest))
        except BaseException:
            for temporary, _ in pairs:
                temporary.unlink(missing_ok=True)
            raise
        _replace_all(pairs)
        self.files = files
        return [path for _, path in pairs[:-1]]


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")
