"""The documented scripting example (docs/plugin/scripting.md) runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin" / "scripting.md"


def _example() -> str:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(
        r"<!-- scripting-example:start -->\s*```python\n(.*?)```\s*<!-- scripting-example:end -->",
        text,
        re.S,
    )
    assert block, "the scripting example block is missing from the docs"
    return block.group(1)


def test_scripting_example_runs(make_napari_viewer, monkeypatch):
    import napari

    viewers = []

    def viewer_factory(*args, **kwargs):
        viewers.append(make_napari_viewer(*args, **kwargs))
        return viewers[-1]

    # make_napari_viewer closes the viewer and checks for leaks after the test.
    monkeypatch.setattr(napari, "Viewer", viewer_factory)
    namespace: dict = {}
    exec(compile(_example(), str(DOC), "exec"), namespace)
    viewer = namespace["viewer"]
    names = [layer.name for layer in viewer.layers]
    assert names[-2:] == ["GrabCut instances", "instances"]
    assert viewer.layers["GrabCut instances"].data.max() > 10
    assert namespace["prediction"].instances.shape == (192, 192)
    assert np.any(viewer.layers["foam segmentation"].data[1])
    assert len(viewer.window.dock_widgets) >= 2


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
