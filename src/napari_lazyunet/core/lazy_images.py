"""Images too large to hold in memory: read lazily, written chunk by chunk.

A whole-slide image of 20000 x 20000 RGB pixels is 1.2 GB as uint8 and
several GB once normalised; its outputs are as large again. This module
opens TIFF files (tiled, striped or pyramidal) and zarr / OME-Zarr stores as
dask arrays that read only the chunks a block needs, and creates the OME-Zarr
arrays that block-wise prediction (:mod:`.blockwise`) writes into.

Everything here follows the project's layout convention: ``(..., Y, X)`` or
``(..., Y, X, C)``, channels last.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from .files import ZARR_SUFFIXES, PathLike, ProjectError

__all__ = [
    "LARGE_IMAGE_PIXELS",
    "LazyImage",
    "create_zarr_output",
    "digest_tree",
    "is_large",
    "is_zarr_path",
    "open_lazy_image",
    "open_zarr_output",
    "pyramid_levels",
]

# A plane with more pixels than this (64 MP, e.g. 8000 x 8000) is predicted
# block by block into zarr outputs instead of into arrays in memory: its
# probabilities alone would take several GB.
LARGE_IMAGE_PIXELS = 8192 * 8192

# Chunks of the outputs: square, large enough that a 20000 x 20000 output is
# a few thousand files, small enough that napari reads a screenful quickly.
OUTPUT_CHUNK = 1024


def is_zarr_path(path: PathLike) -> bool:
    """Whether ``path`` names a zarr store (``name.zarr`` or ``name.ome.zarr``)."""
    return Path(path).suffix.lower() in ZARR_SUFFIXES


def is_large(shape: tuple[int, ...], in_channels: int) -> bool:
    """Whether an image of this shape is predicted block by block into zarr outputs.

    Parameters
    ----------
    shape : tuple of int
        The image's shape, channels last.
    in_channels : int
        Channels of the model (a trailing axis of that length is channels).
    """
    plane = shape[-3:-1] if in_channels > 1 and len(shape) >= 3 else shape[-2:]
    return int(np.prod(plane)) > LARGE_IMAGE_PIXELS


def _ome_multiscales(attrs: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The ``multiscales`` of OME-Zarr 0.4 (top level) or 0.5 (under ``ome``)."""
    if "ome" in attrs and isinstance(attrs["ome"], dict):
        attrs = attrs["ome"]
    multiscales = attrs.get("multiscales")
    return multiscales if isinstance(multiscales, list) and multiscales else None


def pyramid_levels(path: PathLike) -> list[tuple[int, ...]]:
    """The shapes of the resolution levels of a TIFF or zarr image, finest first.

    A plain image has one level. Use the index of a level as ``level`` in
    :func:`open_lazy_image`.
    """
    path = Path(path)
    if is_zarr_path(path):
        import zarr

        node = _open_zarr(path)
        if isinstance(node, zarr.Array):
            return [tuple(node.shape)]
        multiscales = _ome_multiscales(dict(node.attrs))
        if multiscales is None:
            raise ProjectError(
                f"{path} is a zarr group without OME-Zarr 'multiscales' metadata; "
                "give the path of one of its arrays instead"
            )
        return [tuple(node[d["path"]].shape) for d in multiscales[0]["datasets"]]
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return [tuple(level.shape) for level in series.levels]


def _open_zarr(path: Path):
    import zarr

    try:
        return zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a missing or foreign store
        raise ProjectError(
            f"{path} could not be opened as zarr ({type(exc).__name__}: {exc}); "
            "check that it is a complete zarr or OME-Zarr store"
        ) from exc


