"""What the lazy labels say about a training set: the data fingerprint.

Training settings that suit one data set fail on another (objects ten times
larger, a few hundred pixels or a few thousand per image, bright on dark or
dark on bright). :func:`measure_fingerprint` reads the facts that decide
them off the images and the labels a user painted, before anything is
trained; :mod:`.autoconfig` turns them into settings. Everything here is
pure: arrays in, a frozen record out.

Object sizes come from the inner regions: each painted region is grown by
how much larger the exact masks are than their inner regions on the strong
images (area ratio, about 2 for inner regions of 30-70 % of each object),
and from the exact masks of strong images without inner regions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .labels import ImageLabels, painted_regions, spatial_shape

# Without a strong image that has inner regions, an object is assumed to be
# this many times the area of its inner region (the middle of 30-70 %).
ASSUMED_AREA_RATIO = 2.0
# An image's objects are brighter (darker) than its background when their
# mean normalised intensity differs by more than this many background
# standard deviations. Measured on the training sets of docs/benchmarks.md:
# fluorescence nuclei 1 to 41 (median 6.5), brightfield and H&E nuclei -15
# to -4, while H&E glands (-1.2 to 1.0) and phase-contrast cells (-0.9 to
# 0.1) have no clear polarity at all.
POLARITY_CONTRAST = 1.0
# Percentiles of the per-image intensity range (low, high) of the default normalisation.
_RANGE_PERCENTILES = (1.0, 99.8)


@dataclass(frozen=True)
class DataFingerprint:
    """Facts about a labelled training set (all sizes in pixels of the images as given).

    Attributes
    ----------
    n_images, n_strong, n_with_inner : int
        Images; images with an exact mask; images with painted inner regions.
    channels : int
        Channels of every image.
    median_shape, min_shape : tuple of int
        Median and smallest ``(Y, X)`` over the images.
    area_ratio : float
        Exact-mask area over inner-region area on the strong images (or
        :data:`ASSUMED_AREA_RATIO` when ``area_ratio_measured`` is False).
    area_ratio_measured : bool
        Whether ``area_ratio`` was measured.
    n_objects : int
        Objects counted (inner regions, plus exact-mask components of strong
        images without inner regions).
    diameter_median, diameter_p05, diameter_p95 : float or None
        Equivalent diameter ``2 sqrt(area / pi)`` of the objects (None without objects).
    objects_per_image : float
        Mean objects per image with inner regions.
    interface_pixels : int
        Pixels painted as interface between touching objects.
    touching_fraction : float or None
        Share of the strong images' inner regions that share one connected
        exact mask with another inner region (None without such images).
    class_fractions : tuple of float
        Share of the objects in each class ``1..C``.
    polarity : {"bright", "dark", "mixed", "flat", "unknown"}
        Objects brighter or darker than their background on every image
        where it is clear, both kinds of image (``mixed``, at least 2 images
        and 10 % of each), no clear difference, or nothing to measure on.
    bright_images, dark_images : int
        Images whose objects are clearly brighter / darker than their background.
    intensity_range : tuple of float
        Median over the images of the per-channel range between the 1st and
        99.8th percentile of the raw intensities.
    """

    n_images: int
    n_strong: int
    n_with_inner: int
    channels: int
    median_shape: tuple[int, int]
    min_shape: tuple[int, int]
    area_ratio: float
    area_ratio_measured: bool
    n_objects: int
    diameter_median: float | None
    diameter_p05: float | None
    diameter_p95: float | None
    objects_per_image: float
    interface_pixels: int
    touching_fraction: float | None
    class_fractions: tuple[float, ...]
    polarity: str
    bright_images: int
    dark_images: int
    intensity_range: tuple[float, ...]

    def to_dict(self) -> dict:
        """Plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DataFingerprint:
        """Inverse of :meth:`to_dict` (unknown keys are ignored, for newer files)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for key in ("median_shape", "min_shape", "class_fractions", "intensity_range"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def describe(self) -> list[str]:
        """One short line per fact, for printing."""
        lines = [
            f"{self.n_images} image(s), {self.channels} channel(s), median size "
            f"{self.median_shape[0]} x {self.median_shape[1]}; {self.n_strong} with exact "
            f"masks, {self.n_with_inner} with inner regions",
        ]
        if self.diameter_median is None:
            lines.append("objects: none painted, their size is unknown")
        else:
            ratio = (
                f"exact masks {self.area_ratio:.2f}x their inner regions"
                if self.area_ratio_measured
                else f"assumed {self.area_ratio:g}x their inner regions (no strong image "
                "with inner regions)"
            )
            lines.append(
                f"objects: {self.n_objects}, {self.objects_per_image:.1f} per image, diameter "
                f"{self.diameter_median:.0f} px (5-95 %: {self.diameter_p05:.0f}-"
                f"{self.diameter_p95:.0f}); {ratio}"
            )
        touching = (
            ""
            if self.touching_fraction is None
            else f", {100 * self.touching_fraction:.0f} % of the strong images' objects touch"
        )
        lines.append(f"interfaces: {self.interface_pixels} pixel(s) painted{touching}")
        lines.append(
            f"contrast: {self.polarity} (objects brighter on {self.bright_images} image(s), "
            f"darker on {self.dark_images})"
        )
        if len(self.class_fractions) > 1:
            shares = ", ".join(f"{100 * f:.0f} %" for f in self.class_fractions)
            lines.append(f"classes: {shares} of the objects")
        return lines


def _luminance(image: np.ndarray, in_channels: int) -> np.ndarray:
    """Per-image percentile-normalised mean over channels, ``(Y, X)`` float32."""
    data = np.asarray(image, np.float32)
    if in_channels > 1:
        data = data.mean(axis=-1)
    lo, hi = np.percentile(data[::2, ::2], _RANGE_PERCENTILES)
    return (data - lo) / max(float(hi - lo), 1e-6)


def _intensity_range(image: np.ndarray, in_channels: int) -> np.ndarray:
    data = np.asarray(image, np.float32)
    data = data[..., None] if in_channels == 1 else data
    flat = data[::2, ::2].reshape(-1, data.shape[-1])
    lo, hi = np.percentile(flat, _RANGE_PERCENTILES, axis=0)
    return hi - lo


def _contrast(image: np.ndarray, labels: ImageLabels, n_classes: int, in_channels: int):
    """Object minus background intensity in background standard deviations, or None."""
    if labels.detection is None:
        return None
    detection = np.asarray(labels.detection)
    objects = (detection >= 1) & (detection <= n_classes)
    if labels.strong and labels.segmentation is not None:
        background = np.asarray(labels.segmentation) == 0
        objects = objects | (np.asarray(labels.segmentation) >= 1)
    elif np.any(detection == n_classes + 1):
        background = detection == n_classes + 1
    elif labels.detection_complete:
        # The rest of a complete layer is background, less a ring around
        # each inner region where the object's own boundary lies.
        background = ~ndimage.binary_dilation(objects, iterations=3) & (detection == 0)
    else:
        return None
    if objects.sum() < 10 or background.sum() < 10:
        return None
    luminance = _luminance(image, in_channels)
    spread = float(luminance[background].std()) + 1e-3
    return (float(luminance[objects].mean()) - float(luminance[background].mean())) / spread


def measure_fingerprint(
    images: Sequence[np.ndarray],
    labels: Sequence[ImageLabels],
    n_classes: int,
    in_channels: int,
) -> DataFingerprint:
    """Measure the :class:`DataFingerprint` of a labelled training set.

    Parameters
    ----------
    images : sequence of ndarray
        ``(Y, X)`` or ``(Y, X, C)`` images (already validated).
    labels : sequence of ImageLabels
        Their lazy labels, as for training.
    n_classes : int
        Object classes ``C`` (label ``C + 1`` is explicit background).
    in_channels : int
        Channels of the images.

    Returns
    -------
    DataFingerprint
    """
    shapes = np.array([spatial_shape(np.asarray(im), in_channels) for im in images])
    inner_areas: list[np.ndarray] = []
    mask_areas: list[np.ndarray] = []
    inner_classes: list[np.ndarray] = []
    exact_total = inner_on_strong = 0
    touching = counted_on_strong = 0
    interface_pixels = 0
    n_with_inner = per_image_count = 0
    contrasts: list[float] = []
    ranges: list[np.ndarray] = []
    for image, lab in zip(images, labels, strict=True):
        ranges.append(_intensity_range(image, in_channels))
        if lab.separation is not None:
            interface_pixels += int(np.count_nonzero(np.asarray(lab.separation) == 1))
        contrast = _contrast(image, lab, n_classes, in_channels)
        if contrast is not None:
            contrasts.append(contrast)
        detection = None if lab.detection is None else np.asarray(lab.detection)
        inner = None
        if detection is not None:
            inner_mask = (detection >= 1) & (detection <= n_classes)
            inner, count = painted_regions(inner_mask)
            if count:
                n_with_inner += 1
                per_image_count += count
                inner_areas.append(np.bincount(inner.ravel())[1:])
                inner_classes.append(
                    np.asarray(ndimage.maximum(detection, inner, np.arange(1, count + 1)), int)
                )
        if lab.strong and lab.segmentation is not None:
            exact = np.asarray(lab.segmentation) >= 1
            if inner is not None and inner.max() > 0:
                exact_total += int(exact.sum())
                inner_on_strong += int(np.count_nonzero((inner > 0) & exact))
                pieces, n_pieces = painted_regions(exact)
                owner = pieces[inner > 0]
                ids = inner[inner > 0]
                if n_pieces:
                    # Inner regions per connected exact mask: two or more touch.
                    per_piece = np.zeros(n_pieces + 1, int)
                    first = np.unique(np.stack([ids, owner]), axis=1)
                    np.add.at(per_piece, first[1], 1)
                    per_piece[0] = 0
                    touching += int(per_piece[per_piece >= 2].sum())
                    counted_on_strong += int(per_piece.sum())
            else:
                pieces, n_pieces = painted_regions(exact)
                if n_pieces:
                    mask_areas.append(np.bincount(pieces.ravel())[1:])
    measured = inner_on_strong > 0
    ratio = exact_total / inner_on_strong if measured else ASSUMED_AREA_RATIO
    areas = (
        np.concatenate([a * ratio for a in inner_areas] + [a.astype(float) for a in mask_areas])
        if (inner_areas or mask_areas)
        else np.zeros(0)
    )
    diameters = 2 * np.sqrt(areas / np.pi)
    classes = np.concatenate(inner_classes) if inner_classes else np.zeros(0, int)
    class_fractions = tuple(
        float(np.mean(classes == c)) if classes.size else 0.0 for c in range(1, n_classes + 1)
    )
    bright = sum(c > POLARITY_CONTRAST for c in contrasts)
    dark = sum(c < -POLARITY_CONTRAST for c in contrasts)
    return DataFingerprint(
        n_images=len(images),
        n_strong=sum(bool(lab.strong and lab.segmentation is not None) for lab in labels),
        n_with_inner=n_with_inner,
        channels=in_channels,
        median_shape=tuple(int(v) for v in np.median(shapes, axis=0)),
        min_shape=tuple(int(v) for v in shapes.min(axis=0)),
        area_ratio=float(ratio),
        area_ratio_measured=measured,
        n_objects=int(areas.size),
        diameter_median=float(np.median(diameters)) if diameters.size else None,
        diameter_p05=float(np.percentile(diameters, 5)) if diameters.size else None,
        diameter_p95=float(np.percentile(diameters, 95)) if diameters.size else None,
        objects_per_image=per_image_count / max(n_with_inner, 1),
        interface_pixels=interface_pixels,
        touching_fraction=touching / counted_on_strong if counted_on_strong else None,
        class_fractions=class_fractions,
        polarity=_polarity(bright, dark, len(contrasts)),
        bright_images=int(bright),
        dark_images=int(dark),
        intensity_range=tuple(float(v) for v in np.median(np.stack(ranges), axis=0)),
    )


def _polarity(bright: int, dark: int, measured: int) -> str:
    if measured == 0:
        return "unknown"
    minority = max(2, int(np.ceil(0.1 * measured)))
    if bright >= minority and dark >= minority:
        return "mixed"
    if bright > dark:
        return "bright"
    if dark > bright:
        return "dark"
    return "flat"
