"""Predicting image files into a prediction folder: one file, or a folder of them.

What ``lazyunet predict`` and the Predict widget's folder mode do, for
scripts: every image is predicted and its outputs written together into a
:class:`~napari_lazyunet.core.prediction_folder.PredictionFolder`. Images
whose planes exceed :data:`~napari_lazyunet.core.lazy_images.LARGE_IMAGE_PIXELS`
(and every zarr / OME-Zarr input) are read lazily and predicted block by
block into OME-Zarr outputs, so a whole-slide image needs memory for a few
blocks, not for the image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.blockwise import BlockwiseResult
from .core.files import PathLike, read_image
from .core.lazy_images import is_large, is_zarr_path, open_lazy_image, pyramid_levels
from .core.predict import PredictEvent, Prediction
from .core.prediction_folder import ZARR_OUTPUT_SUFFIX, PredictionFolder

if TYPE_CHECKING:
    from .api import LazyUNet

__all__ = ["FileResult", "is_large_file", "iter_predict_file", "iter_predict_large"]


@dataclass(frozen=True)
class FileResult:
    """What predicting one file wrote.

    Attributes
    ----------
    name : str
        The output name in the prediction folder.
    n_instances : int
        Instances found (in every plane together).
    files : list of Path
        The written outputs (TIFF files, or OME-Zarr stores for a large image).
    prediction : Prediction or None
        The outputs in memory, for an image that was not predicted block by block.
    seam_splits : int
        For a large image, pixel pairs along block borders where the two
        blocks disagreed on whether an object continues (see
        :class:`~napari_lazyunet.core.blockwise.BlockwiseResult`).
    instance_classes : dict of int to int
        For a large image, the class of each instance.
    """

    name: str
    n_instances: int
    files: list[Path]
    prediction: Prediction | None = None
    seam_splits: int = 0
    instance_classes: dict[int, int] = field(default_factory=dict)


def is_large_file(path: PathLike, in_channels: int) -> bool:
    """Whether a file is read lazily and predicted block by block into OME-Zarr outputs.

    Every zarr store is; a TIFF is when its planes are larger than
    :data:`~napari_lazyunet.core.lazy_images.LARGE_IMAGE_PIXELS`; other
    formats are read whole.
    """
    path = Path(path)
    if is_zarr_path(path):
        return True
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        shape = pyramid_levels(path)[0]
    except Exception:  # not a TIFF tifffile can parse: reading it whole reports why
        return False
    return is_large(shape, in_channels)


def iter_predict_large(
    model: LazyUNet, image: Any, folder: PredictionFolder, name: str, **predict_options: Any
) -> Iterator[PredictEvent]:
    """Predict one large plane block by block into OME-Zarr outputs in ``folder``.

    Parameters
    ----------
    model : LazyUNet
        A trained model.
    image : array-like
        ``(Y, X)`` or ``(Y, X, C)``, read one block at a time (a
        :class:`~napari_lazyunet.core.lazy_images.LazyImage`, a dask or zarr array).
    folder : PredictionFolder
        Where the outputs go: ``<output>/<name>.ome.zarr``, all renamed into
        place together when every block is done.
    name : str
        The output name.
    **predict_options
        Fields of :class:`~napari_lazyunet.config.PredictConfig`.

    Yields
    ------
    PredictEvent
        Progress; the last event's ``result`` is a :class:`FileResult`.
        Closing the generator early writes nothing.
    """
    result: Any = None
    with folder.large_outputs(name, tuple(image.shape[:2]), model.output_names) as arrays:
        for event in model.iter_predict_blockwise(image, arrays, **predict_options):
            if event.result is None:
                yield event
            result = event.result
    assert isinstance(result, BlockwiseResult)
    suffix = ZARR_OUTPUT_SUFFIX
    files = [folder.folder / task / f"{name}{suffix}" for task in model.output_names]
    done = FileResult(
        name, result.n_instances, files, None, result.seam_splits, result.instance_classes
    )
    yield PredictEvent(0, 1, 1, 1, done)


def iter_predict_file(
    model: LazyUNet,
    path: PathLike,
    folder: PredictionFolder,
    name: str,
    *,
    probabilities: bool = False,
    **predict_options: Any,
) -> Iterator[PredictEvent]:
    """Predict one image file and write its outputs into ``folder`` together.

    Parameters
    ----------
    model : LazyUNet
        A trained model.
    path : str or PathLike
        An image file or a zarr / OME-Zarr store.
    folder : PredictionFolder
        Where the outputs go (``<output>/<name>.tif``, or
        ``<output>/<name>.ome.zarr`` for a large image).
    name : str
        The output name (see :func:`~napari_lazyunet.core.prediction_folder.output_names`).
    probabilities : bool
        Also write the probabilities (images read whole only).
    **predict_options
        Fields of :class:`~napari_lazyunet.config.PredictConfig`.

    Yields
    ------
    PredictEvent
        Progress; the last event's ``result`` is a :class:`FileResult`, set
        once the outputs are written. Closing the generator early writes nothing.
    """
    if is_large_file(path, model.config.model.in_channels):
        yield from iter_predict_large(model, open_lazy_image(path), folder, name, **predict_options)
        return
    image = read_image(path)
    prediction = None
    for event in model.iter_predict(image, **predict_options):
        if event.result is None:
            yield event
        prediction = event.result
    assert prediction is not None
    files = folder.write_prediction(name, prediction, probabilities=probabilities)
    count = sum(len(classes) for classes in prediction.instance_classes)
    yield PredictEvent(0, 1, 1, 1, FileResult(name, count, files, prediction))
