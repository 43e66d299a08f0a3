"""Tiny engine configurations for tests (small enough to train a few steps in seconds)."""

from napari_lazyunet.config import LazyUNetConfig, ModelConfig, PredictConfig, TrainConfig


def tiny_config(**train) -> LazyUNetConfig:
    """A network small enough to train for a few steps in a test."""
    defaults = dict(steps=3, batch_size=2, patch_size=32, validate_every=0, seed=0)
    defaults.update(train)
    return LazyUNetConfig(
        model=ModelConfig(class_names=("bubble", "crystal"), base_channels=4, depth=2),
        train=TrainConfig(**defaults),
        predict=PredictConfig(tile_size=64, overlap=0.25, device="cpu"),
    )
