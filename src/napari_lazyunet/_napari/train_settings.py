"""The Train widget's settings form: the model and training fields, presets, the config they give.

:class:`TrainSettingsMixin` builds the "Model and training" box of
:class:`~napari_lazyunet._napari.train_widget.TrainWidget` (defaults from the
engine; 0 shows as "auto", chosen from the data when training starts) and
turns it into a :class:`~napari_lazyunet.config.LazyUNetConfig` or the
options of :meth:`~napari_lazyunet.api.LazyUNet.iter_fit`. :func:`presets`
are the named settings the preset menu fills in; editing a preset field
switches the menu to "custom".
"""

from __future__ import annotations

import os
from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
)

from napari_lazyunet.config import LazyUNetConfig
from napari_lazyunet.core.autoconfig import CPU_BUDGET_MINUTES
from napari_lazyunet.sample.demo import DemoSettings

from ._form import auto_or, check_box, device_combo, spin_box

__all__ = ["PRESET_LABELS", "TrainSettingsMixin", "presets"]


def presets() -> dict[str, dict[str, Any]]:
    """Named settings for the form: auto, the paper's and a small CPU-sized network.

    Returns
    -------
    dict
        ``{name: {"base_channels", "depth", "steps", "batch_size", "patch_size",
        "validate_every"}}``; 0 means "auto" (chosen from the data when training
        starts, see :mod:`napari_lazyunet.core.autoconfig`). ``"auto"`` leaves
        every size to the engine and fits the steps to the time budget (the
        default); ``"paper"`` is the paper's network and schedule (for a GPU);
        ``"quick"`` is the built-in demo's
        :class:`~napari_lazyunet.sample.demo.DemoSettings` (minutes on a laptop CPU).
    """
    quick = DemoSettings()
    return {
        "auto": {
            "base_channels": 0,
            "depth": 0,
            "steps": 0,
            "batch_size": 0,
            "patch_size": 0,
            "validate_every": LazyUNetConfig().train.validate_every,
        },
        "paper": {
            "base_channels": 64,
            "depth": 4,
            "steps": 10_000,
            "batch_size": 16,
            "patch_size": 256,
            "validate_every": LazyUNetConfig().train.validate_every,
        },
        "quick": {
            "base_channels": quick.base_channels,
            "depth": quick.depth,
            "steps": quick.steps,
            "batch_size": quick.batch_size,
            "patch_size": quick.patch_size,
            "validate_every": max(quick.steps // 10, 1),
        },
    }


PRESET_LABELS = {
    "auto": "auto: sizes from the data, steps from the time budget",
    "quick": "quick: small network, minutes on a CPU",
    "paper": "paper: the paper's network, for a GPU",
    "custom": "custom",
}


class TrainSettingsMixin:
    """The settings form of the Train widget (mixed into ``TrainWidget``).

    The box is made by :meth:`_build_settings_box`, which sets the form's
    attributes (``continue_check``, ``preset_combo``, ``steps_spin``, ...)
    on the widget.
    """

    def _build_settings_box(self) -> QGroupBox:
        """The "Model and training" box, with the "auto" preset applied."""
        defaults = LazyUNetConfig()  # the engine's defaults
        cfg_box = QGroupBox("Model and training")
        form = QFormLayout(cfg_box)
        self.continue_check = QCheckBox("continue training the chosen model")
        self.continue_check.setToolTip(
            "Fine-tune a copy of the model chosen below instead of a new one; the chosen "
            "model itself stays as it is"
        )
        form.addRow(self.continue_check)
        self.preset_combo = QComboBox()
        for key, label in PRESET_LABELS.items():
            self.preset_combo.addItem(label, key)
        self.preset_combo.setToolTip(
            "Fill the fields below; 'auto' chooses every size from the data and fits the "
            "steps to the time budget (fields showing 'auto')"
        )
        form.addRow("Preset", self.preset_combo)
        self.multitask_check = QCheckBox("multi-task U-Net (off: single-task baseline)")
        self.multitask_check.setChecked(defaults.model.multitask)
        form.addRow(self.multitask_check)
        self.inner_check = check_box(
            "inner regions also teach segmentation",
            defaults.train.segmentation_from_inner,
            "On images without an exact mask, count the painted inner regions as object "
            "pixels for the segmentation output too (off, with the box below: the paper's "
            "loss); alone, with very few strong images, it tends to make objects too large",
        )
        form.addRow(self.inner_check)
        self.far_check = check_box(
            "far background also teaches segmentation",
            defaults.train.segmentation_far_background,
            "On images without an exact mask whose every object is painted (detection not "
            "sparse), count the pixels farther from every inner region than the strong "
            "images' objects reach as background for the segmentation output too, and "
            "all of an image painted with explicit background only (no object)",
        )
        form.addRow(self.far_check)
        # 0 = auto everywhere below: chosen from the data when training starts.
        self.base_spin = spin_box(0, 256, 0, auto=True)
        form.addRow("Base channels", self.base_spin)
        self.depth_spin = spin_box(0, 6, 0, auto=True)
        form.addRow("Depth", self.depth_spin)
        self.steps_spin = spin_box(0, 1_000_000, 0, auto=True)
        self.steps_spin.setToolTip("Optimiser steps; auto: as many as fit in the time budget")
        form.addRow("Steps", self.steps_spin)
        self.budget_spin = QDoubleSpinBox()
        self.budget_spin.setDecimals(1)
        self.budget_spin.setRange(0.5, 7 * 24 * 60.0)
        self.budget_spin.setValue(CPU_BUDGET_MINUTES)
        self.budget_spin.setSuffix(" min")
        self.budget_spin.setToolTip(
            "Wall-clock time for training when Steps is auto, calibration included"
        )
        form.addRow("Time budget", self.budget_spin)
        self.batch_spin = spin_box(0, 1024, 0, auto=True)
        form.addRow("Batch size", self.batch_spin)
        self.patch_spin = spin_box(0, 4096, 0, step=16, auto=True)
        form.addRow("Patch size", self.patch_spin)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.0, 1.0)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setSpecialValueText("auto")
        self.lr_spin.setValue(0.0)
        form.addRow("Learning rate", self.lr_spin)
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setDecimals(3)
        self.scale_spin.setRange(0.0, 16.0)
        self.scale_spin.setSingleStep(0.05)
        self.scale_spin.setSpecialValueText("auto")
        self.scale_spin.setValue(0.0)
        self.scale_spin.setToolTip(
            "Train on the images resized by this factor (e.g. 0.5 when objects are large "
            "and finely sampled); the model keeps it and resizes images it predicts"
        )
        form.addRow("Input scale", self.scale_spin)
        self.validate_spin = spin_box(0, 1_000_000, defaults.train.validate_every)
        form.addRow("Validate every", self.validate_spin)
        self.device_combo = device_combo()
        form.addRow("Device", self.device_combo)
        self.threads_spin = spin_box(0, 1024, max(1, (os.cpu_count() or 2) - 1))
        self.threads_spin.setToolTip(
            "CPU threads for training (0: all). One core is left free by default "
            "so the viewer stays responsive."
        )
        form.addRow("CPU threads", self.threads_spin)
        self.checkpoint_edit = QLineEdit()
        self.checkpoint_edit.setPlaceholderText("empty: a file in the recovery folder")
        self.checkpoint_edit.setToolTip(
            "Model file kept up to date during training (every few minutes, at the end and "
            "on stop); empty: a new file in the recovery folder"
        )
        form.addRow("Checkpoint", self.checkpoint_edit)
        self._preset_fields = {
            "base_channels": self.base_spin,
            "depth": self.depth_spin,
            "steps": self.steps_spin,
            "batch_size": self.batch_spin,
            "patch_size": self.patch_spin,
            "validate_every": self.validate_spin,
        }
        self.apply_preset("auto")
        self.preset_combo.currentIndexChanged.connect(
            lambda _: self.apply_preset(self.preset_combo.currentData())
        )
        for spin in self._preset_fields.values():
            spin.valueChanged.connect(self._mark_custom)
        return cfg_box

    def train_options(self) -> dict[str, Any]:
        """Fields of :class:`~napari_lazyunet.config.TrainConfig` set in the form."""
        return {
            "steps": auto_or(self.steps_spin.value()),
            "time_budget": float(self.budget_spin.value()),
            "batch_size": auto_or(self.batch_spin.value()),
            "patch_size": auto_or(self.patch_spin.value()),
            "learning_rate": auto_or(float(self.lr_spin.value())),
            "validate_every": self.validate_spin.value(),
            "device": self.device_combo.currentData(),
            "num_threads": self.threads_spin.value(),
            "segmentation_from_inner": self.inner_check.isChecked(),
            "segmentation_far_background": self.far_check.isChecked(),
        }

    def config_for(self, class_names: tuple[str, ...], in_channels: int) -> LazyUNetConfig:
        """The configuration of a new model for these classes and channels."""
        return LazyUNetConfig().replace(
            model={
                "class_names": tuple(class_names),
                "in_channels": int(in_channels),
                "base_channels": auto_or(self.base_spin.value()),
                "depth": auto_or(self.depth_spin.value()),
                "multitask": self.multitask_check.isChecked(),
            },
            train=self.train_options(),
            predict={"input_scale": auto_or(float(self.scale_spin.value()))},
        )

    def apply_preset(self, name: str) -> None:
        """Fill the form with a preset of :func:`presets` (``"custom"`` changes nothing)."""
        values = presets().get(name)
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(name))
        self.preset_combo.blockSignals(False)
        if values is None:
            return
        self._applying_preset = True
        try:
            self.set_fields(**values)
        finally:
            self._applying_preset = False

    def set_fields(self, **values: Any) -> None:
        """Set form fields by name, e.g. ``set_fields(steps=100, device="cpu")``.

        Names: the keys of :func:`presets`, ``learning_rate``, ``num_threads``,
        ``device`` (a value of :func:`device_choices`) and ``validation_share``.
        """
        spins = {
            **self._preset_fields,
            "learning_rate": self.lr_spin,
            "num_threads": self.threads_spin,
            "validation_share": self.validation_spin,
        }
        for key, value in values.items():
            if key == "device":
                self.device_combo.setCurrentIndex(self.device_combo.findData(value))
            elif key in spins:
                spins[key].setValue(value)
            else:
                raise TypeError(f"unknown field {key!r}; known: {[*sorted(spins), 'device']}")

    def _mark_custom(self, *_: Any) -> None:
        if getattr(self, "_applying_preset", False):
            return
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData("custom"))
        self.preset_combo.blockSignals(False)

    def set_form(self, config: LazyUNetConfig) -> None:
        """Show a configuration (e.g. of a loaded model) in the form."""

        def shown(value):  # None (auto) shows as 0, "auto"
            return 0 if value is None else value

        self.base_spin.setValue(shown(config.model.base_channels))
        self.depth_spin.setValue(shown(config.model.depth))
        self.multitask_check.setChecked(config.model.multitask)
        self.inner_check.setChecked(config.train.segmentation_from_inner)
        self.far_check.setChecked(config.train.segmentation_far_background)
        self.batch_spin.setValue(shown(config.train.batch_size))
        self.patch_spin.setValue(shown(config.train.patch_size))
        self.lr_spin.setValue(shown(config.train.learning_rate))
        self.validate_spin.setValue(config.train.validate_every)
        self.scale_spin.setValue(shown(config.predict.input_scale))
