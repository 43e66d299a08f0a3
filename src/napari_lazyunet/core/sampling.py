"""Random training patches with augmentation, mixing images by label availability.

Each patch is cut with one affine warp that combines the random rescale,
rotation and flips, so augmentation costs one interpolation per patch and the
image and its targets stay aligned (linear interpolation for intensities,
nearest for labels). An optional inversion (``TrainConfig.invert_intensity``,
for sets that mix bright-on-dark and dark-on-bright images) then changes the
patch's intensities only.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..config import TrainConfig
from .labels import IGNORE


class PatchSampler:
    """Draws augmented ``(image, targets)`` batches from a labelled set.

    Parameters
    ----------
    images : sequence of ndarray
        Normalised images, ``(C, Y, X)`` float32.
    targets : sequence of ndarray
        Loss targets, ``(3, Y, X)`` int64 (see ``labels.training_targets``).
    strong : sequence of bool
        Which images carry an exact segmentation mask.
    config : TrainConfig
        Patch size, batch size, augmentation and ``strong_fraction``.
    rng : numpy.random.Generator
        Source of all randomness (seeded by the caller for reproducibility).

    Notes
    -----
    Sampling: with probability ``strong_fraction`` a patch comes from a strong
    image (when there is one), otherwise from any image uniformly. With few
    strong images among many weak ones, uniform sampling alone would show the
    exact masks too rarely for segmentation to learn sharp boundaries.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        targets: Sequence[np.ndarray],
        strong: Sequence[bool],
        config: TrainConfig,
        rng: np.random.Generator,
    ):
        if not images:
            raise ValueError("cannot sample patches from an empty training set")
        self.images = list(images)
        self.targets = list(targets)
        self.strong_indices = [i for i, s in enumerate(strong) if s]
        self.config = config
        self.rng = rng

    def _pick_image(self) -> int:
        if self.strong_indices and self.rng.random() < self.config.strong_fraction:
            return int(self.rng.choice(self.strong_indices))
        return int(self.rng.integers(len(self.images)))

    def _transform(self, shape: tuple[int, int]) -> np.ndarray:
        """Affine map from patch coordinates to image coordinates (2 x 3)."""
        cfg = self.config
        half = cfg.patch_size / 2
        scale = float(np.exp(self.rng.uniform(*np.log(cfg.scale_range))))
        angle = float(self.rng.uniform(0, 2 * np.pi)) if cfg.rotate else 0.0
        flip_x = -1.0 if cfg.flip and self.rng.random() < 0.5 else 1.0
        flip_y = -1.0 if cfg.flip and self.rng.random() < 0.5 else 1.0
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag([flip_x, flip_y])
        # Patch centre lands anywhere in the image (reflection fills what lies outside).
        centre = np.array([self.rng.uniform(0, shape[1]), self.rng.uniform(0, shape[0])])
        offset = centre - linear @ np.array([half, half])
        return np.hstack([linear, offset[:, None]]).astype(np.float64)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One patch: ``(C, P, P)`` float32 image and ``(3, P, P)`` int64 targets."""
        index = self._pick_image()
        image, target = self.images[index], self.targets[index]
        size = self.config.patch_size
        matrix = self._transform(image.shape[-2:])
        flags = cv2.WARP_INVERSE_MAP
        image_patch = np.stack(
            [
                cv2.warpAffine(
                    channel,
                    matrix,
                    (size, size),
                    flags=cv2.INTER_LINEAR | flags,
                    borderMode=cv2.BORDER_REFLECT_101,
                )
                for channel in image
            ]
        )
        # Labels: nearest neighbour, and pixels from outside the image are ignored
        # rather than invented by reflection.
        target_patch = np.stack(
            [
                cv2.warpAffine(
                    task.astype(np.float32),
                    matrix,
                    (size, size),
                    flags=cv2.INTER_NEAREST | flags,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=float(IGNORE),
                )
                for task in target
            ]
        ).astype(np.int64)
        image_patch = self._invert(image_patch)
        return image_patch.astype(np.float32), target_patch

    def _invert(self, patch: np.ndarray) -> np.ndarray:
        """``1 - x`` with probability ``config.invert_intensity`` (mixed contrast polarity)."""
        probability = self.config.invert_intensity or 0.0
        if probability == 0:
            return patch  # no draw, so runs without inversion keep their random stream
        return 1.0 - patch if self.rng.random() < probability else patch

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """``batch_size`` patches stacked: ``(B, C, P, P)`` and ``(B, 3, P, P)``."""
        pairs = [self.sample() for _ in range(self.config.batch_size)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