class LazyImage:
    """An image on disk that reads only the region it is sliced with.

    Slicing (``image[y0:y1, x0:x1]``) returns an ndarray of that region;
    ``np.asarray(image)`` reads everything. Axes are channels last. A TIFF
    is opened for each read (so no file handle stays open between reads);
    a zarr array is read through zarr.

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
    path : Path
    level : int
    """

    def __init__(self, path: Path, level: int, source, order: tuple[int, ...]):
        self.path, self.level = path, level
        self._source, self._order = source, order  # source axis of each of our axes
        source_shape = tuple(source.shape)
        self.shape = tuple(source_shape[axis] for axis in order)
        self.dtype = np.dtype(source.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        source_key: list[Any] = [slice(None)] * self.ndim
        for ours, axis in enumerate(self._order):
            source_key[axis] = key[ours]
        region = np.asarray(self._read(tuple(source_key)))
        # Axes indexed by an integer are gone; order the rest as ours.
        kept = [axis for axis in range(self.ndim) if not isinstance(source_key[axis], int)]
        wanted = [axis for axis in self._order if axis in kept]
        return region.transpose([kept.index(axis) for axis in wanted])

    def _read(self, key):
        if not isinstance(self._source, _TiffLevel):
            return self._source[key]
        import tifffile
        import zarr

        with tifffile.TiffFile(self.path) as tif:
            store = tif.series[0].aszarr(level=self.level)
            try:
                return zarr.open(store, mode="r")[key]
            finally:
                store.close()

    def __array__(self, dtype=None, copy=None):
        array = self[(slice(None),) * self.ndim]
        return array if dtype is None else array.astype(dtype)

    def to_dask(self, chunk: int = 1024):
        """The image as a dask array (for napari layers), in ``chunk`` x ``chunk`` pieces.

        The two image axes are the last two, or the two before a last axis of
        at most 4 entries (colour channels); every other axis is one plane per chunk.
        """
        import dask.array as da

        colour = self.ndim >= 3 and self.shape[-1] <= 4
        image_axes = (self.ndim - 3, self.ndim - 2) if colour else (self.ndim - 2, self.ndim - 1)
        chunks = tuple(
            chunk if axis in image_axes else (n if colour and axis == self.ndim - 1 else 1)
            for axis, n in enumerate(self.shape)
        )
        return da.from_array(self, chunks=chunks, asarray=True, fancy=False)

    def __repr__(self) -> str:
        return (
            f"LazyImage({self.path.name!r}, level={self.level}, shape={self.shape}, "
            f"dtype={self.dtype})"
        )


class _TiffLevel:
    """Shape and dtype of one level of a TIFF, read without keeping the file open."""

    def __init__(self, path: Path, level: int):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0].levels[level]
            self.shape, self.dtype = tuple(series.shape), series.dtype


def open_lazy_image(path: PathLike, level: int = 0) -> LazyImage:
    """Open a TIFF or zarr / OME-Zarr image that reads only the regions sliced from it.

    Parameters
    ----------
    path : str or PathLike
        A ``.tif`` / ``.tiff`` file (tiled, striped or pyramidal), a zarr
        array or an OME-Zarr image group (``.zarr`` / ``.ome.zarr``).
    level : int
        Resolution level of a pyramid, 0 = full resolution (see
        :func:`pyramid_levels`).

    Returns
    -------
    LazyImage
        ``(..., Y, X)`` or ``(..., Y, X, C)``: an OME-Zarr channel axis is
        moved last, as napari and the rest of this package expect.

    Raises
    ------
    ProjectError
        The path is missing, of another kind, or has no such level.
    """
    path = Path(path)
    if not path.exists():
        raise ProjectError(f"{path} does not exist; check the path")
    levels = pyramid_levels(path)
    if not 0 <= level < len(levels):
        raise ProjectError(
            f"{path} has {len(levels)} resolution level(s) (0..{len(levels) - 1}); "
            f"level {level} does not exist"
        )
    if not is_zarr_path(path):
        source = _TiffLevel(path, level)
        return LazyImage(path, level, source, tuple(range(len(source.shape))))
    import zarr

    node = _open_zarr(path)
    if isinstance(node, zarr.Array):
        return LazyImage(path, level, node, tuple(range(node.ndim)))
    multiscales = _ome_multiscales(dict(node.attrs))
    assert multiscales is not None  # pyramid_levels refused a group without them
    array = node[multiscales[0]["datasets"][level]["path"]]
    order = list(range(array.ndim))
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in multiscales[0].get("axes", [])]
    if "c" in axes and len(axes) == array.ndim:
        order.remove(axes.index("c"))
        order.append(axes.index("c"))
    return LazyImage(path, level, array, tuple(order))


def create_zarr_output(path: PathLike, shape: tuple[int, int], dtype: Any):
    """Create a single-level OME-Zarr (0.4) image for one ``(Y, X)`` output.

    The store is written chunk by chunk by its caller; the metadata names the
    axes so that OME-Zarr viewers (napari-ome-zarr, QuPath, Fiji's MoBIE)
    open it too.

    Returns
    -------
    zarr.Array
        The array ``0`` of the new group, filled with zeros on read until written.
    """
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    chunks = (min(OUTPUT_CHUNK, shape[0]), min(OUTPUT_CHUNK, shape[1]))
    array = group.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "name": Path(path).name,
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}
            ],
        }
    ]
    return array


def open_zarr_output(path: PathLike, mode: str = "r"):
    """The array of an output written by :func:`create_zarr_output`."""
    import zarr

    return zarr.open_group(str(path), mode=mode, zarr_format=2)["0"]


def digest_tree(path: PathLike) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents, in order)."""
    path = Path(path)
    sha = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            sha.update(os.fsencode(file.relative_to(path).as_posix()) + b"\0")
        with open(file, "rb") as stream:
            for chunk in iter(lambda s=stream: s.read(1 << 20), b""):
                sha.update(chunk)
    return sha.hexdigest()
