"""The rules of the project folder's layout (``docs/project-format.md``).

What :mod:`.project` reads and :mod:`.project_writer` writes share: the
names of the settings file and of the label folders, the settings file
itself (``project.json``, or a hand-written ``project.yaml`` that is only
read) with its keys checked, image names that can be file names, the
matching of files by stem and the channel count of the images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .files import IMAGE_SUFFIXES, ProjectError, json_writer, write_atomic
from .labels import TASKS

__all__ = [
    "LABEL_FOLDERS",
    "PROJECT_FILE",
    "PROJECT_YAML",
    "by_stem",
    "check_name",
    "infer_channels",
    "read_settings",
    "resolve_names",
    "write_settings",
]

LABEL_FOLDERS = TASKS  # one folder per task
PROJECT_FILE = "project.json"
PROJECT_YAML = "project.yaml"


def by_stem(files: list[Path], what: str) -> dict[str, Path]:
    """Files by stem (``detection/NAME.png`` labels ``images/NAME.tif``).

    Raises
    ------
    ProjectError
        Two files of ``what`` (a folder, for the message) share a stem.
    """
    found: dict[str, Path] = {}
    for f in files:
        if f.stem in found:
            raise ProjectError(
                f"{what} has two files for {f.stem!r}: {found[f.stem].name} and {f.name}; "
                "keep only one of them"
            )
        found[f.stem] = f
    return found


def read_settings(folder: Path) -> tuple[dict[str, Any], Path | None]:
    """The settings of a project folder, checked, and the file they came from.

    Returns
    -------
    settings : dict
        The keys of ``project.json`` (or of ``project.yaml`` when there is no
        JSON file); empty when the folder has neither.
    source : Path or None
        The file read.

    Raises
    ------
    ProjectError
        Invalid syntax, unknown keys or values of the wrong type; YAML
        without PyYAML installed.
    """
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


def resolve_names(entries: list[str], names: set[str], key: str, source: Path | None) -> set[str]:
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


def infer_channels(images: list[np.ndarray], names: list[str], folder: Path) -> int:
    """Channels per pixel shared by all ``images`` (1 for gray, and for no image).

    Raises
    ------
    ProjectError
        The images have different channel counts.
    """
    counts = [1 if img.ndim == 2 else int(img.shape[-1]) for img in images]
    channels = set(counts)
    if len(channels) > 1:
        per_image = dict(zip(names, counts, strict=True))
        raise ProjectError(
            f"images in {folder / 'images'} have different channel counts {per_image}; "
            "convert them to one layout (all gray or all RGB)"
        )
    return channels.pop() if channels else 1


def check_name(name: str) -> str:
    """The file stem of image ``name`` (a stem, or a file name with an image suffix).

    Raises
    ------
    ProjectError
        ``name`` is empty, hidden or holds a folder.
    """
    if not name or name != Path(name).name or name.startswith("."):
        raise ProjectError(
            f"image name {name!r} cannot be used as a file name; "
            "use a plain name without folders, e.g. 'img_003'"
        )
    return Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name


def write_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Write ``settings`` to the folder's ``project.json`` atomically."""
    write_atomic({folder / PROJECT_FILE: json_writer(settings)})
