"""Scripting facade: the one API that notebooks, the command line and the widgets call.

:class:`LazyUNet` is defined here (its model files in :mod:`.model_files`);
:func:`make_labels` and :func:`refine` come from :mod:`.labelling` and
:func:`split_validation` from :mod:`.core.training_set`: import them all
from this module.

Examples
--------
Train on the built-in sample and predict a held-out image:

>>> from napari_lazyunet.api import LazyUNet
>>> from napari_lazyunet.sample.synthetic import make_foam_sample
>>> sample = make_foam_sample(n_images=3, shape=(64, 64), seed=0)
>>> model = LazyUNet(class_names=sample.class_names, base_channels=4, depth=2)
>>> model = model.fit(
...     sample.images[:2],
...     detection=sample.detection[:2],
...     separation=sample.separation[:2],
...     segmentation=[sample.classes[0], None],
...     steps=2, batch_size=2, patch_size=32,
... )
>>> result = model.predict(sample.images[2])
>>> result.instances.shape
(64, 64)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .config import LazyUNetConfig, PredictConfig
from .core import checkpoint as _checkpoint
from .core.autoconfig import Choice, configure_training
from .core.blockwise import iter_predict_blockwise as _iter_predict_blockwise
from .core.devices import resolve_device
from .core.fingerprint import DataFingerprint
from .core.health import TrainingHealthWarning
from .core.labels import OUTPUTS, ImageLabels
from .core.model import build_model
from .core.predict import PredictEvent, Prediction
from .core.predict import iter_predict as _iter_predict
from .core.train import CalibrationEvent, TrainEvent, TrainingDiverged
from .core.train import iter_train as _iter_train
from .core.training_set import split_validation
from .labelling import ArrayOrList, _as_list, make_labels, refine
from .labelling import _per_image as _per_image
from .model_files import ModelFilesMixin

__all__ = [
    "CalibrationEvent",
    "Choice",
    "DataFingerprint",
    "ImageLabels",
    "LazyUNet",
    "LazyUNetConfig",
    "PredictEvent",
    "Prediction",
    "TrainEvent",
    "TrainingDiverged",
    "TrainingHealthWarning",
    "make_labels",
    "refine",
    "split_validation",
]


class LazyUNet(ModelFilesMixin):
    """A multi-task U-Net (or its single-task baseline) with its settings.

    Parameters
    ----------
    config : LazyUNetConfig, optional
        Full configuration; defaults are the paper's where it gives them.
    **model_options
        Shortcuts for fields of ``config.model`` (``class_names``,
        ``in_channels``, ``base_channels``, ``depth``, ``multitask``).

    Examples
    --------
    >>> model = LazyUNet(class_names=("nucleus",), in_channels=1)
    >>> model.config.model.n_classes
    1
    """

    def __init__(self, config: LazyUNetConfig | None = None, **model_options: Any):
        config = config or LazyUNetConfig()
        if model_options:
            config = config.replace(model=model_options)
        self.config = config
        self.network: torch.nn.Module | None = None
        if config.model.is_resolved:
            self._build()
        #: What the training set's labels said (:class:`~.core.fingerprint.DataFingerprint`).
        self.fingerprint: DataFingerprint | None = None
        #: Settings chosen automatically, with their reasons (:class:`~.core.autoconfig.Choice`).
        self.choices: list[Choice] = []
        self.history: list[dict] = []
        self.steps_done = 0
        #: Adam's state and the sampler's position after the last step
        #: (:class:`~.core.checkpoint.TrainingState`), saved with the model,
        #: so that the next :meth:`fit` continues the run where it stopped.
        self.training_state: _checkpoint.TrainingState | None = None

    def _build(self) -> None:
        # Seed before building so two models with the same config start identical.
        torch.manual_seed(self.config.train.seed)
        self.network = build_model(self.config.model)

    def configure(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        labels: Sequence[ImageLabels],
        names: Sequence[str] | None = None,
    ) -> list[Choice]:
        """Measure the training set and fill every setting left to auto (None).

        :meth:`fit` calls it when the model has no fingerprint yet; call it
        first to see the settings before training (``fit`` then does not
        measure the set again). Settings already chosen (by the user, or by an earlier
        call) are kept; the network is built here when its width or depth
        was left to auto.

        Returns
        -------
        list of Choice
            The settings chosen by this call, each with its reason (also
            added to :attr:`choices`).
        """
        images = _as_list(images)
        device = resolve_device(self.config.train.device)
        config, fingerprint, choices = configure_training(
            self.config, images, list(labels), device, names
        )
        self.config = config
        self.fingerprint = fingerprint
        self.choices = [*self.choices, *choices]
        if self.network is None:
            self._build()
        return choices

    # ------------------------------------------------------------------ training
    def iter_fit(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        detection: ArrayOrList = None,
        separation: ArrayOrList = None,
        segmentation: ArrayOrList = None,
        strong: Sequence[bool] | None = None,
        sparse: Sequence[bool] | None = None,
        *,
        labels: Sequence[ImageLabels] | None = None,
        names: Sequence[str] | None = None,
        validation: tuple[Sequence[np.ndarray], Sequence[ImageLabels]] | None = None,
        checkpoint: str | os.PathLike | None = None,
        **train_options: Any,
    ) -> Iterator[TrainEvent | CalibrationEvent]:
        """Train, yielding a :class:`TrainEvent` per step; close the generator to stop.

        After the last step, a :class:`CalibrationEvent` comes before each
        stage of the calibration (BatchNorm statistics, thresholds, health
        checks), then the last step's :class:`TrainEvent`.

        Parameters are those of :meth:`fit`. Training continues from the
        current weights, Adam's state and the sampler's position (also
        after :meth:`load`), so calling it again continues the run or
        fine-tunes. The training set is measured (:meth:`configure`) only
        when the model has no fingerprint yet; call :meth:`configure`
        first to measure new data again.
        """
        if checkpoint is not None:
            _checkpoint.check_writable(checkpoint)  # before any work
        if train_options:
            self.config = self.config.replace(train=train_options)
        images = _as_list(images)
        if labels is None:
            labels = make_labels(len(images), detection, separation, segmentation, strong, sparse)
        elif any(v is not None for v in (detection, separation, segmentation, strong, sparse)):
            raise TypeError("give either labels=[ImageLabels, ...] or per-task arrays, not both")
        if self.network is None or self.fingerprint is None:
            self.configure(images, labels, names)
        if self.training_state is None:
            self.training_state = _checkpoint.TrainingState()
        generator = _iter_train(
            self.network,
            self.config,
            images,
            labels,
            names=names,
            validation=validation,
            checkpoint_path=checkpoint,
            start_step=self.steps_done,
            history=self.history,
            on_calibrated=self._use_calibrated,
            choices=self.choices,
            training_state=self.training_state,
            fingerprint=self.fingerprint,
        )
        try:
            for event in generator:
                if isinstance(event, TrainEvent):
                    self.steps_done = event.step
                yield event
        finally:
            generator.close()

    def _use_calibrated(self, config: LazyUNetConfig) -> None:
        """Keep the thresholds that training calibrated."""
        self.config = self.config.replace(
            predict={
                key: getattr(config.predict, key)
                for key in (
                    "separation_threshold",
                    "segmentation_threshold",
                    "detection_threshold",
                    "separate_touching",
                )
            }
        )

    def fit(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        detection: ArrayOrList = None,
        separation: ArrayOrList = None,
        segmentation: ArrayOrList = None,
        strong: Sequence[bool] | None = None,
        sparse: Sequence[bool] | None = None,
        *,
        labels: Sequence[ImageLabels] | None = None,
        names: Sequence[str] | None = None,
        validation: tuple[Sequence[np.ndarray], Sequence[ImageLabels]] | None = None,
        checkpoint: str | os.PathLike | None = None,
        callback: Callable[[TrainEvent], object] | None = None,
        **train_options: Any,
    ) -> LazyUNet:
        """Train on lazy labels (blocking).

        Parameters
        ----------
        images : array or list of arrays
            ``(Y, X)`` gray or ``(Y, X, C)`` channels-last images.
        detection : list of (array or None), optional
            Inner regions: 0 not labelled, ``1..C`` class, ``C+1`` explicit background.
        separation : list of (array or None), optional
            Interface scribbles (1) between touching objects.
        segmentation : list of (array or None), optional
            Exact class masks (0 background, ``1..C``).
        strong : list of bool, optional
            Which segmentation masks are exact (default: those given).
        sparse : list of bool, optional
            Images whose unpainted detection pixels are unknown.
        labels : list of ImageLabels, optional
            All labels of each image in one object (as read by
            :func:`~napari_lazyunet.core.project.load_project`), instead of the
            per-task arguments above.
        names : list of str, optional
            Names for error messages.
        validation : (images, list of ImageLabels), optional
            Scored during training (see :class:`TrainEvent`).
        checkpoint : path-like, optional
            Model file kept up to date during training: at least every
            ``checkpoint_interval`` minutes, after every validation, at the
            end and on stop; never with weights that diverged. A path that
            cannot be written (a folder, a folder without write permission,
            an empty string) is refused before training starts
            (:class:`~.core.checkpoint.CheckpointError`).
        callback : callable, optional
            Called with each :class:`TrainEvent`; return ``False`` to stop.
        **train_options
            Fields of :class:`~napari_lazyunet.config.TrainConfig` to change
            (``steps``, ``batch_size``, ``patch_size``, ``device``, ...).

        Returns
        -------
        LazyUNet
            ``self``, trained.

        Raises
        ------
        LabelError
            Invalid labels (before any step).
        CheckpointError
            ``checkpoint`` cannot be written (before any step).
        TrainingDiverged
            (a ``FloatingPointError``) The loss or the weights became NaN
            or infinite; ``checkpoint`` keeps the last good model written
            (or what it held before).
        """
        generator = self.iter_fit(
            images,
            detection,
            separation,
            segmentation,
            strong,
            sparse,
            labels=labels,
            names=names,
            validation=validation,
            checkpoint=checkpoint,
            **train_options,
        )
        try:
            for event in generator:
                if not isinstance(event, TrainEvent):
                    continue  # calibration progress, shown by iter_fit's consumers
                if callback is not None and callback(event) is False:
                    break
        finally:
            generator.close()
        return self

    # ---------------------------------------------------------------- prediction
    def _predict_config(self, predict_options: dict[str, Any]) -> PredictConfig:
        """Prediction settings with ``predict_options`` applied; refuses an untrained model."""
        if self.network is None:
            raise ValueError("this model has not been trained; call fit() or load a model file")
        if not predict_options:
            return self.config.predict
        return self.config.replace(predict=predict_options).predict

    def iter_predict(self, image: np.ndarray, **predict_options: Any) -> Iterator[PredictEvent]:
        """Predict with progress events; the last event's ``result`` is the :class:`Prediction`."""
        config = self._predict_config(predict_options)
        return _iter_predict(
            self.network,
            np.asarray(image),
            in_channels=self.config.model.in_channels,
            normalization=self.config.normalization,
            config=config,
            device=resolve_device(config.device),
        )

    def iter_predict_blockwise(
        self, image: Any, outputs: dict[str, Any], **predict_options: Any
    ) -> Iterator[PredictEvent]:
        """Predict one large plane block by block into arrays, in bounded memory.

        Parameters
        ----------
        image : array-like
            ``(Y, X)`` or ``(Y, X, C)``, read one block at a time: a dask or
            zarr array (:func:`~napari_lazyunet.core.lazy_images.open_lazy_image`)
            or a memory map.
        outputs : dict of str to array
            Zero-filled ``(Y, X)`` arrays, e.g. zarr: ``"segmentation"``
            (uint8), ``"instances"`` (int32), and ``"detection"`` and
            ``"separation"`` (uint8) when the model predicts them (see
            :meth:`output_names`).
        **predict_options
            As for :meth:`predict`; ``block_size`` bounds the memory.

        Yields
        ------
        PredictEvent
            Progress; the last event's ``result`` is a
            :class:`~napari_lazyunet.core.blockwise.BlockwiseResult`.
        """
        config = self._predict_config(predict_options)
        channels = self.config.model.in_channels
        if len(image.shape) != (3 if channels > 1 else 2):
            raise ValueError(
                f"block-wise prediction takes one plane, (Y, X) for a gray model or "
                f"(Y, X, {channels}); got shape {tuple(image.shape)}"
            )
        return _iter_predict_blockwise(
            self.network,
            image,
            outputs,
            in_channels=channels,
            normalization=self.config.normalization,
            config=config,
            device=resolve_device(config.device),
        )

    @property
    def output_names(self) -> list[str]:
        """The outputs this model predicts, of :data:`~napari_lazyunet.core.labels.OUTPUTS`."""
        return [*(OUTPUTS if self.config.model.multitask else ("segmentation", "instances"))]

    def predict(self, image: np.ndarray, **predict_options: Any) -> Prediction:
        """Detection, segmentation, separation and instances for an image or stack.

        Parameters
        ----------
        image : ndarray
            ``(..., Y, X)`` gray or ``(..., Y, X, C)``; leading axes are planes.
        **predict_options
            Fields of :class:`~napari_lazyunet.config.PredictConfig`
            (``tile_size``, ``overlap``, ``batch_size``, ``device``, ``min_instance_size``,
            ``separation_threshold``, ``segmentation_threshold``, ``block_size``,
            ``input_scale``).

        Returns
        -------
        Prediction
        """
        result = None
        for event in self.iter_predict(image, **predict_options):
            result = event.result
        return result

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the object classes (label value ``k`` is ``class_names[k-1]``)."""
        return self.config.model.class_names

    def __repr__(self) -> str:
        mc = self.config.model
        kind = "multi-task U-Net" if mc.multitask else "U-Net"
        return (
            f"LazyUNet({kind}, classes={list(mc.class_names)}, in_channels={mc.in_channels}, "
            f"width={mc.base_channels or 'auto'}, depth={mc.depth or 'auto'}, "
            f"steps_done={self.steps_done})"
        )
