"""What has been painted on an image, counted for the Lazy labels widget's status line.

:func:`count_labels` counts the painted inner regions of each class and the
interface scribbles (8-connected components, plane by plane) and returns a
:class:`LabelCounts` with the image's strong and total planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_lazyunet.core.labels import painted_regions

__all__ = ["LabelCounts", "count_labels"]


@dataclass(frozen=True)
class LabelCounts:
    """What has been painted on an image (all planes).

    Attributes
    ----------
    objects : int
        Painted inner regions (8-connected components of each class).
    interfaces : int
        Interface scribbles (8-connected components of the separation layer).
    strong : int
        Planes marked strong.
    planes : int
        Planes of the image.
    """

    objects: int
    interfaces: int
    strong: int
    planes: int

    def text(self) -> str:
        """One line for the widget."""
        return (
            f"objects marked: {self.objects} · interfaces marked: {self.interfaces} · "
            f"strong images: {self.strong} of {self.planes}"
        )


def _components(mask: np.ndarray) -> int:
    # Components are counted plane by plane: a stroke never spans two planes.
    planes = mask.reshape((-1, *mask.shape[-2:]))
    return sum(painted_regions(plane)[1] for plane in planes if plane.any())


def count_labels(
    detection: np.ndarray | None,
    separation: np.ndarray | None,
    n_classes: int,
    strong: int = 0,
    planes: int = 1,
) -> LabelCounts:
    """Count painted objects and interface scribbles.

    Parameters
    ----------
    detection : ndarray or None
        Detection labels ``(..., Y, X)``; explicit background (``C+1``) is not an object.
    separation : ndarray or None
        Separation labels ``(..., Y, X)``.
    n_classes : int
        Number of classes ``C``.
    strong, planes : int
        Passed through to the result.

    Returns
    -------
    LabelCounts
    """
    objects = 0
    if detection is not None:
        detection = np.asarray(detection)
        for value in range(1, n_classes + 1):
            objects += _components(detection == value)
    interfaces = 0 if separation is None else _components(np.asarray(separation) > 0)
    return LabelCounts(objects, interfaces, int(strong), int(planes))
