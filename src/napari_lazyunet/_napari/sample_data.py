"""File > Open Sample > Lazy-label foam sample: the synthetic foam with its lazy labels."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import numpy as np

from napari_lazyunet.sample.synthetic import make_foam_sample

from .classes import image_metadata, labels_layer_data

__all__ = ["foam_layers", "foam_sample"]

#: Planes of the sample stack; the first one comes with an exact (strong) mask.
N_PLANES = 4
SHAPE = (192, 192)


@lru_cache(maxsize=2)
def _sample(n_images: int, shape: tuple[int, int], seed: int):
    # Generating the foam takes a second or two; layers get copies, never these arrays.
    return make_foam_sample(n_images=n_images, shape=shape, seed=seed)


def foam_layers(
    n_images: int = N_PLANES, shape: tuple[int, int] = SHAPE, seed: int = 0, n_strong: int = 1
) -> list[tuple[Any, dict[str, Any], str]]:
    """Layer data tuples of the demo: an image stack and its three linked labels layers.

    Every plane has painted inner regions (detection) and interface
    scribbles (separation), as a user would paint them; the first
    ``n_strong`` planes also have their exact segmentation and are marked
    strong. The others have an empty segmentation, ready to be refined with
    GrabCut.

    Parameters
    ----------
    n_images : int
        Planes of the stack.
    shape : (int, int)
        ``(Y, X)`` of each plane.
    seed : int
        Seed of :func:`~napari_lazyunet.sample.synthetic.make_foam_sample`.
    n_strong : int
        Planes that come with an exact mask.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``image`` then ``labels`` for detection, separation, segmentation.
    """
    sample = _sample(int(n_images), tuple(int(s) for s in shape), int(seed))
    link = uuid.uuid4().hex
    n_strong = max(0, min(int(n_strong), n_images))
    meta = image_metadata(link, sample.class_names, strong=range(n_strong))
    colors = meta["lazyunet"]["class_colors"]
    segmentation = np.zeros((n_images, *shape), dtype=np.uint8)
    segmentation[:n_strong] = np.stack(sample.classes[:n_strong])
    image = np.stack(sample.images)
    labels = {
        "detection": np.stack(sample.detection).astype(np.uint8),
        "separation": np.stack(sample.separation).astype(np.uint8),
        "segmentation": segmentation,
    }
    layers: list[tuple[Any, dict[str, Any], str]] = [
        (image, {"name": "foam", "metadata": meta}, "image")
    ]
    for role, data in labels.items():
        layers.append(labels_layer_data(data, f"foam {role}", link, role, colors))
    return layers


def foam_sample() -> list[tuple[Any, dict[str, Any], str]]:
    """The sample-data hook: four foam planes, the first one strong (see :func:`foam_layers`)."""
    return foam_layers()
