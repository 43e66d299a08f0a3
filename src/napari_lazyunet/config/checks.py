"""What the configuration sections share: :class:`ConfigError`, the check that raises it, devices.

Imported by :mod:`napari_lazyunet.config` and the modules of its sections
(:mod:`.model`, :mod:`.train`, :mod:`.predict`); import
the names from :mod:`napari_lazyunet.config`.
"""

from __future__ import annotations

__all__ = ["DEVICES", "ConfigError"]

DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field and the fix."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
