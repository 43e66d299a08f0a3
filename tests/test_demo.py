"""The demo runs end to end (tiny settings) and writes what it promises."""

from napari_lazyunet.cli import main
from napari_lazyunet.core.files import read_image
from napari_lazyunet.core.project import load_project
from napari_lazyunet.sample.demo import DemoSettings, run_demo


def test_demo_writes_project_models_predictions_and_overlay(tmp_path):
    lines = []
    settings = DemoSettings(steps=2, image_size=64, base_channels=4, depth=2, patch_size=32)
    multi, single = run_demo(tmp_path, settings, report=lines.append)
    project = load_project(tmp_path / "project")
    assert len(project) == 10 and sum(lab.strong for lab in project.labels) == 2
    assert (tmp_path / "models" / "multitask.pt").is_file()
    assert (tmp_path / "models" / "singletask.pt").is_file()
    inst = read_image(tmp_path / "predictions" / "multitask" / "instances" / "foam_10.tif")
    assert inst.shape == (64, 64)
    # the single-task model has no separation output
    assert not (tmp_path / "predictions" / "singletask" / "separation").exists()
    assert read_image(tmp_path / "overlay.png").shape[1] > 4 * 64
    assert 0 <= multi.interface_precision <= 1 and 0 <= multi.interface_recall <= 1
    assert single.interface_precision is None  # no separation output to score
    for scores in (multi, single):
        assert set(scores.dice) == {"bubble", "crystal"}
        assert 0 <= scores.instance_f1 <= 1 and 0 <= scores.aji <= 1
    assert any("overlay" in line for line in lines)


def test_demo_command_prints_both_models(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--steps", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "multi-task U-Net" in out and "single-task U-Net" in out and "instance F1" in out
    assert "interface P/R" in out
