"""Model files of :class:`~napari_lazyunet.api.LazyUNet`: save, load, compatibility.

:class:`ModelFilesMixin` writes a model (weights, configuration, what
training measured and chose, and the state that lets training continue) to
one file through :mod:`napari_lazyunet.core.checkpoint`, reads it back
without executing code from it, and says whether a model fits images and
classes it is given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from .config import ModelConfig
from .core import checkpoint as _checkpoint
from .core.autoconfig import Choice
from .core.fingerprint import DataFingerprint
from .core.labels import LabelError

__all__ = ["ModelFilesMixin"]


class ModelFilesMixin:
    """Saving, loading and checking a model (mixed into ``LazyUNet``).

    Uses the model's ``config``, ``network``, ``steps_done``, ``history``,
    ``fingerprint``, ``choices`` and ``training_state``.
    """

    def save(self, path: str | os.PathLike) -> Path:
        """Write weights, config, class names and normalisation to one file.

        The file also holds :attr:`training_state`, so that :meth:`load`
        and :meth:`fit` continue the training where it stopped.
        """
        if self.network is None:
            raise ValueError("this model has no network yet; call fit() before save()")
        state = _checkpoint.Checkpoint(
            self.config,
            self.network.state_dict(),
            self.steps_done,
            self.history,
            fingerprint=None if self.fingerprint is None else self.fingerprint.to_dict(),
            choices=[c.to_dict() for c in self.choices],
            training_state=self.training_state,
        )
        return _checkpoint.save_checkpoint(path, state)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Self:
        """Read a model file written by :meth:`save` (never executes code from it)."""
        saved = _checkpoint.load_checkpoint(path)
        model = cls(saved.config)
        try:
            model.network.load_state_dict(saved.state_dict)
        except RuntimeError as error:
            raise _checkpoint.CheckpointError(
                f"{path}: the weights do not match the stored configuration ({error})"
            ) from error
        model.network.eval()
        model.history = list(saved.history)
        model.steps_done = saved.step
        if saved.fingerprint is not None:
            model.fingerprint = DataFingerprint.from_dict(saved.fingerprint)
        model.choices = [Choice(**c) for c in saved.choices]
        model.training_state = saved.training_state
        return model

    def check_compatible(
        self, class_names: Sequence[str] | None = None, in_channels: int | None = None
    ) -> None:
        """Raise :class:`LabelError` if the model was trained for other classes or channels."""
        mc: ModelConfig = self.config.model
        if class_names is not None and tuple(class_names) != mc.class_names:
            raise LabelError(
                f"the model was trained for classes {list(mc.class_names)}, not "
                f"{list(class_names)}; train a new model or rename the classes to match"
            )
        if in_channels is not None and in_channels != mc.in_channels:
            raise LabelError(
                f"the model expects {mc.in_channels} channel(s) but the image has {in_channels}; "
                "use a model trained on images like this one"
            )
