"""Output folders of ``lazyunet predict``: never written over painted labels.

A prediction run lists every file it writes, with its SHA-256, in
``OUT/prediction.json``; a folder holding label files that no run wrote
(a project, painted labels) is refused.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .files import (
    PathLike,
    ProjectError,
    Writer,
    _replace_all,
    _write_temporary,
    finish_interrupted_writes,
    image_writer,
    json_writer,
    labels_writer,
    remove_temporary,
)
from .labels import OUTPUTS
from .lazy_images import create_zarr_output, digest_tree
from .predict import Prediction
from .project import LABEL_FOLDERS, PROJECT_FILE, PROJECT_YAML

PREDICTION_MANIFEST = "prediction.json"
# Outputs of large images are OME-Zarr stores (folders), not TIFF files.
ZARR_OUTPUT_SUFFIX = ".ome.zarr"


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
        self.inputs: dict[str, dict[str, Any]] = {}
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
                self.inputs = dict(data.get("inputs", {}))
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
                if not path.exists() or digest_tree(path) != recorded[key]:
                    raise ProjectError(
                        f"{path} changed after lazyunet predict wrote it (painted?); "
                        "predictions are never written over painted labels: choose another "
                        "output folder or move the file"
                    )
        return recorded

    @property
    def run_key(self) -> str:
        """A digest of this run's description (model, settings...): what "the same run" means."""
        text = json.dumps(self.run, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def is_done(self, name: str, source: Mapping[str, Any]) -> bool:
        """Whether a run described like this one already wrote ``name`` from this input.

        Parameters
        ----------
        name : str
            The output name.
        source : mapping
            What identifies the input file's content (see :func:`input_signature`).
        """
        entry = self.inputs.get(name)
        if entry != {"source": dict(source), "run": self.run_key}:
            return False
        return any(
            key in self.files and (self.folder / key).exists()
            for key in (f"instances/{name}.tif", f"instances/{name}{ZARR_OUTPUT_SUFFIX}")
        )

    def write_prediction(
        self,
        name: str,
        prediction: Prediction,
        probabilities: bool = False,
        source: Mapping[str, Any] | None = None,
    ) -> list[Path]:
        """Write the outputs of one image together: ``<output>/<name>.tif`` for each of
        :data:`~napari_lazyunet.core.labels.OUTPUTS` the prediction has, and
        ``probabilities/<task>/<name>.tif`` when asked. ``source`` (the
        input's :func:`input_signature`) is recorded for :meth:`is_done`.

        Returns
        -------
        list of Path
            The written files.
        """
        writes = {
            f"{task}/{name}.tif": labels_writer(self.folder / task / f"{name}.tif", value)
            for task in OUTPUTS
            if (value := getattr(prediction, task)) is not None
        }
        if probabilities:
            for task, probs in prediction.probabilities.items():
                target = f"probabilities/{task}/{name}.tif"
                writes[target] = image_writer(self.folder / target, probs)
        return self.write(writes, {name: source} if source is not None else None)

    def write(
        self,
        outputs: Mapping[str, Writer],
        sources: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Path]:
        """Write the outputs of one image together, and the manifest with them.

        Parameters
        ----------
        outputs : mapping of str to writer
            Paths relative to the folder (``"detection/a.tif"``) and the
            writers of their bytes (:func:`labels_writer`, :func:`image_writer`).
        sources : mapping, optional
            Per output name, the :func:`input_signature` of its input, recorded
            so that :meth:`is_done` can skip it in a later run.

        Returns
        -------
        list of Path
            The written files (the manifest not included).
        """
        written: dict[str, Path] = {}
        try:
            for name, write in outputs.items():
                written[name] = _write_temporary(self.folder / name, write)
        except BaseException:
            for temporary in written.values():
                temporary.unlink(missing_ok=True)
            raise
        return self._commit(written, sources)

    @contextmanager
    def large_outputs(
        self,
        name: str,
        shape: tuple[int, int],
        tasks: list[str],
        source: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Zarr arrays for the outputs of one large image, committed together on success.

        The arrays are OME-Zarr stores under hidden temporary names; leaving
        the ``with`` block normally renames them to ``<task>/<name>.ome.zarr``
        with the manifest, an error (Ctrl-C included) removes them, so an
        output folder never holds half an image.

        Parameters
        ----------
        name : str
            Output name of the image (see :func:`output_names`).
        shape : (int, int)
            The plane's ``(Y, X)``.
        tasks : list of str
            Outputs to create, of :data:`~napari_lazyunet.core.labels.OUTPUTS`;
            ``instances`` are int32, the others uint8.
        source : mapping, optional
            The :func:`input_signature` of the input (see :meth:`write`).

        Yields
        ------
        dict of str to zarr.Array
            One zero-filled ``(Y, X)`` array per task.
        """
        temporaries: dict[str, Path] = {}
        arrays: dict[str, Any] = {}
        try:
            for task in tasks:
                target = self.folder / task / f"{name}{ZARR_OUTPUT_SUFFIX}"
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = Path(
                    tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
                )
                temporaries[f"{task}/{target.name}"] = temporary
                dtype = "int32" if task == "instances" else "uint8"
                arrays[task] = create_zarr_output(temporary, shape, dtype)
            yield arrays
        except BaseException:
            for temporary in temporaries.values():
                remove_temporary(temporary)
            raise
        self._commit(temporaries, {name: source} if source is not None else None)

    def _commit(
        self, written: Mapping[str, Path], sources: Mapping[str, Any] | None = None
    ) -> list[Path]:
        """Rename complete temporaries onto their targets together with the manifest."""
        pairs = [(temporary, self.folder / name) for name, temporary in written.items()]
        try:
            files = dict(self.files)
            files.update({name: digest_tree(tmp) for name, tmp in written.items()})
            # Keep only files that are still there; the new ones are about to be.
            files = {k: v for k, v in files.items() if k in written or (self.folder / k).exists()}
            inputs = dict(self.inputs)
            for name, source in (sources or {}).items():
                inputs[name] = {"source": dict(source), "run": self.run_key}
            manifest = {
                **self.run,
                "date": _now(),
                "files": [{"path": k, "sha256": v} for k, v in sorted(files.items())],
                "inputs": inputs,
            }
            pairs.append((_write_temporary(self.manifest, json_writer(manifest)), self.manifest))
        except BaseException:
            for temporary, _ in pairs:
                remove_temporary(temporary)
            raise
        _replace_all(pairs)
        self.files, self.inputs = files, inputs
        return [path for _, path in pairs[:-1]]


def input_signature(path: PathLike) -> dict[str, Any]:
    """What identifies an input's content cheaply: resolved path, size and modification time.

    A zarr store (a folder) counts the sizes and latest modification of its files.
    """
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    stats = [f.stat() for f in files]
    return {
        "path": str(path.resolve()),
        "bytes": sum(st.st_size for st in stats),
        "mtime_ns": max((st.st_mtime_ns for st in stats), default=0),
    }


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).astimezone().isoformat(timespec="seconds")


def _stem(path: Path) -> str:
    """``a`` for ``a.tif``, ``a.zarr`` and ``a.ome.zarr``."""
    if path.name.lower().endswith(ZARR_OUTPUT_SUFFIX):
        return path.name[: -len(ZARR_OUTPUT_SUFFIX)]
    return path.stem


def output_names(files: list[Path]) -> tuple[list[str], list[str]]:
    """Output name of every input file, and a note per stem that several files share.

    Raises ``ValueError`` when two files would still get the same name.

    Outputs are named by the file stem (``a.tif`` -> ``a``); files that share
    a stem in one folder (``a.tif`` and ``a.png``) are named by their full
    file name instead (``a.tif``, ``a.png``), so no output overwrites another.
    """
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(_stem(path), []).append(path)
    names = [path.name if len(by_stem[_stem(path)]) > 1 else _stem(path) for path in files]
    notes = [
        f"{' and '.join(p.name for p in group)} share the name {stem!r}; their outputs are "
        f"named by the full file name ({', '.join(p.name + '.tif' for p in group)})"
        for stem, group in by_stem.items()
        if len(group) > 1
    ]
    seen: dict[str, Path] = {}
    for path, name in zip(files, names, strict=True):
        if name in seen:
            raise ValueError(
                f"{seen[name].name} and {path.name} would both be written as {name}.tif; "
                "rename one of them"
            )
        seen[name] = path
    return names, notes
