"""Frozen, validated configuration objects with a JSON round-trip.

Every tunable of the engine lives in a :class:`LazyUNetConfig`, so that a
model file carries the exact settings it was trained with and a widget only
has to build one of these. Its sections are defined beside this module
(:class:`ModelConfig` and :class:`NormalizationConfig` in :mod:`.model`,
:class:`TrainConfig` in :mod:`.train`, :class:`PredictConfig` in
:mod:`.predict`, :class:`ConfigError` in :mod:`.checks`);
import them all from this module.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .checks import DEVICES, ConfigError, _check
from .model import NORMALIZATION_MODES, ModelConfig, NormalizationConfig
from .predict import PredictConfig
from .train import LR_SCHEDULES, TrainConfig

__all__ = [
    "DEVICES",
    "LR_SCHEDULES",
    "NORMALIZATION_MODES",
    "RETIRED_KEYS",
    "ConfigError",
    "LazyUNetConfig",
    "ModelConfig",
    "NormalizationConfig",
    "PredictConfig",
    "TrainConfig",
    "describe_thresholds",
]

# Fields that older versions had and this one dropped: model files that
# carry them still load (the values only mattered while training).
# ``intensity_jitter`` (a random gain and offset per patch) lowered GlaS
# pixel Dice in the benchmarks (docs/benchmarks-history.md) and was never on by default.
RETIRED_KEYS = {"train": ("intensity_jitter",)}


@dataclass(frozen=True)
class LazyUNetConfig:
    """Everything needed to build, train and run a model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LazyUNetConfig:
        """Build from a (possibly partial) nested dict; unknown keys are an error."""
        sections = {
            "model": ModelConfig,
            "train": TrainConfig,
            "predict": PredictConfig,
            "normalization": NormalizationConfig,
        }
        data = {
            name: {k: v for k, v in values.items() if k not in RETIRED_KEYS.get(name, ())}
            if isinstance(values, dict)
            else values
            for name, values in data.items()
        }
        unknown = set(data) - set(sections)
        _check(not unknown, f"unknown config section(s) {sorted(unknown)}; use {sorted(sections)}")
        kwargs = {}
        for name, klass in sections.items():
            values = dict(data.get(name, {}))
            known = {f.name for f in dataclasses.fields(klass)}
            bad = set(values) - known
            _check(not bad, f"unknown key(s) {sorted(bad)} in config section {name!r}")
            kwargs[name] = klass(**values)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> LazyUNetConfig:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def replace(self, **sections: Any) -> LazyUNetConfig:
        """Copy with whole sections or ``section={key: value}`` updates replaced."""
        kwargs = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, dict):
                value = dataclasses.replace(current, **value)
            kwargs[name] = value
        return dataclasses.replace(self, **kwargs)


def describe_thresholds(config: LazyUNetConfig) -> str:
    """The model's decision thresholds in words, e.g. for a "training done" message.

    Empty for a single-task model that keeps the argmax segmentation.
    """
    parts = []
    if config.model.multitask and not config.predict.separate_touching:
        parts.append("no interface cut (no interface labelled)")
    elif config.model.multitask:
        parts.append(f"separation threshold {config.predict.separation_threshold:g}")
    if config.predict.segmentation_threshold is not None:
        parts.append(f"segmentation threshold {config.predict.segmentation_threshold:g}")
    if config.predict.detection_threshold is not None:
        parts.append(f"detection threshold {config.predict.detection_threshold:g}")
    return ", ".join(parts)
