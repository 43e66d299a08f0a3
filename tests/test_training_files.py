"""The model file during training: written periodically, refused when unwritable,
never overwritten by a diverged run, and enough to continue a run exactly."""

import os
import shutil
import warnings

import numpy as np
import pytest
import torch

from napari_lazyunet.api import LazyUNet, make_labels
from napari_lazyunet.cli import main
from napari_lazyunet.config import TrainConfig
from napari_lazyunet.core import train as train_module
from napari_lazyunet.core.checkpoint import CheckpointError, load_checkpoint
from napari_lazyunet.core.health import TrainingHealthWarning
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import save_project
from napari_lazyunet.core.sampling import PatchSampler
from napari_lazyunet.core.train import TrainingDiverged
from napari_lazyunet.sample.synthetic import make_foam_sample

OPTIONS = dict(
    batch_size=2,
    patch_size=32,
    num_threads=1,
    device="cpu",
    seed=0,
    lr_schedule="constant",
    validate_every=0,
)


@pytest.fixture(scope="module")
def sample():
    """Three 64 x 64 foam images with one class: inner regions, interfaces, one exact mask."""
    foam = make_foam_sample(n_images=3, shape=(64, 64))
    return {
        "images": foam.images,
        "detection": [(d > 0).astype(np.uint8) for d in foam.detection],
        "separation": foam.separation,
        "segmentation": [(foam.classes[0] > 0).astype(np.uint8), None, None],
    }


def _model() -> LazyUNet:
    return LazyUNet(class_names=("a",), in_channels=1, base_channels=4, depth=2)


def _fit(model: LazyUNet, sample: dict, steps: int, **options) -> list:
    events = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingHealthWarning)  # a few steps are few
        model.fit(**sample, steps=steps, callback=events.append, **{**OPTIONS, **options})
    return events


def _parameters(model: LazyUNet) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.network.named_parameters()}


# ------------------------------------------------------------------ periodic writes
def test_checkpoint_interval_defaults_to_five_minutes():
    assert TrainConfig().checkpoint_interval == 5.0
    with pytest.raises(ValueError, match="checkpoint_interval"):
        TrainConfig(checkpoint_interval=-1)


def test_model_file_is_written_whenever_the_interval_has_passed(sample, tmp_path):
    path = tmp_path / "m.pt"
    steps_in_file = []

    def record(event):
        steps_in_file.append(load_checkpoint(path).step if event.checkpoint else None)

    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingHealthWarning)
        # An interval far below one step's time: every step is due.
        model.fit(
            **sample, steps=3, checkpoint=path, callback=record, checkpoint_interval=1e-9, **OPTIONS
        )
    assert steps_in_file == [1, 2, 3]

    other = tmp_path / "only-at-end.pt"
    events = _fit(_model(), sample, 3, checkpoint=other, checkpoint_interval=0)
    assert [e.checkpoint is not None for e in events] == [False, False, True]


def test_model_file_is_written_at_every_validation(sample, tmp_path):
    path = tmp_path / "m.pt"
    validation = (sample["images"][2:], make_labels(1, detection=sample["detection"][2:]))
    events = _fit(
        _model(),
        {k: v[:2] for k, v in sample.items()},
        4,
        checkpoint=path,
        validation=validation,
        checkpoint_interval=0,
        validate_every=2,
    )
    assert [e.validation is not None for e in events] == [False, True, False, True]
    assert [e.checkpoint is not None for e in events] == [False, True, False, True]


# ---------------------------------------------------------------- unwritable paths
def _refused(sample, path, match) -> None:
    model = _model()
    events = []
    with pytest.raises(CheckpointError, match=match):
        model.fit(**sample, steps=2, checkpoint=path, callback=events.append, **OPTIONS)
    assert events == [] and model.steps_done == 0


def test_existing_folder_is_refused_before_the_first_step(sample, tmp_path):
    _refused(sample, tmp_path, f"{tmp_path}.*folder")
    _refused(sample, str(tmp_path / "new") + os.sep, "folder")


