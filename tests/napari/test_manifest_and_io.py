"""The npe2 manifest, the sample contribution and the project folder reader / writer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Layer
from plugin_helpers import PLUGIN

from napari_lazyunet._napari.io_hooks import get_reader, read_project, write_project
from napari_lazyunet._napari.links import ROLES, linked_layers
from napari_lazyunet._napari.planes import is_sparse, set_sparse, strong_planes
from napari_lazyunet._napari.sample_data import foam_layers
from napari_lazyunet.core.files import ProjectError
from napari_lazyunet.core.project import load_project

NPE2 = Path(sys.executable).with_name("npe2")


def test_npe2_validate_passes():
    result = subprocess.run(
        [str(NPE2), "validate", PLUGIN], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_manifest_contributions_and_commands_import():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    contributions = manifest.contributions
    widgets = {w.display_name for w in contributions.widgets}
    assert widgets == {"Lazy labels", "Refine (GrabCut)", "Train", "Predict"}
    assert [s.key for s in contributions.sample_data] == ["foam"]
    assert contributions.readers[0].accepts_directories
    assert contributions.writers[0].layer_types == ["image+", "labels*"]
    segment = contributions.menus["napari/layers/segment"]
    submenu = segment[0].submenu
    assert {item.command for item in contributions.menus[submenu]} == {
        w.command for w in contributions.widgets
    }
    for command in contributions.commands:  # every python_name resolves
        assert callable(_resolve(command.python_name)), command.python_name


def _resolve(python_name: str):
    import importlib

    module, _, attribute = python_name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _viewer_with_sample(n_images=3, shape=(40, 48)):
    viewer = ViewerModel()
    for data, kwargs, kind in foam_layers(n_images, shape):
        viewer.add_layer(Layer.create(data, kwargs, kind))
    return viewer, viewer.layers[0]


def test_writer_then_reader_round_trip(tmp_path):
    viewer, image = _viewer_with_sample()
    set_sparse(image, 2)
    layers = linked_layers(viewer, image)
    layers["separation"].data[1] = 0  # nothing painted: no separation file for plane 1
    folder = tmp_path / "project"
    written = write_project(str(folder), [layer.as_layer_data_tuple() for layer in viewer.layers])
    assert written == [str(folder)]
    settings = json.loads((folder / "project.json").read_text())
    assert settings["class_names"] == ["bubble", "crystal"]
    assert settings["strong"] == ["foam_000.tif"] and settings["sparse"] == ["foam_002.tif"]
    project = load_project(folder)  # the engine reads what the plugin wrote
    assert project.names == ["foam_000", "foam_001", "foam_002"]
    assert project.labels[1].separation is None and project.labels[0].strong
    np.testing.assert_array_equal(project.labels[2].detection, layers["detection"].data[2])

    assert get_reader(str(folder)) is read_project
    assert get_reader(str(tmp_path)) is None  # not a project: left to other readers
    assert get_reader(str(folder / "project.json")) is read_project  # its settings file
    (tmp_path / "project.json").write_text("{}")
    assert get_reader(str(tmp_path / "project.json")) is None  # not in a project folder
    tuples = read_project(str(folder))
    assert [kind for _, _, kind in tuples] == ["image", "labels", "labels", "labels"]
    again = ViewerModel()
    for data, kwargs, kind in tuples:
        again.add_layer(Layer.create(data, kwargs, kind))
    image2 = again.layers[0]
    linked = linked_layers(again, image2)
    for role in ROLES:
        np.testing.assert_array_equal(linked[role].data, layers[role].data)
    assert strong_planes(image2) == [0] and is_sparse(image2, 2)
    np.testing.assert_array_equal(image2.data, image.data)


def test_reader_keeps_images_of_different_shapes_apart(tmp_path):
    from napari_lazyunet.core.labels import ImageLabels
    from napari_lazyunet.core.project import save_project

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (20, 30), np.uint8), rng.integers(0, 255, (24, 24), np.uint8)]
    det = np.zeros((20, 30), np.uint8)
    det[2:5, 2:5] = 1
    save_project(
        tmp_path, ["a", "b"], images, [ImageLabels(detection=det), ImageLabels()], ["cell"]
    )
    tuples = read_project(str(tmp_path))
    assert [kwargs["name"] for _, kwargs, kind in tuples if kind == "image"] == ["a", "b"]
    assert tuples[1][0].shape == (20, 30) and tuples[5][0].shape == (24, 24)


def test_broken_project_raises_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "project.json").write_text("{}")
    with pytest.raises(ProjectError, match="no image"):
        read_project(str(tmp_path))


def test_open_and_save_through_the_viewer(make_napari_viewer_proxy, tmp_path):
    viewer = make_napari_viewer_proxy()
    viewer.open_sample(PLUGIN, "foam")
    folder = tmp_path / "saved"
    viewer.layers.save(str(folder), plugin=PLUGIN)
    assert (folder / "project.json").is_file()
    assert len(list((folder / "images").iterdir())) == 4
    viewer.layers.clear()
    viewer.open(str(folder), plugin=PLUGIN)
    assert len(viewer.layers) == 4
    image = viewer.layers[0]
    assert set(linked_layers(viewer, image)) == set(ROLES)
    assert strong_planes(image) == [0]


def test_reader_claims_project_folders_and_leaves_images_to_napari(
    make_napari_viewer_proxy, tmp_path
):
    import tifffile
    from npe2 import PluginManager

    viewer = make_napari_viewer_proxy()
    manager = PluginManager.instance()

    def readers(path):
        return {reader.plugin_name for reader in manager.iter_compatible_readers([str(path)])}

    tif = tmp_path / "cells.tif"
    tifffile.imwrite(tif, np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert get_reader(str(tif)) is None
    assert PLUGIN not in readers(tif)
    # plugin=None is how File > Open reads: with one candidate reader, no "choose reader" dialog.
    opened = viewer.open(str(tif), plugin=None)
    assert [layer.name for layer in opened] == ["cells"]

    viewer.layers.clear()
    viewer.open_sample(PLUGIN, "foam")
    folder = tmp_path / "saved"
    viewer.layers.save(str(folder), plugin=PLUGIN)
    viewer.layers.clear()
    assert PLUGIN in readers(folder)
    assert readers(folder / "project.json") == {PLUGIN}  # only we read a project's settings file
    viewer.open(str(folder / "project.json"), plugin=None)
    image = viewer.layers[0]
    assert len(viewer.layers) == 4 and set(linked_layers(viewer, image)) == set(ROLES)
    assert strong_planes(image) == [0]
