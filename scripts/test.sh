#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine, then run it.
#   - system libraries for a real Qt/napari window on a virtual X display (Xvfb)
#   - a virtual environment with the CPU build of PyTorch and the package with its test extra
#   - ruff (lint and format), import-linter (the layers), then the whole pytest suite under Xvfb
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# Qt's xcb platform plugin (bundled with PyQt6) loads these at start-up.
PACKAGES="xvfb xauth libegl1 libgl1 libdbus-1-3 libfontconfig1 libxkbcommon-x11-0 \
libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1"
missing=""
for package in $PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "installing system packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to the CPU build; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[testing]"

.venv/bin/ruff check src tests benchmarks docs
.venv/bin/ruff format --check src tests benchmarks docs
.venv/bin/lint-imports
# QT_QPA_PLATFORM=xcb: napari draws with OpenGL, which Qt's offscreen platform lacks.
QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"
