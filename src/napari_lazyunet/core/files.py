"""Reading images and writing files that survive a kill: the file layer of the core.

Every file the package writes (labels, images, project settings, model
files aside) goes through :func:`write_atomic`: a temporary file in the
target's folder, flushed and fsynced, then renamed. A group of files is
written together, and a kill between two of its renames is completed by
:func:`finish_interrupted_writes`. This module, ``project.py``,
``prediction_folder.py``, ``recovery.py`` and ``checkpoint.py`` are the only
parts of the core that touch files.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
LABEL_SUFFIXES = (".tif", ".tiff", ".png")
# Folders that are one image: zarr arrays and OME-Zarr images, read lazily.
ZARR_SUFFIXES = (".zarr",)

PathLike = str | os.PathLike


class ProjectError(ValueError):
    """A project folder or file cannot be used; the message names the file and the fix."""


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def read_image(path: PathLike) -> np.ndarray:
    """Read one image or label file.

    Parameters
    ----------
    path : str or PathLike
        ``.tif`` / ``.tiff`` (read with tifffile), ``.png`` / ``.jpg`` /
        ``.jpeg`` (read with imageio), or a ``.zarr`` / ``.ome.zarr`` store
        (read whole: use :func:`~.lazy_images.open_lazy_image` for large ones).

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
    if path.suffix.lower() in ZARR_SUFFIXES and path.is_dir():
        from .lazy_images import open_lazy_image

        return np.asarray(open_lazy_image(path))
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
            array = _read_complete_tiff(path)
        else:
            import imageio.v3 as iio

            array = np.asarray(iio.imread(path))
    except Exception as exc:  # decoders raise many types; one clear message is what helps
        raise ProjectError(
            f"{path} could not be read ({type(exc).__name__}: {exc}); "
            "check that the file is a complete, uncorrupted image or re-export it"
        ) from exc
    if array.size == 0:
        raise ProjectError(
            f"{path} holds no pixels (an empty or cut-short file); "
            "check that the file is a complete image or re-export it"
        )
    return array


def _read_complete_tiff(path: Path) -> np.ndarray:
    """A TIFF's pixels, refusing a file whose image data runs past its end.

    tifffile reads what it can of a cut-short file (no page at all, or
    strips beyond the end) without an error; a silent empty or partial
    array must never pass for an image or labels.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        size = tif.filehandle.size
        for page in tif.pages:
            ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)]
            if ends and max(ends) > size:
                raise ValueError(f"the image data ends at byte {max(ends)} of a {size}-byte file")
        return np.asarray(tif.asarray())


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
            if (base / temporary).exists():
                replace_path(base / temporary, base / path)
            targets.add((base / path).parent)
        for target in targets:
            _sync_folder(target)
        journal.unlink()
        _sync_folder(base)
        finished += 1
    return finished


def replace_path(temporary: Path, path: Path) -> None:
    """Rename a temporary file or folder onto ``path``, replacing what is there.

    A folder (a zarr store) cannot be renamed onto a folder that has files,
    so the old one is first renamed aside (hidden) and removed after.
    """
    if temporary.is_dir() and path.exists():
        import shutil

        aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
        os.replace(path, aside / path.name)
        os.replace(temporary, path)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(temporary, path)


def remove_temporary(temporary: Path) -> None:
    """Remove a temporary file or folder left by a failed write."""
    if temporary.is_dir():
        import shutil

        shutil.rmtree(temporary, ignore_errors=True)
    else:
        temporary.unlink(missing_ok=True)


def _replace_all(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Rename every temporary file onto its target; on error remove those not yet renamed.

    A group of several files is journaled first, so that a kill between two
    renames is completed by :func:`finish_interrupted_writes`.
    """
    journal = _write_journal(pairs) if len(pairs) > 1 else None
    done = 0
    try:
        for temporary, path in pairs:
            replace_path(temporary, path)
            done += 1
    finally:
        for temporary, _ in pairs[done:]:
            remove_temporary(temporary)
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


def files_with_suffix(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """The files of ``folder`` (not hidden) whose suffix is one of ``suffixes``, sorted."""
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
    if path.suffix.lower() in ZARR_SUFFIXES and path.is_dir():
        return [path]
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
    stores = [p for p in path.iterdir() if p.is_dir() and p.suffix.lower() in ZARR_SUFFIXES]
    return sorted([*files_with_suffix(path, IMAGE_SUFFIXES), *stores])
