"""Model files: weights, config, class names, normalisation and label scheme in one file.

Files are written with ``torch.save`` but only ever read with
``torch.load(weights_only=True)``, whose unpickler accepts tensors and plain
containers and refuses anything that would import or call code. The config
travels as JSON text inside the file, never as a pickled object. A file
written by training also holds what continuing the training needs
(:class:`TrainingState`: Adam's state as tensors and plain containers, the
patch sampler's random generator as JSON text); files without it, written
by earlier versions, still load.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import LazyUNetConfig
from .labels import LABEL_SCHEME_VERSION

FORMAT_NAME = "napari-lazyunet"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """The file is not a usable model file; the message says why and what to do."""


@dataclass
class TrainingState:
    """Where training stopped, so that a later call continues it exactly.

    Attributes
    ----------
    optimizer : dict or None
        ``torch.optim.Adam.state_dict()`` after the last step (moments and
        step counts per parameter; its learning rate is not reused).
    sampler_rng : dict or None
        ``bit_generator.state`` of the patch sampler's generator right after
        the last step's batch was drawn (before recalibration drew more).
    seed : int or None
        ``train.seed`` of the run; a call with another seed starts its
        sampling afresh from that seed.
    """

    optimizer: dict[str, Any] | None = None
    sampler_rng: dict[str, Any] | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Checkpoint:
    """Contents of a model file.

    Attributes
    ----------
    config : LazyUNetConfig
        Everything needed to rebuild the network and run it the same way.
    state_dict : dict
        Network weights.
    step : int
        Optimiser steps the weights have seen.
    history : list of dict
        Losses (and validation scores) logged during training.
    fingerprint : dict or None
        The training set's data fingerprint (``DataFingerprint.to_dict``).
    choices : list of dict
        Settings chosen automatically, each ``{"field", "value", "reason"}``.
    training_state : TrainingState or None
        Optimiser and sampler state to continue training from (None in
        files written before it was stored, and before any step).
    """

    config: LazyUNetConfig
    state_dict: dict[str, torch.Tensor]
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None
    choices: list[dict[str, Any]] = field(default_factory=list)
    training_state: TrainingState | None = None


def check_writable(path: str | os.PathLike | None) -> Path:
    """Refuse a model file path that cannot be written, before any work is done.

    The file itself is written later, by renaming a temporary file in its
    folder; so that folder (or, when it does not exist yet, the nearest
    existing folder above it, where it will be created) must accept a new
    file. That is tried, with a temporary file removed at once, which also
    catches what permission bits do not tell (read-only mounts, ACLs).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    CheckpointError
        An empty path, a path that names a folder (an existing one, or one
        ending with a separator), or one whose folder cannot be created or
        written; the message names the path and the reason.
    """
    text = "" if path is None else os.fspath(path)
    if not str(text).strip():
        raise CheckpointError("the model file path is empty; give a file name such as model.pt")
    path = Path(text)
    if path.is_dir() or str(text).endswith(("/", os.sep)):
        raise CheckpointError(
            f"the model file path {text} is a folder; give a file name in it, "
            f"such as {path / 'model.pt'}"
        )
    if path.exists() and not path.is_file():
        raise CheckpointError(f"the model file path {path} exists and is not a regular file")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        if folder.is_symlink():  # a dangling link: mkdir would fail on it
            break
        folder = folder.parent
    if not folder.is_dir():
        raise CheckpointError(f"cannot write the model file {path}: {folder} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".lazyunet-", suffix=".probe")
    except OSError as error:
        raise CheckpointError(
            f"cannot write the model file {path}: {folder} does not accept new files "
            f"({error.strerror or error}); choose another folder or fix its permissions"
        ) from error
    os.close(handle)
    os.remove(probe)
    return path


def _to_cpu(value: Any) -> Any:
    """Tensors of a nested dict / list / tuple moved to the CPU (plain containers kept)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write a model file atomically (a crash mid-write never leaves a broken file).

    Parameters
    ----------
    path : path-like
        Destination, conventionally ``*.pt``.
    checkpoint : Checkpoint
        What to write.

    Returns
    -------
    Path
        The path written.
    """
    path = check_writable(path)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "label_scheme_version": LABEL_SCHEME_VERSION,
        "package_version": __version__,
        "config_json": checkpoint.config.to_json(),
        "history_json": json.dumps(checkpoint.history),
        "fingerprint_json": json.dumps(checkpoint.fingerprint),
        "choices_json": json.dumps(checkpoint.choices),
        "step": int(checkpoint.step),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
    }
    state = checkpoint.training_state
    if state is not None and state.optimizer is not None:
        payload["optimizer_state"] = _to_cpu(state.optimizer)
    if state is not None and state.sampler_rng is not None:
        payload["sampler_json"] = json.dumps({"seed": state.seed, "rng": state.sampler_rng})
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        os.close(handle)
        torch.save(payload, temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise CheckpointError(
            f"could not write the model file {path} ({error.strerror or error})"
        ) from error
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)
    return path


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


def _check_container(path: Path) -> None:
    """Raise :class:`CheckpointError` saying what the file is when it is no complete
    model archive: unreadable, empty, truncated, or another kind of file."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
        complete = zipfile.is_zipfile(path)
    except OSError as error:
        raise CheckpointError(
            f"model file {path} cannot be read ({error.strerror or error}); check its permissions"
        ) from error
    if not head:
        raise CheckpointError(f"model file {path} is empty; train the model again or use a copy")
    if head != _ZIP_MAGIC:
        pickled = head[:1] == b"\x80"
        kind = "a plain pickle or old PyTorch file" if pickled else "another kind of file"
        raise CheckpointError(
            f"{path} is not a napari-lazyunet model file ({kind}); "
            "give a .pt file written by lazyunet train or LazyUNet.save"
        )
    if not complete:
        raise CheckpointError(
            f"{path} is truncated (the model archive ends early, e.g. a copy or download "
            "that did not finish); use a complete copy or train the model again"
        )


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a model file without executing any code stored in it.

    Raises
    ------
    CheckpointError
        Missing, unreadable, empty or truncated file, a file that is not a
        napari-lazyunet model, a file that would need code execution to load
        (refused), or an incompatible version; the message says which.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    _check_container(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} was refused: it holds objects other than weights and plain data "
            f"(it may contain code, which is never executed on load). Details: {error}"
        ) from error
    except Exception as error:  # a damaged archive member raises several types
        raise CheckpointError(
            f"{path} is damaged (a part of the file cannot be read: {error}); "
            "use another copy of the model or train it again"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a napari-lazyunet model file")
    version = payload.get("format_version")
    scheme = payload.get("label_scheme_version")
    if version != FORMAT_VERSION or scheme != LABEL_SCHEME_VERSION:
        raise CheckpointError(
            f"{path} was written by napari-lazyunet {payload.get('package_version', '?')} "
            f"(file format {version}, label scheme {scheme}); this version reads file format "
            f"{FORMAT_VERSION}, label scheme {LABEL_SCHEME_VERSION}. Retrain the model or "
            "install the version that wrote it"
        )
    try:
        config = LazyUNetConfig.from_json(payload["config_json"])
        history = json.loads(payload.get("history_json", "[]"))
        fingerprint = json.loads(payload.get("fingerprint_json", "null"))
        choices = json.loads(payload.get("choices_json", "[]"))
        sampler = json.loads(payload.get("sampler_json", "null"))
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path} has a damaged configuration: {error}") from error
    return Checkpoint(
        config=config,
        state_dict=payload["state_dict"],
        step=int(payload.get("step", 0)),
        history=history,
        fingerprint=fingerprint,
        choices=choices,
        training_state=_training_state(payload.get("optimizer_state"), sampler),
    )


def _training_state(optimizer: Any, sampler: Any) -> TrainingState | None:
    """The stored training state, or None when the file has none (earlier versions)."""
    if not isinstance(optimizer, dict):
        optimizer = None
    if not isinstance(sampler, dict):
        sampler = {}
    if optimizer is None and not sampler.get("rng"):
        return None
    return TrainingState(optimizer, sampler.get("rng"), sampler.get("seed"))
