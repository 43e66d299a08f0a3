"""Prediction and its files: painted labels are never overwritten, writes are atomic,
bad inputs end in clear errors, and evaluate reports undefined scores as such."""

from __future__ import annotations

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.cli import main
from napari_lazyunet.core import files, project_layout
from napari_lazyunet.core.files import ProjectError, read_image, write_image, write_labels
from napari_lazyunet.core.labels import ImageLabels, LabelError
from napari_lazyunet.core.project import save_labels, save_project

TASKS = ("detection", "segmentation", "separation", "instances")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    LazyUNet(class_names=("a",), in_channels=1, base_channels=4, depth=2).save(path)
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    for name in ("a", "b", "c"):
        write_image(folder / f"{name}.tif", rng.integers(0, 255, (48, 40), dtype=np.uint8))
    return folder


def _predict(model_file, source, out, *extra):
    return main(
        [
            "predict",
            str(model_file),
            str(source),
            "-o",
            str(out),
            "-q",
            "--tile-size",
            "32",
            "--device",
            "cpu",
            *extra,
        ]
    )


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(err, command="predict"):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"lazyunet {command}: error:") and "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------ painted labels are safe
def test_predict_refuses_a_project_folder(model_file, images, tmp_path, capsys):
    det = np.zeros((48, 40), np.uint8)
    det[10:20, 10:20] = 1
    project = save_project(
        tmp_path / "project",
        ["a"],
        [read_image(images / "a.tif")],
        [ImageLabels(detection=det)],
        ["a"],
    )
    before = _snapshot(project)
    assert _predict(model_file, images, project) == 2
    assert "project folder" in _one_error_line(capsys.readouterr().err)
    assert _snapshot(project) == before


@pytest.mark.parametrize("task", ["detection", "separation", "segmentation"])
def test_predict_refuses_a_folder_with_label_files_it_did_not_write(
    model_file, images, tmp_path, capsys, task
):
    out = tmp_path / "out"
    write_labels(out / task / "a.tif", np.ones((48, 40), np.uint8))
    before = _snapshot(out)
    assert _predict(model_file, images, out) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{task}/a.tif" in line and "not written by lazyunet predict" in line
    assert _snapshot(out) == before


def test_predict_writes_a_manifest_and_may_write_its_folder_again(
    model_file, images, tmp_path, capsys
):
    out = tmp_path / "out"
    assert _predict(model_file, images, out, "--min-instance-size", "3") == 0
    manifest = json.loads((out / "prediction.json").read_text())
    assert manifest["model"] == str(model_file.resolve())
    assert manifest["date"] and manifest["settings"]["min_instance_size"] == 3
    listed = {f["path"] for f in manifest["files"]}
    assert listed == {f"{task}/{name}.tif" for task in TASKS for name in "abc"}
    for task in TASKS:
        assert sorted(p.name for p in (out / task).iterdir()) == ["a.tif", "b.tif", "c.tif"]

    assert _predict(model_file, images, out) == 0  # its own outputs may be replaced

    # A label painted over a prediction, or added next to them, is kept.
    painted = np.zeros((48, 40), np.uint8)
    painted[5:9, 5:9] = 1
    write_labels(out / "segmentation" / "b.tif", painted)
    capsys.readouterr()
    assert _predict(model_file, images, out) == 2
    assert "segmentation/b.tif changed" in _one_error_line(capsys.readouterr().err)
    np.testing.assert_array_equal(read_image(out / "segmentation" / "b.tif"), painted)


# ------------------------------------------------------------------- atomic writes
def _broken_imwrite(real):
    """tifffile.imwrite that writes a few bytes, then fails like a full disk."""

    def imwrite(target, *args, **kwargs):
        if hasattr(target, "write"):
            target.write(b"half a file")
        else:
            with open(target, "wb") as stream:
                stream.write(b"half a file")
        raise OSError(28, "No space left on device")

    return imwrite


def test_failed_label_and_image_writes_keep_the_old_file(tmp_path, monkeypatch):
    old = np.arange(12, dtype=np.uint8).reshape(3, 4)
    labels_path = write_labels(tmp_path / "labels" / "a.tif", old)
    image_path = write_image(tmp_path / "images" / "a.tif", old)
    monkeypatch.setattr(tifffile, "imwrite", _broken_imwrite(tifffile.imwrite))
    for write, path in ((write_labels, labels_path), (write_image, image_path)):
        with pytest.raises(OSError, match="No space"):
            write(path, np.zeros((3, 4), np.uint8))
        assert [p.name for p in path.parent.iterdir()] == ["a.tif"]  # no temporary file left
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(labels_path), old)
    np.testing.assert_array_equal(read_image(image_path), old)


