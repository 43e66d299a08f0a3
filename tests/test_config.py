"""Configuration validation and JSON round trip."""

import pytest

from napari_lazyunet.config import (
    ConfigError,
    LazyUNetConfig,
    ModelConfig,
    PredictConfig,
    TrainConfig,
)


def test_json_round_trip():
    config = LazyUNetConfig().replace(model={"class_names": ("a", "b", "c"), "in_channels": 3},
                                      train={"steps": 7, "scale_range": (0.5, 2.0)})
    again = LazyUNetConfig.from_json(config.to_json())
    assert again == config
    assert again.model.n_classes == 3 and again.train.scale_range == (0.5, 2.0)


def test_paper_defaults():
    t = TrainConfig()
    assert (t.learning_rate, t.batch_size, t.patch_size) == (2e-4, 16, 256)
    assert t.rotate and t.flip


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: TrainConfig(patch_size=100), "multiple of 16"),
        (lambda: TrainConfig(device="tpu"), "device='tpu' is unknown"),
        (lambda: TrainConfig(intensity_jitter=-0.1), "intensity_jitter"),
        (lambda: ModelConfig(class_names=("a", "a")), "distinct"),
        (lambda: ModelConfig(in_channels=0), "in_channels"),
        (lambda: PredictConfig(separation_threshold=1.0), "separation_threshold"),
        (lambda: PredictConfig(separation_threshold=0), "separation_threshold"),
        (lambda: PredictConfig(segmentation_threshold=1.0), "segmentation_threshold"),
        (lambda: PredictConfig(segmentation_threshold=0.0), "segmentation_threshold"),
        (lambda: LazyUNetConfig.from_dict({"modle": {}}), "unknown config section"),
        (lambda: LazyUNetConfig.from_dict({"model": {"widht": 3}}), "unknown key"),
    ],
)
def test_bad_values_name_the_field(build, message):
    with pytest.raises(ConfigError, match=message):
        build()
