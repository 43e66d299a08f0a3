"""Images too large for memory in napari: shown as lazy (dask) layers, read on demand.

A whole-slide image opened with :func:`open_large_image` is an Image layer
whose data is a dask array over the file (a pyramid becomes a multiscale
layer), so napari reads only what the screen shows. Its predictions are
OME-Zarr stores (see :mod:`napari_lazyunet.batch`) shown the same way by
:func:`lazy_prediction`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari_lazyunet.core.lazy_images import (
    LazyImage,
    is_large,
    open_lazy_image,
    open_zarr_output,
    pyramid_levels,
)
from napari_lazyunet.core.predict import Prediction

__all__ = ["is_large_layer", "layer_source", "lazy_prediction", "open_large_image"]

# Layer metadata: the file a lazy image layer reads (its blocks are read from
# there for prediction, not through the dask graph of the layer).
SOURCE_KEY = "lazyunet_source"


def open_large_image(viewer: Any, path: str | Path, name: str | None = None):
    """Add a TIFF or zarr / OME-Zarr image to the viewer as a lazy layer.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    path : str or Path
        The image (tiled or pyramidal TIFF, zarr array, OME-Zarr image).
    name : str, optional
        Layer name (default: the file name without its suffixes).

    Returns
    -------
    napari.layers.Image
        The layer; a pyramid is a multiscale layer with every level.
    """
    path = Path(path)
    levels = [open_lazy_image(path, level) for level in range(len(pyramid_levels(path)))]
    data = [level.to_dask() for level in levels]
    colour = levels[0].ndim == 3 and levels[0].shape[-1] in (3, 4)
    return viewer.add_image(
        data if len(data) > 1 else data[0],
        name=name or path.name.split(".")[0],
        multiscale=len(data) > 1,
        rgb=colour,
        metadata={SOURCE_KEY: {"path": str(path), "level": 0}},
    )


def layer_source(layer: Any) -> Any:
    """What block-wise prediction reads for an image layer, without loading it whole.

    The file of a layer added by :func:`open_large_image`, else the layer's
    data (its finest level when multiscale).
    """
    source = layer.metadata.get(SOURCE_KEY)
    if isinstance(source, dict) and Path(source.get("path", "")).exists():
        return open_lazy_image(source["path"], int(source.get("level", 0)))
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def is_large_layer(layer: Any, in_channels: int) -> bool:
    """Whether an image layer is predicted block by block into OME-Zarr outputs.

    A pyramid (multiscale layer) always is: its finest level is read block
    by block, never whole.
    """
    if getattr(layer, "multiscale", False):
        return True
    source = layer_source(layer)
    return isinstance(source, LazyImage) or is_large(tuple(source.shape), in_channels)


def lazy_prediction(files: list[Path], instance_classes: dict[int, int]) -> Prediction:
    """A :class:`Prediction` whose label images are dask arrays over OME-Zarr outputs."""
    import dask.array as da

    arrays = {path.parent.name: da.from_zarr(open_zarr_output(path)) for path in files}
    return Prediction(
        probabilities={},
        segmentation=arrays["segmentation"],
        detection=arrays.get("detection"),
        separation=arrays.get("separation"),
        instances=arrays["instances"],
        instance_classes=[dict(instance_classes)],
    )
