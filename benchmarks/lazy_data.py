"""Real datasets and the lazy labels simulated from their full instance masks.

Used by ``benchmarks/paper.py``. The data folders (``glas/``, ``bbbc039/``,
see their README) are only read, never copied.

Simulation protocol (seeded, the paper's setting)
-------------------------------------------------
detection
    every object of an image shrunk to its deepest pixels, a random 30-70 %
    of its area (:func:`napari_lazyunet.evaluation.simulate.shrink_instances`), on
    a random 75 % of the training images; the other 25 % carry no
    detection label at all.
separation
    scribbles on interfaces between neighbouring objects, on 100 % of the
    training images: every pixel within ``scribble_distance`` pixels of two
    different objects (:func:`interfaces`).
segmentation (strong)
    the exact masks of ``k`` training images, drawn at random among the
    images that carry a detection label (in the paper the strong masks are
    made from the painted inner regions with GrabCut plus corrections);
    with ``k`` = all images, every image is strong.

Variant (harness setting ``detection_background``, off in the tables)
background strokes
    on every detection-labelled image, the background is painted too, with
    the same rule as the objects: the random 30-70 % of the background
    farthest from any object (:func:`background_strokes`). Those images
    are then *sparse*: pixels painted neither as object nor as background
    (the ring between an inner region and the object's true boundary) do
    not count for detection, instead of counting as background.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from napari_lazyunet.evaluation.simulate import shrink_instances

DETECTION_SHARE = 0.75
FRACTION_RANGE = (0.3, 0.7)


@dataclass
class Split:
    """Images of one split, at working resolution, with full-resolution truth."""

    names: list[str]
    images: list[np.ndarray]  # working resolution, (Y, X) or (Y, X, 3)
    instances: list[np.ndarray]  # working resolution, int32
    full_instances: list[np.ndarray]  # original resolution, int32 (scoring)


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    test_name: str
    in_channels: int
    class_names: tuple[str, ...]
    scale: float


@dataclass
class LazyLabels:
    """Simulated lazy labels of a training split (one entry per image)."""

    detection: list[np.ndarray | None]  # uint8, 1 = inner region, 0 = unpainted
    inner: list[np.ndarray | None]  # int32 inner-region ids (for GrabCut)
    separation: list[np.ndarray]  # uint8, 1 = interface
    segmentation: list[np.ndarray | None]  # uint8 exact class mask on strong images
    strong: list[bool]
    seed: int
    k: int


def _read(path: Path) -> np.ndarray:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise FileNotFoundError(f"cannot read {path}")
    if array.ndim == 3:
        array = cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2RGB)
    return array


def _resize_image(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label image to ``shape`` (Y, X)."""
    if labels.shape[:2] == tuple(shape):
        return labels
    return cv2.resize(
        labels.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST
    ).astype(labels.dtype)


def _split(folder: Path, names: list[str], scale: float) -> Split:
    images, instances, full = [], [], []
    for name in names:
        image = _read(folder / "images" / f"{name}.png")
        inst = _read(folder / "instances" / f"{name}.png").astype(np.int32)
        small = _resize_image(image, scale)
        images.append(small)
        full.append(inst)
        instances.append(resize_labels(inst, small.shape[:2]))
    return Split(list(names), images, instances, full)


def _natural_key(name: str):
    prefix, _, number = name.rpartition("_")
    return (prefix, int(number)) if number.isdigit() else (name, 0)