def test_failed_save_labels_keeps_old_labels_and_project_file(tmp_path, monkeypatch):
    det = np.zeros((6, 8), np.uint8)
    det[1:3, 1:3] = 1
    sep = np.zeros((6, 8), np.uint8)
    sep[4, :] = 1
    folder = save_project(
        tmp_path / "p",
        ["a"],
        [np.arange(48, dtype=np.uint8).reshape(6, 8)],
        [ImageLabels(detection=det, separation=sep)],
        ["a"],
    )
    before = _snapshot(folder)
    new = ImageLabels(
        detection=np.ones((6, 8), np.uint8),
        separation=None,
        segmentation=np.ones((6, 8), np.uint8),
        strong=True,
    )
    with monkeypatch.context() as patch:
        patch.setattr(tifffile, "imwrite", _broken_imwrite(tifffile.imwrite))
        with pytest.raises(OSError):
            save_labels(folder, "a", new)
    assert _snapshot(folder) == before
    # The rename of project.json fails: the old file stays, the temporary one goes.
    with monkeypatch.context() as patch:
        patch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("denied")))
        with pytest.raises(OSError, match="denied"):
            project_layout.write_settings(folder, {"class_names": ["changed"]})
    assert _snapshot(folder) == before


def test_outputs_of_one_image_are_written_together_or_not_at_all(
    model_file, images, tmp_path, monkeypatch, capsys
):
    calls = []
    real = tifffile.imwrite

    def fails_on_third(target, *args, **kwargs):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(target, *args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", fails_on_third)
    out = tmp_path / "out"
    assert _predict(model_file, images / "a.tif", out) == 2
    assert "a.tif" in _one_error_line(capsys.readouterr().err)
    assert not [p for p in out.rglob("*") if p.is_file()]  # nothing, not even temporaries


# ---------------------------------------------------------------- folders of images
def test_inputs_that_share_a_stem_get_distinct_outputs(model_file, tmp_path, capsys):
    rng = np.random.default_rng(1)
    folder = tmp_path / "mixed"
    write_image(folder / "a.tif", rng.integers(0, 255, (40, 40), dtype=np.uint8))
    iio.imwrite(folder / "a.png", rng.integers(0, 255, (40, 40), dtype=np.uint8))
    out = tmp_path / "out"
    assert _predict(model_file, folder, out) == 0
    assert "share the name 'a'" in capsys.readouterr().out
    for task in TASKS:
        assert sorted(p.name for p in (out / task).iterdir()) == ["a.png.tif", "a.tif.tif"]


def test_an_unreadable_image_is_reported_and_the_others_are_predicted(
    model_file, images, tmp_path, capsys
):
    (images / "b.tif").write_bytes(b"II*\x00 this is not a TIFF")
    out = tmp_path / "out"
    assert _predict(model_file, images, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("b.tif: skipped:")
    assert err[1].startswith("lazyunet predict: error:") and err[1].endswith("b.tif")
    for task in TASKS:
        assert sorted(p.name for p in (out / task).iterdir()) == ["a.tif", "c.tif"]


def test_ctrl_c_ends_with_one_line_and_status_130(
    model_file, images, tmp_path, monkeypatch, capsys
):
    real = LazyUNet.iter_predict
    seen = []

    def interrupted(self, image, **options):
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(self, image, **options)

    monkeypatch.setattr(LazyUNet, "iter_predict", interrupted)
    out = tmp_path / "out"
    try:
        code = _predict(model_file, images, out)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command")
    assert code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped after 1 of 3" in err[0]
    assert sorted(p.name for p in (out / "instances").iterdir()) == ["a.tif"]
    assert [
        f["path"]
        for f in json.loads((out / "prediction.json").read_text())["files"]
        if f["path"].startswith("instances/")
    ] == ["instances/a.tif"]


# ------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def gray_model(model_file):
    return LazyUNet.load(model_file)


@pytest.mark.parametrize(
    ("bad", "message"),
    [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite"), (1e39, "float32 range")],
)
def test_non_finite_or_huge_values_are_refused(gray_model, bad, message):
    image = np.random.default_rng(0).random((40, 40))
    image[3, 4] = bad
    with pytest.raises(LabelError, match=message):
        gray_model.predict(image, tile_size=32, device="cpu")
    stack = np.stack([np.ones((40, 40)), image])
    with pytest.raises(LabelError, match=f"plane 1 .*{message}"):
        gray_model.predict(stack, tile_size=32, device="cpu")


def test_nan_image_in_the_cli_is_an_error_not_an_empty_result(model_file, tmp_path, capsys):
    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    image[:5] = np.nan
    write_image(tmp_path / "nan.tif", image)
    out = tmp_path / "out"
    assert _predict(model_file, tmp_path / "nan.tif", out) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "nan.tif" in line and "200 NaN" in line
    assert not (out / "instances").exists()


@pytest.mark.parametrize("channels", [2, 3, 5])
def test_gray_model_refuses_channels_last_images(gray_model, channels):
    image = np.random.default_rng(0).random((40, 36, channels))
    with pytest.raises(LabelError, match=f"{channels} channels|RGB"):
        gray_model.predict(image, tile_size=32, device="cpu")


def test_gray_model_takes_a_trailing_channel_of_one_and_stacks(gray_model):
    image = np.random.default_rng(0).random((40, 36, 1))
    assert gray_model.predict(image, tile_size=32, device="cpu").instances.shape == (40, 36)
    stack = np.random.default_rng(0).random((2, 40, 36))
    assert gray_model.predict(stack, tile_size=32, device="cpu").instances.shape == (2, 40, 36)


def test_multichannel_model_refuses_other_channel_counts():
    model = LazyUNet(class_names=("a",), in_channels=3, base_channels=4, depth=2)
    with pytest.raises(LabelError, match="in_channels=3"):
        model.predict(np.zeros((40, 36, 2)), tile_size=32, device="cpu")


# ----------------------------------------------------------------------- evaluate
def _prediction_folder(tmp_path, instances, separation=None):
    out = tmp_path / "pred"
    write_labels(out / "instances" / "a.tif", instances)
    write_labels(out / "segmentation" / "a.tif", (instances > 0).astype(np.uint8))
    if separation is not None:
        write_labels(out / "separation" / "a.tif", separation)
    return out


def test_evaluate_reports_interface_scores_without_interfaces_as_undefined(tmp_path, capsys):
    truth = np.zeros((40, 40), np.uint16)
    truth[5:15, 5:15] = 1  # one isolated object: no interface
    pred = _prediction_folder(tmp_path, truth, separation=np.zeros((40, 40), np.uint8))
    write_labels(tmp_path / "truth" / "a.tif", truth)
    report = tmp_path / "scores.json"
    assert (
        main(["evaluate", str(pred), "--truth", str(tmp_path / "truth"), "--json", str(report)])
        == 0
    )
    out = capsys.readouterr().out
    assert "interface_precision    n/a" in out and "interface_recall       n/a" in out
    scores = json.loads(report.read_text())
    assert math.isnan(scores["summary"]["interface_precision"])
    assert math.isnan(scores["summary"]["interface_recall"])
    assert math.isnan(scores["images"][0]["interface_precision"])
    assert scores["summary"]["dice"] == 1.0


def test_evaluate_errors_name_the_file(tmp_path, capsys):
    truth = np.zeros((40, 40), np.uint16)
    truth[5:15, 5:15] = 1
    write_labels(tmp_path / "truth" / "a.tif", truth)
    pred = _prediction_folder(tmp_path, truth[:30])
    assert main(["evaluate", str(pred), "--truth", str(tmp_path / "truth")]) == 2
    line = _one_error_line(capsys.readouterr().err, "evaluate")
    assert str(pred / "instances" / "a.tif") in line and "(30, 40)" in line

    write_labels(pred / "instances" / "a.tif", truth)
    assert main(["evaluate", str(pred), "--truth", str(tmp_path / "missing")]) == 2
    assert "missing" in _one_error_line(capsys.readouterr().err, "evaluate")
    assert main(["evaluate", str(tmp_path / "nothing"), "--truth", str(tmp_path / "truth")]) == 2
    assert "nothing" in _one_error_line(capsys.readouterr().err, "evaluate")

    classes = tmp_path / "classes"
    write_labels(classes / "a.tif", (truth > 0).astype(np.uint8))
    (pred / "segmentation" / "a.tif").unlink()
    assert (
        main(
            [
                "evaluate",
                str(pred),
                "--truth",
                str(tmp_path / "truth"),
                "--truth-classes",
                str(classes),
            ]
        )
        == 2
    )
    assert "segmentation" in _one_error_line(capsys.readouterr().err, "evaluate")


def test_write_prediction_refuses_non_integer_labels_before_writing(tmp_path):
    with pytest.raises(ProjectError, match="must be integers"):
        write_labels(tmp_path / "x.tif", np.zeros((3, 3), np.float32))
    assert not list(tmp_path.iterdir())
