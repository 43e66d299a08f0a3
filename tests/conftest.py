"""Shared fixtures: tiny models and the synthetic sample (no downloads, no real data)."""

import numpy as np
import pytest
import torch

from napari_lazyunet.config import LazyUNetConfig, ModelConfig, PredictConfig, TrainConfig

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def tiny_config(**train) -> LazyUNetConfig:
    """A network small enough to train for a few steps in a test."""
    defaults = dict(steps=3, batch_size=2, patch_size=32, validate_every=0, seed=0)
    defaults.update(train)
    return LazyUNetConfig(
        model=ModelConfig(class_names=("bubble", "crystal"), base_channels=4, depth=2),
        train=TrainConfig(**defaults),
        predict=PredictConfig(tile_size=64, overlap=0.25, device="cpu"),
    )


@pytest.fixture(scope="session")
def foam():
    from napari_lazyunet.core.synthetic import make_foam_sample

    return make_foam_sample(n_images=4, shape=(64, 64), seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
