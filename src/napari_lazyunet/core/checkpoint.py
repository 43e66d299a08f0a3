"""Model files: weights, config, class names, normalisation and label scheme in one file.

Files are written with ``torch.save`` but only ever read with
``torch.load(weights_only=True)``, whose unpickler accepts tensors and plain
containers and refuses anything that would import or call code. The config
travels as JSON text inside the file, never as a pickled object.
"""

from __future__ import annotations

import json
import os
import tempfile
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
    """

    config: LazyUNetConfig
    state_dict: dict[str, torch.Tensor]
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None
    choices: list[dict[str, Any]] = field(default_factory=list)


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a model file without executing any code stored in it.

    Raises
    ------
    CheckpointError
        Missing file, a file that is not a napari-lazyunet model, a file that
        would need code execution to load (refused), or an incompatible version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises several types
        raise CheckpointError(
            f"{path} was refused: it is not a plain napari-lazyunet model file "
            f"(it may contain code, which is never executed on load). Details: {error}"
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
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path} has a damaged configuration: {error}") from error
    return Checkpoint(
        config=config,
        state_dict=payload["state_dict"],
        step=int(payload.get("step", 0)),
        history=history,
        fingerprint=fingerprint,
        choices=choices,
    )
