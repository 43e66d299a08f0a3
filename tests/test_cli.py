"""The command line end to end on a temporary project folder."""

import json

import cv2
import numpy as np
import pytest

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.cli import main
from napari_lazyunet.core.files import read_image, write_image, write_labels
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import load_project, save_project


@pytest.fixture
def project(foam, tmp_path):
    labels = [
        ImageLabels(
            detection=foam.detection[i],
            separation=foam.separation[i],
            segmentation=foam.classes[i] if i == 0 else None,
            strong=i == 0,
        )
        for i in range(3)
    ]
    folder = tmp_path / "project"
    save_project(folder, ["a", "b", "c"], foam.images[:3], labels, foam.class_names)
    return folder


def test_train_predict_evaluate(project, foam, tmp_path, capsys):
    model = tmp_path / "model.pt"
    code = main(
        [
            "train",
            str(project),
            "-o",
            str(model),
            "--steps",
            "30",
            "--batch-size",
            "2",
            "--patch-size",
            "32",
            "--base-channels",
            "4",
            "--depth",
            "2",
            "--device",
            "cpu",
            "--val-fraction",
            "0.34",
            "--lr-schedule",
            "cosine",
            "-q",
        ]
    )
    assert code == 0 and model.is_file()
    assert LazyUNet.load(model).config.train.lr_schedule == "cosine"
    out = capsys.readouterr().out
    assert "validating on 1" in out
    threshold = LazyUNet.load(model).config.predict.separation_threshold
    assert f"separation threshold {threshold:g}" in out

    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                str(model),
                str(project / "images"),
                "-o",
                str(out),
                "-q",
                "--tile-size",
                "32",
                "--probabilities",
            ]
        )
        == 0
    )
    for task in ("detection", "segmentation", "separation", "instances"):
        files = sorted(p.name for p in (out / task).iterdir())
        assert files == ["a.tif", "b.tif", "c.tif"], task
        assert read_image(out / task / "a.tif").shape == (64, 64)
    assert read_image(out / "probabilities" / "segmentation" / "a.tif").shape == (3, 64, 64)

    # A lower separation threshold marks exactly the pixels above it.
    interface = read_image(out / "probabilities" / "separation" / "a.tif")[1]
    threshold = float(np.quantile(interface, 0.5))
    loose = tmp_path / "pred-loose"
    assert (
        main(
            [
                "predict",
                str(model),
                str(project / "images" / "a.tif"),
                "-o",
                str(loose),
                "-q",
                "--tile-size",
                "32",
                "--separation-threshold",
                str(threshold),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        read_image(loose / "separation" / "a.tif"), (interface > threshold).astype(np.uint8)
    )

    # An image at twice the resolution, brought to the model's by --input-scale,
    # gives outputs at its own size that match the ones at the model's resolution.
    large_dir = tmp_path / "large"
    large = cv2.resize(
        read_image(project / "images" / "a.tif"), (128, 128), interpolation=cv2.INTER_LINEAR
    )
    write_image(large_dir / "a.tif", large)
    scaled = tmp_path / "pred-scaled"
    assert (
        main(
            [
                "predict",
                str(model),
                str(large_dir),
                "-o",
                str(scaled),
                "-q",
                "--tile-size",
                "32",
                "--input-scale",
                "0.5",
            ]
        )
        == 0
    )
    unscaled = tmp_path / "pred-unscaled"
    assert (
        main(
            ["predict", str(model), str(large_dir), "-o", str(unscaled), "-q", "--tile-size", "32"]
        )
        == 0
    )
    seg_large = read_image(scaled / "segmentation" / "a.tif")
    assert seg_large.shape == (128, 128)
    seg = read_image(out / "segmentation" / "a.tif")
    agree = (seg_large[::2, ::2] == seg).mean()
    agree_unscaled = (read_image(unscaled / "segmentation" / "a.tif")[::2, ::2] == seg).mean()
    # The small test model is noisy, so the two resolutions agree only roughly
    # (0.92 with 30 steps), but better than without the scale (0.89).
    assert agree > 0.75 and agree > agree_unscaled

    truth = tmp_path / "truth"
    for name, inst in zip("abc", foam.instances[:3], strict=True):
        write_labels(truth / f"{name}.tif", inst)
    report = tmp_path / "scores.json"
    assert main(["evaluate", str(out), "--truth", str(truth), "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert len(scores["images"]) == 3
    for key in ("dice", "instance_f1", "aji", "object_dice", "interface_precision"):
        assert 0 <= scores["summary"][key] <= 1, key


def test_refine_writes_exact_masks_and_keeps_user_pixels(project):
    # user paints one segmentation pixel on image "b" (not strong)
    labels = load_project(project).labels[1]
    seg = np.zeros((64, 64), np.uint8)
    seg[0, 0] = 2
    from napari_lazyunet.core.project import save_labels

    save_labels(project, "b", ImageLabels(labels.detection, labels.separation, seg, False))
    assert main(["refine", str(project), "--images", "b", "--mark-strong"]) == 0
    after = load_project(project)
    refined = after.labels[1]
    assert refined.strong and refined.segmentation[0, 0] == 2
    # every inner region ends up inside the refined mask, with its class
    painted = labels.detection > 0
    assert (refined.segmentation[painted] == labels.detection[painted]).mean() > 0.95
    assert (refined.segmentation > 0).sum() > painted.sum()


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing"), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lazyunet train: error:") and "Traceback" not in err
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    assert main(["predict", str(tmp_path / "bad.pt"), str(tmp_path), "-o", str(tmp_path)]) == 2
    assert "lazyunet predict: error:" in capsys.readouterr().err


def test_train_at_an_input_scale_and_predict_at_the_image_size(project, tmp_path):
    model = tmp_path / "half.pt"
    assert (
        main(
            [
                "train",
                str(project),
                "-o",
                str(model),
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--patch-size",
                "16",
                "--base-channels",
                "4",
                "--depth",
                "2",
                "--device",
                "cpu",
                "--input-scale",
                "0.5",
                "--no-segmentation-from-inner",
                "--no-segmentation-far-background",
                "-q",
            ]
        )
        == 0
    )
    config = LazyUNet.load(model).config
    assert config.predict.input_scale == 0.5
    # The paper's loss: segmentation from the strong images only.
    assert not config.train.segmentation_from_inner
    assert not config.train.segmentation_far_background
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                str(model),
                str(project / "images" / "a.tif"),
                "-o",
                str(out),
                "-q",
                "--tile-size",
                "32",
            ]
        )
        == 0
    )
    assert read_image(out / "instances" / "a.tif").shape == (64, 64)
    # A low segmentation threshold segments at least what the default does.
    low = tmp_path / "low"
    assert (
        main(
            [
                "predict",
                str(model),
                str(project / "images" / "a.tif"),
                "-o",
                str(low),
                "-q",
                "--tile-size",
                "32",
                "--segmentation-threshold",
                "0.05",
            ]
        )
        == 0
    )
    default = read_image(out / "segmentation" / "a.tif") > 0
    loose = read_image(low / "segmentation" / "a.tif") > 0
    assert loose.sum() >= default.sum() and not np.any(default & ~loose)