def test_path_under_a_regular_file_is_refused_before_the_first_step(sample, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    _refused(sample, blocker / "m.pt", f"{blocker / 'm.pt'}.*not a folder")
    _refused(sample, blocker / "sub" / "m.pt", "not a folder")


def test_empty_path_is_refused(sample):
    _refused(sample, "", "empty")


def test_read_only_folder_is_refused_before_the_first_step(sample, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        try:
            (folder / "probe").write_text("")
        except OSError:
            pass
        else:
            pytest.skip("this user may write into read-only folders (root)")
        _refused(sample, folder / "m.pt", f"{folder / 'm.pt'}.*does not accept new files")
    finally:
        os.chmod(folder, 0o755)


@pytest.fixture
def project(sample, tmp_path):
    labels = [
        ImageLabels(detection=d, separation=s, segmentation=g, strong=g is not None)
        for d, s, g in zip(
            sample["detection"], sample["separation"], sample["segmentation"], strict=True
        )
    ]
    folder = tmp_path / "project"
    save_project(folder, ["a", "b", "c"], sample["images"], labels, ("a",))
    return folder


def _train(project, out, *options):
    return main(
        [
            "train",
            str(project),
            "-o",
            str(out),
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
            "--threads",
            "1",
            "-q",
            *options,
        ]
    )


def test_cli_refuses_an_unwritable_output_in_one_line(project, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in (tmp_path, blocker / "m.pt"):
        assert _train(project, out, "--steps", "2") == 2
        captured = capsys.readouterr()
        assert captured.out == ""  # refused before the data were even read
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lazyunet train: error:")
        assert str(out) in lines[0]


# ------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_before_the_first_step_says_no_model_was_written(
    project, tmp_path, capsys, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "prepare_set", interrupted)
    out = tmp_path / "m.pt"
    assert _train(project, out, "--steps", "3") == 130
    text = capsys.readouterr().out
    assert "no model was written" in text and "the model so far" not in text
    assert not out.exists()

    # An earlier model at that path is left as it was, and not claimed as this run's.
    out.write_bytes(b"earlier model")
    assert _train(project, out, "--steps", "3") == 130
    text = capsys.readouterr().out
    assert "no model was written" in text and "as it was" in text
    assert out.read_bytes() == b"earlier model"


def test_ctrl_c_after_two_steps_keeps_them(project, tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    batch = PatchSampler.batch

    def interrupted_third(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return batch(self)

    monkeypatch.setattr(PatchSampler, "batch", interrupted_third)
    out = tmp_path / "m.pt"
    assert _train(project, out, "--steps", "50") == 130
    assert f"stopped at step 2; the model so far is in {out}" in capsys.readouterr().out
    assert LazyUNet.load(out).steps_done == 2


# ---------------------------------------------------------------------- divergence
def test_diverged_run_leaves_an_earlier_model_file_alone(sample, tmp_path):
    path = tmp_path / "m.pt"
    _fit(_model(), sample, 2, checkpoint=path)
    good = path.read_bytes()
    with pytest.raises(FloatingPointError) as raised:
        _fit(_model(), sample, 4, checkpoint=path, learning_rate=1e30)
    assert path.read_bytes() == good
    assert raised.type is TrainingDiverged
    assert f"step 2 (loss nan); nothing was written to {path}" in str(raised.value)
    assert issubclass(TrainingDiverged, FloatingPointError)  # what callers caught before


def test_divergence_after_a_write_keeps_that_write(sample, tmp_path, monkeypatch):
    loss = train_module._loss
    calls = {"n": 0}

    def nan_from_the_third_step(*args, **kwargs):
        calls["n"] += 1
        total, parts = loss(*args, **kwargs)
        return (total * float("nan") if calls["n"] >= 3 else total), parts

    monkeypatch.setattr(train_module, "_loss", nan_from_the_third_step)
    path = tmp_path / "m.pt"
    model = _model()
    with pytest.raises(TrainingDiverged, match=r"step 3.*keeps the model of step 2"):
        _fit(model, sample, 5, checkpoint=path, checkpoint_every=1)
    saved = LazyUNet.load(path)
    assert saved.steps_done == 2
    for name, value in saved.network.named_parameters():
        assert torch.isfinite(value).all()
        torch.testing.assert_close(
            value, dict(model.network.named_parameters())[name], rtol=0, atol=0
        )


def test_cli_reports_divergence_in_one_line(project, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert _train(project, out, "--steps", "4", "--learning-rate", "1e30") == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1
    assert errors[0].startswith("lazyunet train: error: training diverged at step 2")
    assert "Traceback" not in captured.err and "saved" not in captured.out
    assert not out.exists()


# -------------------------------------------------------------------------- resume
def test_continuing_from_the_file_gives_the_weights_of_one_run(sample, tmp_path):
    whole = _model()
    _fit(whole, sample, 6)

    first = _model()
    _fit(first, sample, 3, checkpoint=tmp_path / "3.pt")
    resumed = LazyUNet.load(tmp_path / "3.pt")
    _fit(resumed, sample, 3)
    assert resumed.steps_done == 6

    # Same in memory, without a file.
    again = _model()
    _fit(again, sample, 3)
    _fit(again, sample, 3)

    expected = _parameters(whole)
    for model in (resumed, again):
        for name, value in _parameters(model).items():
            torch.testing.assert_close(value, expected[name], rtol=1e-6, atol=1e-7)
    # Without Adam's state and the sampler's position the weights differ.
    fresh = LazyUNet.load(tmp_path / "3.pt")
    assert fresh.training_state is not None and fresh.training_state.optimizer
    fresh.training_state = None
    _fit(fresh, sample, 3)
    assert any(
        not torch.allclose(value, expected[name]) for name, value in _parameters(fresh).items()
    )


def test_continuing_from_a_file_written_during_the_run(sample, tmp_path):
    """A run killed after its step-3 write and continued for 3 steps ends where 6 steps do."""
    path, kept = tmp_path / "m.pt", tmp_path / "killed.pt"

    def copy_at_three(event):
        if event.step == 3:
            assert event.checkpoint is not None
            shutil.copy(path, kept)

    whole = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingHealthWarning)
        whole.fit(
            **sample,
            steps=6,
            checkpoint=path,
            checkpoint_every=3,
            callback=copy_at_three,
            **OPTIONS,
        )
    resumed = LazyUNet.load(kept)
    assert resumed.steps_done == 3
    _fit(resumed, sample, 3)
    expected = _parameters(whole)
    for name, value in _parameters(resumed).items():
        torch.testing.assert_close(value, expected[name], rtol=1e-6, atol=1e-7)


def test_model_files_without_training_state_still_load_and_train(sample, tmp_path):
    path = tmp_path / "m.pt"
    model = _model()
    _fit(model, sample, 2)
    model.save(path)
    payload = torch.load(path, weights_only=True)
    assert "optimizer_state" in payload and "sampler_json" in payload
    del payload["optimizer_state"], payload["sampler_json"]
    torch.save(payload, path)  # as earlier versions wrote it
    old = LazyUNet.load(path)
    assert old.training_state is None and old.steps_done == 2
    _fit(old, sample, 1)
    assert old.steps_done == 3
