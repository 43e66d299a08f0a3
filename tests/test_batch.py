"""Folders of images: resumable runs, and the same outputs on a dask cluster as here."""

import json

import numpy as np
import pytest
import tifffile

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.batch import FolderItem, iter_predict_folder
from napari_lazyunet.cli import main
from napari_lazyunet.core.files import read_image
from napari_lazyunet.core.prediction_folder import PredictionFolder
from tiny import tiny_config


@pytest.fixture(scope="module")
def model_and_images(foam, tmp_path_factory):
    model = LazyUNet(tiny_config(steps=5))
    model.fit(
        foam.images[:2],
        detection=foam.detection[:2],
        separation=foam.separation[:2],
        segmentation=[foam.classes[0], None],
    )
    folder = tmp_path_factory.mktemp("images")
    files = []
    for i, image in enumerate(foam.images):
        files.append(folder / f"img{i}.tif")
        tifffile.imwrite(files[-1], image)
    return model, files


def _items(events):
    return [item for item in events if isinstance(item, FolderItem)]


def test_a_second_run_skips_what_the_same_model_and_settings_wrote(model_and_images, tmp_path):
    model, files = model_and_images
    names = [f.stem for f in files]
    run = {"model": "m", "settings": {"tile_size": 64}}
    first = _items(iter_predict_folder(model, files, names, PredictionFolder(tmp_path, run)))
    assert [i.skipped for i in first] == [False] * 4 and all(i.result for i in first)
    manifest = json.loads((tmp_path / "prediction.json").read_text())
    assert set(manifest["inputs"]) == set(names)

    # An input that changed, and another model or setting, are predicted again.
    tifffile.imwrite(files[1], read_image(files[1])[::-1].copy())
    again = _items(iter_predict_folder(model, files, names, PredictionFolder(tmp_path, run)))
    assert {i.name: i.skipped for i in again} == {
        "img0": True,
        "img1": False,
        "img2": True,
        "img3": True,
    }
    other = {**run, "settings": {"tile_size": 32}}
    changed = _items(iter_predict_folder(model, files, names, PredictionFolder(tmp_path, other)))
    assert not any(i.skipped for i in changed)
    forced = iter_predict_folder(
        model, files, names, PredictionFolder(tmp_path, other), resume=False
    )
    assert not any(i.skipped for i in _items(forced))


def test_a_local_dask_cluster_writes_what_the_serial_run_writes(model_and_images, tmp_path):
    distributed = pytest.importorskip("distributed")
    model, files = model_and_images
    names = [f.stem for f in files]
    serial = tmp_path / "serial"
    _items(iter_predict_folder(model, files, names, PredictionFolder(serial, {})))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        items = _items(
            iter_predict_folder(
                model, files, names, PredictionFolder(tmp_path / "dask", {}), scheduler=client
            )
        )
    assert sorted(i.name for i in items) == sorted(names) and all(i.result for i in items)
    for task in ("detection", "segmentation", "separation", "instances"):
        for name in names:
            np.testing.assert_array_equal(
                read_image(tmp_path / "dask" / task / f"{name}.tif"),
                read_image(serial / task / f"{name}.tif"),
                err_msg=f"{task}/{name}",
            )


def test_the_command_line_resumes_a_folder(model_and_images, tmp_path, capsys):
    model, files = model_and_images
    path = model.save(tmp_path / "m.pt")
    args = ["predict", str(path), str(files[0].parent), "-o", str(tmp_path / "out"), "-q"]
    assert main(args) == 0
    assert "wrote 4 prediction(s)" in capsys.readouterr().out
    assert main(args) == 0
    assert "wrote 0 prediction(s)" in (out := capsys.readouterr().out) and "4 already" in out
    assert main([*args, "--overwrite"]) == 0
    assert "wrote 4 prediction(s)" in capsys.readouterr().out
