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
    config = LazyUNetConfig().replace(
        model={"class_names": ("a", "b", "c"), "in_channels": 3},
        train={"steps": 7, "scale_range": (0.5, 2.0)},
    )
    again = LazyUNetConfig.from_json(config.to_json())
    assert again == config
    assert again.model.n_classes == 3 and again.train.scale_range == (0.5, 2.0)


def test_defaults_leave_the_data_dependent_settings_to_training():
    config = LazyUNetConfig()
    t = config.train
    assert (t.steps, t.learning_rate, t.batch_size, t.patch_size, t.num_threads) == (None,) * 5
    assert (config.model.base_channels, config.model.depth) == (None, None)
    assert not config.model.is_resolved
    assert config.predict.input_scale is None and config.predict.min_instance_size is None
    assert t.rotate and t.flip
    # An auto config round-trips through JSON like any other.
    assert LazyUNetConfig.from_json(config.to_json()) == config
    # Prediction of a never-trained config falls back to the plain values.
    filled = config.predict.with_defaults()
    assert (filled.input_scale, filled.min_instance_size) == (1.0, 10)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: TrainConfig(patch_size=100), "multiple of 16"),
        (lambda: TrainConfig(device="tpu"), "device='tpu' is unknown"),
        (lambda: TrainConfig(invert_intensity=-0.1), "invert_intensity"),
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


def test_retired_fields_of_older_model_files_are_dropped():
    old = LazyUNetConfig().to_dict()
    old["train"]["intensity_jitter"] = 0.0
    assert LazyUNetConfig.from_dict(old) == LazyUNetConfig()
