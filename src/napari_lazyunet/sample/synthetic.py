"""The built-in demo sample: a synthetic two-class "foam", generated in code.

It imitates the SEM images of the paper (air bubbles and ice crystals in ice
cream): a dense layer of touching objects of two classes on a textured
background. What makes it a fair test of the method is that the texture of a
class is one field across the whole image, so where two objects of the same
class touch there is no visible boundary at all; only the separation task can
pull them apart. Objects of different classes do show a boundary (texture,
mean intensity and the rim change).

Objects are placed with random centres that may overlap, and every pixel
goes to the object whose shape it lies deepest in (a "gauge" partition: each
shape scaled about its centre until it reaches the pixel, smallest scale
wins), so overlapping objects press into each other along straight-ish
contact lines, as packed bubbles do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from napari_lazyunet.evaluation.simulate import detection_from_instances, interface_scribbles

CLASS_NAMES = ("bubble", "crystal")
BUBBLE, CRYSTAL = 1, 2


@dataclass(frozen=True)
class FoamSample:
    """Images, ground truth and lazy labels of the synthetic foam.

    Attributes
    ----------
    images : list of ndarray
        ``uint8`` ``(Y, X)`` gray images.
    instances : list of ndarray
        ``uint16`` ground-truth instance ids, 0 = background.
    classes : list of ndarray
        ``uint8`` exact class masks: 0 = background, 1 = bubble, 2 = crystal.
    detection : list of ndarray
        ``uint8`` lazy inner regions painted with the class value (1 / 2).
    separation : list of ndarray
        ``uint8`` interface scribbles between touching objects (0 / 1).
    class_names : tuple of str
        ``("bubble", "crystal")``.
    """

    images: list[np.ndarray]
    instances: list[np.ndarray]
    classes: list[np.ndarray]
    detection: list[np.ndarray]
    separation: list[np.ndarray]
    class_names: tuple[str, ...] = field(default=CLASS_NAMES)

    @property
    def n_classes(self) -> int:
        """Number of object classes."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class _Shape:
    """One object: centre, class and its convex shape as half-planes or an ellipse."""

    cy: float
    cx: float
    cls: int
    radius: float
    # Ellipse: inverse semi-axes along a rotated frame; polygon: unit normals / offsets.
    angle: float = 0.0
    inv_axes: tuple[float, float] = (1.0, 1.0)
    normals: np.ndarray | None = None
    offsets: np.ndarray | None = None

    def gauge(self, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        """How far the shape must be scaled about its centre to reach each offset (1 = on edge)."""
        if self.normals is None:
            c, s = np.cos(self.angle), np.sin(self.angle)
            u = (dx * c + dy * s) * self.inv_axes[0]
            v = (-dx * s + dy * c) * self.inv_axes[1]
            return np.sqrt(u * u + v * v)
        proj = dy[..., None] * self.normals[:, 0] + dx[..., None] * self.normals[:, 1]
        return np.max(proj / self.offsets, axis=-1)


def _bubble(rng: np.random.Generator, cy: float, cx: float, radius: float) -> _Shape:
    aspect = rng.uniform(1.0, 1.25)
    a = radius * np.sqrt(aspect)
    b = radius / np.sqrt(aspect)
    return _Shape(cy, cx, BUBBLE, radius, rng.uniform(0, np.pi), (1.0 / a, 1.0 / b))


def _crystal(rng: np.random.Generator, cy: float, cx: float, radius: float) -> _Shape:
    k = int(rng.integers(4, 8))
    # Vertex angles jittered around a regular k-gon keep consecutive gaps below
    # pi, so the centre is inside every edge's half-plane.
    angles = np.sort(np.arange(k) * 2 * np.pi / k + rng.uniform(-0.3, 0.3, size=k) * np.pi / k)
    radii = radius * rng.uniform(0.8, 1.15, size=k)
    vy, vx = radii * np.sin(angles), radii * np.cos(angles)
    # Elongate along a random direction: crystals are often needle- or plate-like.
    stretch = rng.uniform(1.0, 1.9)
    theta = rng.uniform(0, np.pi)
    c, s = np.cos(theta), np.sin(theta)
    u, v = vx * c + vy * s, -vx * s + vy * c
    u, v = u * np.sqrt(stretch), v / np.sqrt(stretch)
    vx, vy = u * c - v * s, u * s + v * c
    ey, ex = np.roll(vy, -1) - vy, np.roll(vx, -1) - vx
    normals = np.stack([-ex, ey], axis=1)  # (ny, nx), perpendicular to each edge
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    offsets = normals[:, 0] * vy + normals[:, 1] * vx
    sign = np.sign(offsets)  # make every normal point outwards
    normals *= sign[:, None]
    offsets *= sign
    return _Shape(cy, cx, CRYSTAL, radius, normals=normals, offsets=np.maximum(offsets, 1e-3))


def _place_objects(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n_objects: tuple[int, int],
    diameter_range: tuple[float, float],
    crystal_fraction: float,
) -> list[_Shape]:
    target = int(rng.integers(n_objects[0], n_objects[1] + 1))
    r_lo, r_hi = diameter_range[0] / 2, diameter_range[1] / 2
    objects: list[_Shape] = []
    centres = np.empty((0, 2))
    radii = np.empty(0)
    for _ in range(target * 30):
        if len(objects) >= target:
            break
        radius = rng.uniform(r_lo, r_hi)
        if radii.size and rng.uniform() < 0.75:
            # Mostly grow clusters: a new object leans on an existing one, so
            # the foam is dense and many objects touch.
            j = int(rng.integers(radii.size))
            reach = (radii[j] + radius) * rng.uniform(0.68, 0.9)
            angle = rng.uniform(0, 2 * np.pi)
            cy = centres[j, 0] + reach * np.sin(angle)
            cx = centres[j, 1] + reach * np.cos(angle)
        else:
            # Centres may lie a little outside the frame: objects cut by the border.
            cy = rng.uniform(-0.3 * radius, shape[0] + 0.3 * radius)
            cx = rng.uniform(-0.3 * radius, shape[1] + 0.3 * radius)
        if not (-0.3 * radius <= cy <= shape[0] + 0.3 * radius) or not (
            -0.3 * radius <= cx <= shape[1] + 0.3 * radius
        ):
            continue
        if radii.size:
            gap = np.hypot(centres[:, 0] - cy, centres[:, 1] - cx)
            # Below 1 the discs overlap, so neighbours press into each other;
            # well above 0 so no object swallows another.
            if np.any(gap < 0.66 * (radii + radius)):
                continue
        make = _crystal if rng.uniform() < crystal_fraction else _bubble
        objects.append(make(rng, cy, cx, radius))
        centres = np.vstack([centres, [cy, cx]])
        radii = np.append(radii, radius)
    return objects


def _partition(objects: list[_Shape], shape: tuple[int, int], min_area: int) -> np.ndarray:
    """Instance ids: each pixel goes to the object with the smallest gauge below 1."""
    best = np.full(shape, 1.0)
    owner = np.zeros(shape, dtype=np.int32)
    for index, obj in enumerate(objects, start=1):
        reach = 1.9 * obj.radius + 2  # bounds the elongated crystals too
        y0, y1 = max(int(obj.cy - reach), 0), min(int(obj.cy + reach) + 1, shape[0])
        x0, x1 = max(int(obj.cx - reach), 0), min(int(obj.cx + reach) + 1, shape[1])
        if y0 >= y1 or x0 >= x1:
            continue
        dy = np.arange(y0, y1)[:, None] - obj.cy + np.zeros((1, x1 - x0))
        dx = np.arange(x0, x1)[None, :] - obj.cx + np.zeros((y1 - y0, 1))
        g = obj.gauge(dy, dx)
        win = g < best[y0:y1, x0:x1]
        best[y0:y1, x0:x1][win] = g[win]
        owner[y0:y1, x0:x1][win] = index
    # The partition can cut an object into pieces; keep its largest piece so
    # every instance is one connected region, and drop slivers.
    out = np.zeros(shape, dtype=np.int32)
    for index, box in enumerate(ndi.find_objects(owner), start=1):
        if box is None:
            continue
        mask = owner[box] == index
        parts, n = ndi.label(mask)
        if n > 1:
            sizes = np.bincount(parts.ravel())[1:]
            mask = parts == (np.argmax(sizes) + 1)
        if np.count_nonzero(mask) >= min_area:
            out[box][mask] = index
    return out


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field_ = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field_ / (field_.std() + 1e-12)


def _render(rng: np.random.Generator, classes: np.ndarray, noise: float, blur: float) -> np.ndarray:
    """Gray image in [0, 1]: one texture field per class, so same-class contacts are invisible."""
    shape = classes.shape
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    bubble = classes == BUBBLE
    crystal = classes == CRYSTAL

    # Background: dark, grainy, slowly varying.
    image = 0.24 + 0.035 * _smooth_noise(rng, shape, 6) + 0.03 * _smooth_noise(rng, shape, 1.0)

    # Bubbles: smooth bright interior, a brighter rim along the class boundary
    # (distance to the nearest non-bubble pixel, not to the instance boundary).
    d_bubble = ndi.distance_transform_edt(bubble)
    bubble_tex = (
        0.60
        + 0.05 * _smooth_noise(rng, shape, 5)
        + 0.22 * np.exp(-((d_bubble - 1.5) ** 2) / 3.0)
        - 0.06 * (1 - np.exp(-d_bubble / 8.0))
    )

    # Crystals: slightly darker, striped along one direction per image (with a
    # gentle warp) and speckled; a dark edge where they meet something else.
    d_crystal = ndi.distance_transform_edt(crystal)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(5.0, 7.0)
    warp = 3.0 * _smooth_noise(rng, shape, 12)
    phase = (xx * np.cos(theta) + yy * np.sin(theta) + warp) * 2 * np.pi / period
    crystal_tex = (
        0.47
        + 0.07 * np.sin(phase)
        + 0.05 * _smooth_noise(rng, shape, 0.7)
        - 0.12 * np.exp(-d_crystal / 1.2)
    )

    image = np.where(bubble, bubble_tex, image)
    image = np.where(crystal, crystal_tex, image)
    image = ndi.gaussian_filter(image, blur)
    image = image + noise * rng.standard_normal(shape)
    return np.clip(image, 0.0, 1.0)


def make_foam_image(
    shape: tuple[int, int] = (192, 192),
    seed: int | np.random.SeedSequence | None = 0,
    *,
    n_objects: tuple[int, int] = (24, 40),
    diameter_range: tuple[float, float] = (20.0, 50.0),
    crystal_fraction: float = 0.5,
    noise: float = 0.04,
    blur: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic foam image with its ground truth.

    Parameters
    ----------
    shape : (int, int)
        ``(Y, X)`` of the image.
    seed : int or SeedSequence or None
        Seed; the same seed gives the same image.
    n_objects : (int, int)
        Range of objects to place (before clipping and merging at the border).
    diameter_range : (float, float)
        Range of object diameters in pixels.
    crystal_fraction : float
        Probability that an object is a crystal rather than a bubble.
    noise : float
        Standard deviation of additive Gaussian noise (intensity scale 0..1).
    blur : float
        Sigma of the Gaussian blur applied before the noise.

    Returns
    -------
    image : ndarray
        ``uint8`` ``(Y, X)``.
    instances : ndarray
        ``uint16`` ``(Y, X)`` instance ids ``1..N`` (0 = background).
    classes : ndarray
        ``uint8`` ``(Y, X)``: 0 background, 1 bubble, 2 crystal.
    """
    if len(shape) != 2 or min(shape) < 16:
        raise ValueError(f"shape must be (Y, X) with both sides >= 16, got {shape}")
    if not 0 < diameter_range[0] <= diameter_range[1]:
        raise ValueError(f"diameter_range={diameter_range} must satisfy 0 < low <= high")
    if not 1 <= n_objects[0] <= n_objects[1]:
        raise ValueError(f"n_objects={n_objects} must satisfy 1 <= low <= high")
    if not 0.0 <= crystal_fraction <= 1.0:
        raise ValueError(f"crystal_fraction={crystal_fraction} must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    objects = _place_objects(rng, shape, n_objects, diameter_range, crystal_fraction)
    min_area = max(int(0.1 * np.pi * (diameter_range[0] / 2) ** 2), 4)
    owner = _partition(objects, shape, min_area)

    ids = np.unique(owner)
    ids = ids[ids != 0]
    lut_instance = np.zeros(len(objects) + 1, dtype=np.uint16)
    lut_instance[ids] = np.arange(1, ids.size + 1)
    lut_class = np.zeros(len(objects) + 1, dtype=np.uint8)
    lut_class[1:] = [obj.cls for obj in objects]
    instances = lut_instance[owner]
    classes = lut_class[owner]

    image = _render(rng, classes, noise, blur)
    return np.round(image * 255).astype(np.uint8), instances, classes


def make_foam_sample(
    n_images: int = 8,
    shape: tuple[int, int] = (192, 192),
    seed: int = 0,
    *,
    n_objects: tuple[int, int] = (24, 40),
    diameter_range: tuple[float, float] = (20.0, 50.0),
    crystal_fraction: float = 0.5,
    noise: float = 0.04,
    blur: float = 0.8,
    detection_fraction: tuple[float, float] = (0.3, 0.7),
    separation_width: int = 2,
) -> FoamSample:
    """The built-in demo: synthetic foam images, ground truth and lazy labels.

    Image ``k`` depends only on ``seed`` and ``k``, so asking for fewer
    images gives a prefix of a longer sample.

    Parameters
    ----------
    n_images : int
        Number of images.
    shape : (int, int)
        ``(Y, X)`` of each image.
    seed : int
        Seed of the whole sample.
    n_objects, diameter_range, crystal_fraction, noise, blur
        See :func:`make_foam_image`.
    detection_fraction : (float, float)
        Area fraction of each object kept as its painted inner region.
    separation_width : int
        Half-width in pixels of the interface scribbles.

    Returns
    -------
    FoamSample
        Images, exact instances and classes, and the simulated lazy labels.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    children = np.random.SeedSequence(seed).spawn(n_images)
    images, instances, classes, detection, separation = [], [], [], [], []
    for child in children:
        image, inst, cls = make_foam_image(
            shape,
            child,
            n_objects=n_objects,
            diameter_range=diameter_range,
            crystal_fraction=crystal_fraction,
            noise=noise,
            blur=blur,
        )
        label_seed = int(child.generate_state(1)[0])
        images.append(image)
        instances.append(inst)
        classes.append(cls)
        detection.append(detection_from_instances(inst, cls, detection_fraction, label_seed))
        separation.append(interface_scribbles(inst, separation_width))
    return FoamSample(images, instances, classes, detection, separation, CLASS_NAMES)