def load_dataset(
    data_dir: str | Path,
    dataset: str,
    scale: float = 1.0,
    limit_test: int | None = None,
    limit_train: int | None = None,
    test_split: str | None = None,
) -> Dataset:
    """Load GlaS (train / testA) or BBBC039 (train / val) at ``scale``.

    ``data_dir`` is the folder holding ``glas/`` and ``bbbc039/`` (or the
    dataset folder itself). ``test_split`` scores another split instead: a
    GlaS file-name prefix (``testB`` for ``testB_*.png``) or a BBBC039
    ``splits.csv`` split (``test``).
    """
    root = Path(data_dir)
    folder = root if (root / "images").is_dir() else root / dataset
    if not (folder / "images").is_dir():
        raise FileNotFoundError(f"no {dataset} data under {root} (expected {folder}/images)")
    if dataset == "glas":
        stems = sorted((p.stem for p in (folder / "images").glob("*.png")), key=_natural_key)
        train = [s for s in stems if s.startswith("train_")]
        test_name, channels, classes = test_split or "testA", 3, ("gland",)
        test = [s for s in stems if s.startswith(f"{test_name}_")]
    elif dataset == "bbbc039":
        with open(folder / "splits.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        train = sorted(r["name"] for r in rows if r["split"] == "train")
        test_name, channels, classes = test_split or "val", 1, ("nucleus",)
        test = sorted(r["name"] for r in rows if r["split"] == test_name)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; use glas or bbbc039")
    if not test:
        raise FileNotFoundError(f"no {dataset} image of split {test_name!r} in {folder}")
    if limit_train:
        train = train[:limit_train]
    if limit_test:
        test = test[:limit_test]
    return Dataset(
        name=dataset,
        train=_split(folder, train, scale),
        test=_split(folder, test, scale),
        test_name=test_name,
        in_channels=channels,
        class_names=classes,
        scale=scale,
    )


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def interfaces(instances: np.ndarray, distance: int = 2) -> np.ndarray:
    """Pixels within ``distance`` pixels of two different objects (uint8 0/1).

    This marks the contact lines of touching objects and the thin gaps
    between objects that nearly touch. (GlaS instances are connected
    components of the released foreground, so its glands never share a
    boundary; a narrow gap is the only interface there is.)
    """
    ids = np.asarray(instances).astype(np.int64)
    if ids.max(initial=0) == 0:
        return np.zeros(ids.shape, np.uint8)
    big = int(ids.max()) + 1
    footprint = _disk(int(distance))
    high = ndi.maximum_filter(ids, footprint=footprint, mode="constant", cval=0)
    low = ndi.minimum_filter(
        np.where(ids == 0, big, ids), footprint=footprint, mode="constant", cval=big
    )
    return ((high != 0) & (low != big) & (high != low)).astype(np.uint8)


def background_strokes(instances: np.ndarray, seed: int) -> np.ndarray:
    """Background a lazy annotator would paint: the part farthest from objects.

    The background is treated as one more object and shrunk with the rule of
    :func:`~napari_lazyunet.evaluation.simulate.shrink_instances`: a random
    30-70 % of its area is kept, the pixels deepest inside it.

    Returns
    -------
    ndarray
        ``bool`` ``(Y, X)``, True where background is painted.
    """
    background = (np.asarray(instances) == 0).astype(np.int32)
    return shrink_instances(background, FRACTION_RANGE, seed=seed) > 0


def simulate(
    instances: list[np.ndarray], k: int, seed: int, scribble_distance: int = 2
) -> LazyLabels:
    """Lazy labels of a training split, see the module docstring.

    ``k`` strong images are drawn among the detection-labelled ones (all
    images when ``k >= len(instances)``).
    """
    n = len(instances)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_det = max(1, round(DETECTION_SHARE * n))
    has_det = np.zeros(n, bool)
    has_det[order[:n_det]] = True
    # Prefix of the detection-labelled images in random order: the strong
    # set for a smaller k is contained in the one for a larger k.
    strong_idx = set(range(n)) if k >= n else set(order[: min(k, n_det)].tolist())
    detection, inner, separation, segmentation, strong = [], [], [], [], []
    for i, inst in enumerate(instances):
        sep = interfaces(inst, scribble_distance)
        separation.append(sep)
        if has_det[i] or i in strong_idx:
            shrunk = shrink_instances(inst, FRACTION_RANGE, seed=seed * 100_003 + i)
            inner.append(shrunk.astype(np.int32))
            detection.append((shrunk > 0).astype(np.uint8))
        else:
            inner.append(None)
            detection.append(None)
        if i in strong_idx:
            segmentation.append((inst > 0).astype(np.uint8))
            strong.append(True)
        else:
            segmentation.append(None)
            strong.append(False)
    return LazyLabels(detection, inner, separation, segmentation, strong, seed, k)
