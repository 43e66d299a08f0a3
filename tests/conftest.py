"""Shared fixtures: the synthetic sample (no downloads, no real data)."""

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def foam():
    from napari_lazyunet.sample.synthetic import make_foam_sample

    return make_foam_sample(n_images=4, shape=(64, 64), seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
