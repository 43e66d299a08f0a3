"""Model files: round trip, refusal of code, version checks."""

import os
import pickle

import numpy as np
import pytest
import torch

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core import checkpoint as ckpt
from napari_lazyunet.core.checkpoint import CheckpointError, load_checkpoint
from tiny import tiny_config


def test_round_trip_gives_identical_outputs(foam, tmp_path):
    model = LazyUNet(tiny_config(steps=2))
    model.fit(foam.images[:2], detection=foam.detection[:2], segmentation=[foam.classes[0], None])
    path = model.save(tmp_path / "m.pt")
    loaded = LazyUNet.load(path)
    assert loaded.config == model.config
    assert loaded.class_names == ("bubble", "crystal")
    assert loaded.steps_done == 2 and len(loaded.history) == 2
    a, b = model.predict(foam.images[3]), loaded.predict(foam.images[3])
    for task in a.probabilities:
        np.testing.assert_array_equal(a.probabilities[task], b.probabilities[task])
    np.testing.assert_array_equal(a.instances, b.instances)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/lazyunet-pwned",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = "/tmp/lazyunet-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pt"
    torch.save({"format": "napari-lazyunet", "payload": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not os.path.exists(marker)
    # plain pickle files are refused too
    with open(tmp_path / "plain.pt", "wb") as handle:
        pickle.dump(_RunsCode(), handle)
    with pytest.raises(CheckpointError):
        LazyUNet.load(tmp_path / "plain.pt")
    assert not os.path.exists(marker)


def test_incompatible_version_is_rejected_with_message(tmp_path, monkeypatch):
    model = LazyUNet(tiny_config())
    monkeypatch.setattr(ckpt, "FORMAT_VERSION", 99)
    path = model.save(tmp_path / "future.pt")
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"file format 99.*Retrain"):
        load_checkpoint(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a napari-lazyunet model"):
        load_checkpoint(tmp_path / "other.pt")


def test_save_is_atomic_no_partial_files_left(tmp_path):
    LazyUNet(tiny_config()).save(tmp_path / "m.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
