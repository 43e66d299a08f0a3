"""Training patches: augmentation keeps image and targets aligned."""

import numpy as np

from napari_lazyunet.config import TrainConfig
from napari_lazyunet.core.data import PatchSampler


def _sampler(jitter: float, seed: int = 3) -> PatchSampler:
    rng = np.random.default_rng(0)
    image = rng.random((3, 40, 50)).astype(np.float32)
    targets = rng.integers(0, 3, (3, 40, 50)).astype(np.int64)
    config = TrainConfig(patch_size=32, batch_size=4, intensity_jitter=jitter)
    return PatchSampler([image], [targets], [True], config, np.random.default_rng(seed))


def test_intensity_jitter_is_a_per_channel_affine_change_of_the_same_patch():
    plain_image, plain_targets = _sampler(0.0).sample()
    image, targets = _sampler(0.3).sample()
    # The geometry is drawn first, so the same seed cuts the same patch.
    np.testing.assert_array_equal(targets, plain_targets)
    gains = []
    for channel, plain in zip(image, plain_image, strict=True):
        gain, offset = np.polyfit(plain.ravel(), channel.ravel(), 1)
        np.testing.assert_allclose(channel, gain * plain + offset, atol=1e-5)
        assert np.exp(-0.3) - 1e-6 <= gain <= np.exp(0.3) + 1e-6 and abs(offset) <= 0.3 + 1e-6
        gains.append(gain)
    assert len(set(np.round(gains, 6))) == 3  # each channel drawn on its own
    assert not np.allclose(image, plain_image)


def test_no_jitter_draws_no_random_numbers():
    # Runs without jitter must reproduce the patches they drew before the
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
