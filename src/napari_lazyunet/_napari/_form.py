"""Form pieces shared by the dock widgets: spin boxes with an \"auto\" value, check boxes,
device menus, folder rows, and the model-file filter of file dialogs."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_lazyunet.core.devices import available_devices

__all__ = [
    "MODEL_FILTER",
    "auto_or",
    "check_box",
    "device_choices",
    "device_combo",
    "model_default_spin",
    "path_row",
    "spin_box",
]


MODEL_FILTER = "napari-lazyunet model (*.pt);;All files (*)"


def device_choices() -> list[tuple[str, str, bool]]:
    """Devices for the device menu: ``(value, label, available)``.

    ``auto`` names the device it resolves to; CUDA and MPS are listed even
    when absent (disabled), so the user sees what this machine offers.
    """
    usable = available_devices()
    choices = [("auto", f"auto ({usable[0]})", True)]
    cuda = [name for name in usable if name.startswith("cuda")]
    choices += [(name, name, True) for name in cuda] or [("cuda", "cuda (not available)", False)]
    choices.append(("mps", "mps" if "mps" in usable else "mps (not available)", "mps" in usable))
    choices.append(("cpu", "cpu", True))
    return choices


def auto_or(value: float) -> float | None:
    """None for a spin box at 0 (shown as "auto"), else its value."""
    return None if value == 0 else value


def device_combo() -> QComboBox:
    """A device menu with the entries of :func:`device_choices` (absent devices disabled)."""
    combo = QComboBox()
    for value, label, ok in device_choices():
        combo.addItem(label, value)
        if not ok:
            combo.model().item(combo.count() - 1).setEnabled(False)
    return combo


def check_box(text: str, checked: bool, tooltip: str) -> QCheckBox:
    box = QCheckBox(text)
    box.setChecked(checked)
    box.setToolTip(tooltip)
    return box


def spin_box(low: int, high: int, value: int, step: int = 1, auto: bool = False) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    if auto:
        spin.setSpecialValueText("auto")  # 0 = chosen from the data
    spin.setValue(value)
    return spin


def model_default_spin(maximum: float, decimals: int, tooltip: str) -> QDoubleSpinBox:
    """A number field whose 0, shown as "model's", leaves the model's own setting.

    Used for settings a model carries from its training (the calibrated
    separation and segmentation thresholds, the input scale it was trained at).
    """
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(0.0, maximum)
    spin.setSingleStep(0.05)
    spin.setSpecialValueText("model's")
    spin.setValue(0.0)
    spin.setToolTip(tooltip)
    return spin


def path_row(parent: QWidget, title: str) -> tuple[QLineEdit, QWidget]:
    edit = QLineEdit()
    button = QPushButton("…")
    button.setMaximumWidth(30)

    def browse() -> None:
        path = QFileDialog.getExistingDirectory(parent, title)
        if path:
            edit.setText(path)

    button.clicked.connect(browse)
    row = QWidget()
    row_layout = QHBoxLayout(row)
    row_layout.setContentsMargins(0, 0, 0, 0)
    row_layout.addWidget(edit)
    row_layout.addWidget(button)
    return edit, row
