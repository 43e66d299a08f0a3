"""The Predict widget's "Options" box: tiling, instance size, the model's thresholds, device.

:class:`PredictOptionsMixin` builds the box of
:class:`~napari_lazyunet._napari.predict_widget.PredictWidget` (defaults
from :class:`~napari_lazyunet.config.PredictConfig`) and turns it into the
options of :meth:`~napari_lazyunet.api.LazyUNet.iter_predict`. The fields
that training sets for a model (minimum instance size, separation and
segmentation thresholds, input scale) show "model's" until they are set,
and are then left out of the options.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QDoubleSpinBox, QFormLayout, QGroupBox, QSpinBox

from napari_lazyunet.config import PredictConfig

from ._form import device_combo, model_default_spin

__all__ = ["PredictOptionsMixin"]

# PredictConfig fields that the form leaves to the model unless set:
# (field, label, maximum, decimals, tooltip).
MODEL_DEFAULTS = (
    (
        "separation_threshold",
        "Separation threshold",
        0.99,
        2,
        "Interface probability that cuts touching objects apart (default: the one "
        "calibrated when the model was trained); lower it if touching objects stay "
        "merged",
    ),
    (
        "segmentation_threshold",
        "Segmentation threshold",
        0.99,
        2,
        "Object probability above which a pixel is segmented (default: the one "
        "calibrated when the model was trained, else the most probable class); lower "
        "it if objects come out too small, raise it if they come out too large",
    ),
    (
        "input_scale",
        "Input scale",
        16.0,
        3,
        "Resize the image by this factor before the network (outputs come back at the "
        "image's size): e.g. 0.5 when the image has twice the resolution of the "
        "training images",
    ),
)


class PredictOptionsMixin:
    """The options form of the Predict widget (mixed into ``PredictWidget``).

    The box is made by :meth:`_build_options_box`, which sets the form's
    attributes (``tile_spin``, ``overlap_spin``, ``batch_spin``,
    ``min_size_spin``, ``separation_spin``, ``segmentation_spin``,
    ``scale_spin``, ``device_combo``) on the widget.
    """

    def _build_options_box(self) -> QGroupBox:
        """The "Options" box, at the defaults of :class:`PredictConfig`."""
        defaults = PredictConfig()
        options_box = QGroupBox("Options")
        form = QFormLayout(options_box)
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(16, 4096)
        self.tile_spin.setSingleStep(16)
        self.tile_spin.setValue(defaults.tile_size)
        form.addRow("Tile size", self.tile_spin)
        self.overlap_spin = QDoubleSpinBox()
        self.overlap_spin.setRange(0.0, 0.9)
        self.overlap_spin.setSingleStep(0.05)
        self.overlap_spin.setValue(defaults.overlap)
        form.addRow("Overlap", self.overlap_spin)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setValue(defaults.batch_size)
        form.addRow("Tiles per batch", self.batch_spin)
        # -1, shown as "model's", leaves the size training measured (or 10 untrained).
        self.min_size_spin = QSpinBox()
        self.min_size_spin.setRange(-1, 1_000_000)
        self.min_size_spin.setSpecialValueText("model's")
        default_size = defaults.min_instance_size
        self.min_size_spin.setValue(-1 if default_size is None else int(default_size))
        self.min_size_spin.setToolTip(
            "instances smaller than this many pixels are dropped (default: the size set "
            "when the model was trained from the objects' sizes)"
        )
        form.addRow("Min. instance size", self.min_size_spin)
        self._model_default_spins = {}
        for key, label, maximum, decimals, tooltip in MODEL_DEFAULTS:
            spin = model_default_spin(maximum, decimals, tooltip)
            form.addRow(label, spin)
            self._model_default_spins[key] = spin
        self.separation_spin = self._model_default_spins["separation_threshold"]
        self.segmentation_spin = self._model_default_spins["segmentation_threshold"]
        self.scale_spin = self._model_default_spins["input_scale"]
        self.device_combo = device_combo()
        form.addRow("Device", self.device_combo)
        return options_box

    def predict_options(self) -> dict[str, Any]:
        """Fields of :class:`~napari_lazyunet.config.PredictConfig` set in the form."""
        options = {
            "tile_size": self.tile_spin.value(),
            "overlap": float(self.overlap_spin.value()),
            "batch_size": self.batch_spin.value(),
            "device": self.device_combo.currentData(),
        }
        if self.min_size_spin.value() >= 0:
            options["min_instance_size"] = self.min_size_spin.value()
        for key, spin in self._model_default_spins.items():
            if spin.value() > 0:
                options[key] = float(spin.value())
        return options
