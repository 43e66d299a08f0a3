"""What the Predict widget's worker does: predict each target, yield progress and results.

Runs in a napari thread worker, so nothing here touches a layer's display:
results go back to the widget as items it shows on the main thread. Three
kinds of target:

- an image layer that fits in memory: predicted whole, shown as layers;
- a large image layer (see :func:`~.large_images.is_large_layer`): predicted
  block by block into OME-Zarr stores in a prediction folder, shown as lazy layers;
- a file of a folder: predicted into the output folder, as ``lazyunet predict`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.batch import FileResult, iter_predict_file, iter_predict_large
from napari_lazyunet.core.labels import LabelError
from napari_lazyunet.core.predict import Prediction
from napari_lazyunet.core.prediction_folder import PredictionFolder

from ._notify import PluginInputError
from .large_images import layer_source

__all__ = ["LargeResult", "Progress", "Result", "Target", "Written", "predict_targets"]


@dataclass
class Target:
    """One image to predict: a layer of the viewer or a file written to a folder.

    Attributes
    ----------
    name : str
        Shown in messages.
    layer : napari.layers.Image or None
        The input layer (results become layers).
    path : Path or None
        The input file (results are written to ``out``).
    out : PredictionFolder or None
        Output folder of a file, or of a large layer's OME-Zarr outputs.
    output_name : str
        File name of its outputs in ``out`` (the stem, unless two inputs share it).
    """

    name: str
    layer: Image | None = None
    path: Path | None = None
    out: PredictionFolder | None = None
    output_name: str = ""


@dataclass(frozen=True)
class Progress:
    index: int
    total: int
    fraction: float
    name: str


@dataclass(frozen=True)
class Result:
    """A layer's prediction, in memory."""

    target: Target
    prediction: Prediction


@dataclass(frozen=True)
class LargeResult:
    """A large layer's prediction, written as OME-Zarr stores."""

    target: Target
    result: FileResult


@dataclass(frozen=True)
class Written:
    """The files written for one file of a folder."""

    target: Target
    files: list[Path]


def predict_targets(
    model: LazyUNet, targets: list[Target], options: dict[str, Any], probabilities: bool
) -> Iterator[Any]:
    """Worker body: predict every target, yielding :class:`Progress` and results."""
    for index, target in enumerate(targets):
        try:
            if target.layer is None:
                events = iter_predict_file(
                    model,
                    target.path,
                    target.out,
                    target.output_name,
                    probabilities=probabilities,
                    **options,
                )
            elif target.out is not None:
                source = layer_source(target.layer)
                events = iter_predict_large(
                    model, source, target.out, target.output_name, **options
                )
            else:
                events = model.iter_predict(np.asarray(target.layer.data), **options)
            result = None
            for event in events:
                result = event.result
                if result is None:
                    yield Progress(index, len(targets), event.fraction, target.name)
        except LabelError as error:
            raise PluginInputError(f"{target.name}: {error}") from error
        if target.layer is None:
            yield Written(target, result.files)
        elif target.out is not None:
            yield LargeResult(target, result)
        else:
            yield Result(target, result)
