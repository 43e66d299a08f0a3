"""Faults at any moment, damaged files of any length: nothing lost, every failure said plainly.

Property-based (hypothesis): the cases are drawn, not listed, so the
assertions hold for every failure point and every truncation length, not
only for the ones someone thought of.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core.checkpoint import CheckpointError, load_checkpoint
from napari_lazyunet.core.files import (
    ProjectError,
    finish_interrupted_writes,
    labels_writer,
    read_image,
    write_atomic,
)
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import load_project, save_labels, save_project
from tiny import tiny_config


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A tiny model file, written once for the module."""
    return LazyUNet(tiny_config()).save(tmp_path_factory.mktemp("model") / "model.pt")


# The same examples on every run (CI has no example database): a failure is repeatable.
FILES = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class _Fault(Exception):
    """Stands for a full disk or a kill in the middle of a write."""


def _failing_writer(payload: bytes, fail_after: int | None, fault: type[BaseException]):
    def write(stream):
        if fail_after is None:
            stream.write(payload)
            return
        stream.write(payload[:fail_after])
        raise fault("no space left on device")

    return write


@FILES
@given(
    n_files=st.integers(1, 4),
    failing=st.integers(0, 3),
    fail_after=st.integers(0, 64),
    fault=st.sampled_from([_Fault, OSError, KeyboardInterrupt]),
)
def test_a_fault_in_any_file_of_a_group_leaves_every_old_file(
    tmp_path_factory, n_files, failing, fail_after, fault
):
    folder = tmp_path_factory.mktemp("atomic")
    targets = [folder / f"f{k}.bin" for k in range(n_files)]
    for k, path in enumerate(targets):
        path.write_bytes(f"old {k}".encode() * 10)
    failing %= n_files
    writes = {
        path: _failing_writer(b"new" * 40, fail_after if k == failing else None, fault)
        for k, path in enumerate(targets)
    }
    with pytest.raises(fault):
        write_atomic(writes)
    for k, path in enumerate(targets):
        assert path.read_bytes() == f"old {k}".encode() * 10
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in targets)


@FILES
@given(cut=st.floats(0.0, 0.999))
def test_a_model_file_cut_anywhere_is_refused_as_truncated_or_damaged(
    tmp_path_factory, model_file, cut
):
    folder = tmp_path_factory.mktemp("cut")
    whole = model_file.read_bytes()
    path = folder / "model.pt"
    path.write_bytes(whole[: int(cut * len(whole))])
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert str(path) in message
    assert any(word in message for word in ("empty", "truncated", "damaged", "not a"))
    assert "may contain code" not in message  # a cut file is no security matter


@FILES
@given(position=st.floats(0.0, 0.999), value=st.integers(0, 255))
def test_a_model_file_with_a_changed_byte_loads_or_says_what_is_wrong(
    tmp_path_factory, model_file, position, value
):
    folder = tmp_path_factory.mktemp("flip")
    data = bytearray(model_file.read_bytes())
    data[int(position * len(data))] = value
    path = folder / "model.pt"
    path.write_bytes(bytes(data))
    try:
        model = LazyUNet.load(path)
    except CheckpointError as error:
        assert str(path) in str(error)
    else:  # a byte inside the weights: still a usable model of the same layout
        assert model.config == LazyUNet.load(model_file).config


def test_unreadable_and_foreign_model_files_say_so(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_checkpoint(empty)
    text = tmp_path / "notes.pt"
    text.write_text("my notes")
    with pytest.raises(CheckpointError, match="another kind of file"):
        load_checkpoint(text)
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(folder)


def test_a_label_file_cut_at_any_byte_is_reported_with_its_name(tmp_path, foam):
    """Every length short of the whole file: an error naming it, or the same pixels."""
    stream = io.BytesIO()
    labels_writer(tmp_path / "x.tif", foam.detection[0])(stream)
    whole = stream.getvalue()
    path = tmp_path / "x.tif"
    read_back = 0
    for length in range(len(whole)):
        path.write_bytes(whole[:length])
        try:
            array = read_image(path)
        except ProjectError as error:
            assert str(path) in str(error)
        else:  # cut inside trailing tags the pixels do not need: they must be whole
            np.testing.assert_array_equal(array, foam.detection[0])
            read_back += 1
    assert read_back < len(whole) // 2  # most cuts are refused


def test_saving_labels_with_a_bad_layer_changes_no_file(tmp_path, foam):
    folder = save_project(
        tmp_path / "p",
        ["a"],
        [foam.images[0]],
        [ImageLabels(detection=foam.detection[0], separation=foam.separation[0])],
        foam.class_names,
    )
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    bad = ImageLabels(detection=foam.detection[0] + 1, separation=foam.separation[0] * 0.5)
    with pytest.raises(ProjectError, match="integers"):
        save_labels(folder, "a", bad)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert load_project(folder).labels[0].separation is not None


@FILES
@given(
    values=st.lists(st.integers(0, 300), min_size=1, max_size=6),
    planes=st.integers(1, 5),
)
def test_label_stacks_round_trip_whatever_their_values_and_planes(tmp_path_factory, values, planes):
    folder = tmp_path_factory.mktemp("stack")
    dtype = np.uint16 if max(values) > 255 else np.uint8
    stack = np.resize(np.asarray(values, dtype=dtype), (planes, 7, 5))
    path = folder / "s.tif"
    with open(path, "wb") as stream:
        labels_writer(path, stack)(stream)
    np.testing.assert_array_equal(tifffile.imread(path).reshape(stack.shape), stack)
    assert read_image(path).dtype == dtype


_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from napari_lazyunet.core import files

folder, renames_before_kill = Path(sys.argv[1]), int(sys.argv[2])
real_replace, done = os.replace, [0]

def replace_then_die(source, target):
    if done[0] == renames_before_kill:
        os.kill(os.getpid(), signal.SIGKILL)  # no finally, no cleanup: a real kill
    real_replace(source, target)
    done[0] += 1

files.os.replace = replace_then_die
files.write_atomic({
    folder / name: (lambda stream, n=name: stream.write(b"new " + n.encode()))
    for name in ("detection/a.tif", "segmentation/a.tif", "prediction.json")
})
"""


@pytest.mark.parametrize("renames_before_kill", [1, 2])
def test_a_group_killed_between_two_renames_is_completed_on_next_use(tmp_path, renames_before_kill):
    import subprocess
    import sys

    names = ("detection/a.tif", "segmentation/a.tif", "prediction.json")
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"old " + name.encode())
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path), str(renames_before_kill)],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == -9, result.stderr
    contents = [(tmp_path / n).read_bytes() for n in names]
    assert sum(c.startswith(b"new") for c in contents) == renames_before_kill  # mixed on disk
    assert finish_interrupted_writes(tmp_path) == 1
    assert [(tmp_path / n).read_bytes() for n in names] == [b"new " + n.encode() for n in names]
    assert not list(tmp_path.rglob(".*"))  # no journal, no temporary file left
    assert finish_interrupted_writes(tmp_path) == 0
