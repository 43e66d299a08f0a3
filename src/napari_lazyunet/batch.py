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
from .core.files import PathLike, ProjectError, read_image
from .core.lazy_images import is_large, is_zarr_path, open_lazy_image, pyramid_levels
from .core.predict import PredictEvent, Prediction
from .core.prediction_folder import ZARR_OUTPUT_SUFFIX, PredictionFolder, input_signature

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
    except (OSError, ValueError, IndexError, KeyError):  # reading it whole says why
        return False
    return is_large(shape, in_channels)


def iter_predict_large(
    model: LazyUNet,
    image: Any,
    folder: PredictionFolder,
    name: str,
    source: dict[str, Any] | None = None,
    **predict_options: Any,
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
    source : dict, optional
        The input's :func:`~napari_lazyunet.core.prediction_folder.input_signature`,
        recorded so that a later run can skip it.
    **predict_options
        Fields of :class:`~napari_lazyunet.config.PredictConfig`.

    Yields
    ------
    PredictEvent
        Progress; the last event's ``result`` is a :class:`FileResult`.
        Closing the generator early writes nothing.
    """
    result: Any = None
    shape = tuple(image.shape[:2])
    with folder.large_outputs(name, shape, model.output_names, source) as arrays:
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
    source = input_signature(path)
    if is_large_file(path, model.config.model.in_channels):
        image = open_lazy_image(path)
        yield from iter_predict_large(model, image, folder, name, source, **predict_options)
        return
    image = read_image(path)
    prediction = None
    for event in model.iter_predict(image, **predict_options):
        if event.result is None:
            yield event
        prediction = event.result
    assert prediction is not None
    files = folder.write_prediction(name, prediction, probabilities, source)
    count = sum(len(classes) for classes in prediction.instance_classes)
    yield PredictEvent(0, 1, 1, 1, FileResult(name, count, files, prediction))


@dataclass(frozen=True)
class FolderItem:
    """One input of :func:`iter_predict_folder`, once it is finished.

    Attributes
    ----------
    path : Path
        The input file.
    name : str
        Its output name.
    result : FileResult or None
        What was written; None when skipped or failed.
    skipped : bool
        An earlier run with the same model and settings wrote it from the same input.
    error : str or None
        Why it could not be predicted (unreadable, wrong channels...).
    """

    path: Path
    name: str
    result: FileResult | None = None
    skipped: bool = False
    error: str | None = None


def _predict_on_worker(model: LazyUNet, path: str, options: dict[str, Any]) -> Prediction:
    """A dask task: one image predicted in memory, with the worker's share of the threads."""
    import torch

    threads = torch.get_num_threads()
    try:
        from distributed import get_worker

        torch.set_num_threads(max(1, get_worker().state.nthreads))
    except (ImportError, ValueError):
        pass  # not on a distributed worker: keep the process's threads
    try:
        return model.predict(read_image(path), **options)
    finally:
        torch.set_num_threads(threads)


def _client(scheduler: Any):
    """A dask.distributed Client: the one given, one for an address, or a local cluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise ValueError(
            "predicting on a dask cluster needs dask.distributed: pip install distributed"
        ) from error
    if isinstance(scheduler, Client):
        return scheduler, False
    if scheduler == "processes":
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        cluster = LocalCluster(n_workers=max(1, cores or 1), threads_per_worker=1, processes=True)
        return Client(cluster), True
    return Client(str(scheduler)), True


def iter_predict_folder(
    model: LazyUNet,
    files: list[Path],
    names: list[str],
    folder: PredictionFolder,
    *,
    scheduler: Any = None,
    probabilities: bool = False,
    resume: bool = True,
    **predict_options: Any,
) -> Iterator[PredictEvent | FolderItem]:
    """Predict image files into a prediction folder, here or on a dask cluster.

    Parameters
    ----------
    model : LazyUNet
        A trained model.
    files, names : list
        The inputs and their output names (see
        :func:`~napari_lazyunet.core.prediction_folder.output_names`).
    folder : PredictionFolder
        Where the outputs go; its ``run`` describes the model and settings.
    scheduler : None, str or distributed.Client
        None: one image after another in this process (the network uses
        every core). ``"processes"``: a local dask cluster of one single-threaded
        worker per core. An address (``"tcp://host:8786"``) or a Client: that
        cluster, whose workers must see the input paths. Images are
        predicted on the workers and written here, so the folder and its
        manifest have one writer; large images (predicted block by block)
        always run in this process.
    probabilities : bool
        Also write the probabilities.
    resume : bool
        Skip the inputs that a run with the same ``folder.run`` already
        wrote from the same input (same path, size and modification time).
    **predict_options
        Fields of :class:`~napari_lazyunet.config.PredictConfig`.

    Yields
    ------
    PredictEvent or FolderItem
        Progress of an image predicted here, and one :class:`FolderItem` per
        input when it is finished (in completion order on a cluster).
        Closing the generator stops after the current image; what is
        written stays complete.

    Raises
    ------
    ProjectError
        An image's outputs could not be written (full disk...): the run stops there.
    """
    todo: list[tuple[Path, str, dict[str, Any]]] = []
    for path, name in zip(files, names, strict=True):
        source = input_signature(path)
        if resume and folder.is_done(name, source):
            yield FolderItem(path, name, skipped=True)
        else:
            todo.append((path, name, source))
    channels = model.config.model.in_channels
    remote, here = [], []
    for item in todo:
        on_cluster = scheduler is not None and not is_large_file(item[0], channels)
        (remote if on_cluster else here).append(item)
    if remote:
        yield from _iter_on_cluster(
            model, remote, folder, scheduler, probabilities, predict_options
        )
    for path, name, _ in here:
        try:
            result = None
            for event in iter_predict_file(
                model, path, folder, name, probabilities=probabilities, **predict_options
            ):
                if event.result is None:
                    yield event
                result = event.result
        except ValueError as error:  # unreadable file, NaN, wrong channels...
            yield FolderItem(path, name, error=str(error))
            continue
        except OSError as error:
            raise _write_error(path, folder, error) from error
        yield FolderItem(path, name, result)


def _write_error(path: Path, folder: PredictionFolder, error: OSError) -> ProjectError:
    """A failed write (full disk, no permission) stops the run, naming the image."""
    return ProjectError(
        f"could not write the outputs of {path.name} to {folder.folder} ({error}); none of "
        "them was written, the images written before are complete"
    )


def _iter_on_cluster(model, items, folder, scheduler, probabilities, options):
    from distributed import as_completed

    client, owned = _client(scheduler)
    try:
        shared = client.scatter(model, broadcast=True)
        futures = {
            client.submit(_predict_on_worker, shared, str(path), options, pure=False): (
                path,
                name,
                source,
            )
            for path, name, source in items
        }
        for future in as_completed(futures):
            path, name, source = futures[future]
            try:
                prediction = future.result()
            except ValueError as error:
                yield FolderItem(path, name, error=str(error))
                continue
            try:
                files = folder.write_prediction(name, prediction, probabilities, source)
            except OSError as error:
                raise _write_error(path, folder, error) from error
            count = sum(len(classes) for classes in prediction.instance_classes)
            yield FolderItem(path, name, FileResult(name, count, files, prediction))
    finally:
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
