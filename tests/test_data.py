"""Training patches: augmentation keeps image and targets aligned."""

import numpy as np

from napari_lazyunet.config import TrainConfig
from napari_lazyunet.core.sampling import PatchSampler


def _sampler(invert: float, seed: int = 3) -> PatchSampler:
    rng = np.random.default_rng(0)
    image = rng.random((3, 40, 50)).astype(np.float32)
    targets = rng.integers(0, 3, (3, 40, 50)).astype(np.int64)
    config = TrainConfig(patch_size=32, batch_size=4, invert_intensity=invert)
    return PatchSampler([image], [targets], [True], config, np.random.default_rng(seed))


def test_inversion_flips_intensities_of_the_same_patch():
    plain_image, plain_targets = _sampler(0.0).sample()
    image, targets = _sampler(1.0).sample()
    # The geometry is drawn first, so the same seed cuts the same patch.
    np.testing.assert_array_equal(targets, plain_targets)
    np.testing.assert_allclose(image, 1.0 - plain_image, atol=1e-6)


def test_no_inversion_draws_no_random_numbers():
    # Runs without inversion must reproduce the patches they drew before the
    # option existed: a patch consumes only the image choice and the geometry.
    sampler = _sampler(0.0)
    sampler.sample()
    reference = _sampler(0.0)
    reference._pick_image()
    reference._transform((40, 50))
    assert sampler.rng.bit_generator.state == reference.rng.bit_generator.state
    jittered = _sampler(0.3)
    jittered.sample()
    assert jittered.rng.bit_generator.state != reference.rng.bit_generator.state
