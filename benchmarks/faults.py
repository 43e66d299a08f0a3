"""Kill ``lazyunet train``, ``refine`` and ``predict`` at random moments and count what is left.

Each command runs on a small synthetic project (the built-in foam sample)
whose output files already hold an earlier result. It is killed with
SIGKILL at a moment drawn uniformly between its start and the end of an
uninterrupted run (measured first), and every file it may write is then
classed as:

``old``
    byte for byte the file from before the run;
``new``
    a complete file of this run (it opens: the model loads, the TIFF and
    JSON files parse);
``truncated``
    present but unreadable;
``lost``
    gone.

Also counted: left-over temporary files (harmless litter of a killed
write, never read) and, for ``refine`` and ``predict``, states that mix
files of two runs where they must go together (a project whose
``project.json`` lists a strong image without its mask; the four outputs of
one image from two different runs). Files written together are renamed
one by one after a journal of the renames; a kill between two renames is
completed by the next command that opens the folder
(``files.finish_interrupted_writes``): prediction outputs are classed after
that, and the mixed images counted both right after the kill and then.

Example (2-core CPU, about 15 minutes)::

    python benchmarks/faults.py --kills 50 --out benchmarks/results/faults.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tifffile

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core.checkpoint import CheckpointError
from napari_lazyunet.core.files import ProjectError, finish_interrupted_writes
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import load_project, save_project
from napari_lazyunet.sample.synthetic import make_foam_sample

LAZYUNET = [sys.executable, "-m", "napari_lazyunet.cli"]
TINY = [
    "--base-channels",
    "4",
    "--depth",
    "2",
    "--batch-size",
    "2",
    "--patch-size",
    "32",
    "--threads",
    "1",
    "--device",
    "cpu",
]
OUTCOMES = ("old", "new", "truncated", "lost")


def make_project(folder: Path, n_images: int = 4) -> Path:
    """A foam project: inner regions and scribbles on every image, image 0 strong."""
    sample = make_foam_sample(n_images=n_images, shape=(96, 96), seed=0)
    labels = [
        ImageLabels(
            detection=sample.detection[k],
            separation=sample.separation[k],
            segmentation=sample.classes[k] if k == 0 else None,
            strong=k == 0,
        )
        for k in range(n_images)
    ]
    names = [f"img_{k}" for k in range(n_images)]
    return save_project(folder, names, sample.images, labels, sample.class_names)


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(LAZYUNET + args, capture_output=True, text=True, check=True, **kwargs)


def timed_kill(args: list[str], delay: float) -> tuple[int, float]:
    """Start ``lazyunet ARGS``, SIGKILL it after ``delay`` s (if still running)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        LAZYUNET + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode, time.perf_counter() - start


def duration(args: list[str]) -> float:
    start = time.perf_counter()
    run(args)
    return time.perf_counter() - start


def classify(path: Path, old: bytes | None, readable) -> str:
    if not path.exists():
        return "lost" if old is not None else "old"  # nothing before, nothing now
    data = path.read_bytes()
    if old is not None and data == old:
        return "old"
    try:
        readable(path)
    except Exception:  # noqa: BLE001 - any failure to read is a truncated file
        return "truncated"
    return "new"


def temporaries(folder: Path) -> int:
    return sum(1 for p in folder.rglob(".*.tmp"))


def read_tiff(path: Path) -> None:
    tifffile.imread(path)


def read_json(path: Path) -> None:
    json.loads(path.read_text())


def read_model(path: Path) -> None:
    try:
        LazyUNet.load(path)
    except CheckpointError as error:
        raise ValueError(str(error)) from error


# --------------------------------------------------------------------------- train
def kill_train(work: Path, kills: int, rng: random.Random) -> dict:
    project = make_project(work / "project")
    model = work / "model.pt"
    base = ["train", str(project), "-o", str(model), *TINY, "--checkpoint-interval", "0.002"]
    run([*base, "--steps", "2"])
    old = model.read_bytes()
    full = duration([*base, "--steps", "30", "--seed", "1"])
    counts = dict.fromkeys(OUTCOMES, 0) | {"temporary files": 0}
    for k in range(kills):
        model.write_bytes(old)
        timed_kill([*base, "--steps", "30", "--seed", str(k + 2)], rng.uniform(0.0, full))
        counts[classify(model, old, read_model)] += 1
        counts["temporary files"] += temporaries(work)
        for temporary in work.rglob(".*.tmp"):
            temporary.unlink()
    return {"files per kill": 1, "uninterrupted s": round(full, 2), **counts}


# -------------------------------------------------------------------------- refine
def kill_refine(work: Path, kills: int, rng: random.Random) -> dict:
    pristine = make_project(work / "pristine", n_images=8)
    project = work / "project"
    refined = [f"img_{k}" for k in range(1, 8)]
    args = ["refine", str(project), "--mark-strong", "--images", *refined]
    shutil.copytree(pristine, project)
    full = duration(args)
    watched = [project / "project.json"] + [
        project / "segmentation" / f"img_{k}.tif" for k in range(8)
    ]
    counts = dict.fromkeys(OUTCOMES, 0) | {"temporary files": 0, "inconsistent project": 0}
    for _ in range(kills):
        shutil.rmtree(project)
        shutil.copytree(pristine, project)
        before = {p: (p.read_bytes() if p.exists() else None) for p in watched}
        timed_kill(args, rng.uniform(0.0, full))
        for path in watched:
            reader = read_json if path.suffix == ".json" else read_tiff
            counts[classify(path, before[path], reader)] += 1
        counts["temporary files"] += temporaries(project)
        try:
            load_project(project)
        except ProjectError:
            counts["inconsistent project"] += 1
    return {"files per kill": len(watched), "uninterrupted s": round(full, 2), **counts}


# ------------------------------------------------------------------------- predict
def kill_predict(work: Path, kills: int, rng: random.Random) -> dict:
    project = make_project(work / "project", n_images=12)
    first, second = work / "first.pt", work / "second.pt"
    run(["train", str(project), "-o", str(first), *TINY, "--steps", "2", "--seed", "1"])
    run(["train", str(project), "-o", str(second), *TINY, "--steps", "4", "--seed", "2"])
    out = work / "out"
    pristine = work / "out-first"
    run(["predict", str(first), str(project / "images"), "-o", str(pristine), "-q"])
    args = ["predict", str(second), str(project / "images"), "-o", str(out), "-q"]
    shutil.copytree(pristine, out)
    full = duration(args)
    files = sorted(p.relative_to(pristine) for p in pristine.rglob("*") if p.is_file())
    counts = dict.fromkeys(OUTCOMES, 0) | {
        "temporary files": 0,
        "images mixing two runs, before next use": 0,
        "images mixing two runs": 0,
    }
    for _ in range(kills):
        shutil.rmtree(out)
        shutil.copytree(pristine, out)
        timed_kill(args, rng.uniform(0.0, full))
        counts["images mixing two runs, before next use"] += mixed_images(out, pristine, files)
        # The next run into the folder (or anything that opens it) first completes
        # a group of files that the kill left half renamed.
        finish_interrupted_writes(out)
        for relative in files:
            path = out / relative
            reader = read_json if path.suffix == ".json" else read_tiff
            counts[classify(path, (pristine / relative).read_bytes(), reader)] += 1
        counts["images mixing two runs"] += mixed_images(out, pristine, files)
        counts["temporary files"] += temporaries(out)
    return {"files per kill": len(files), "uninterrupted s": round(full, 2), **counts}


def mixed_images(out: Path, pristine: Path, files: list[Path]) -> int:
    """Images whose output files come from two different runs."""
    per_image: dict[str, set[bool]] = {}
    for relative in files:
        if relative.suffix == ".json":
            continue
        path = out / relative
        old = path.is_file() and path.read_bytes() == (pristine / relative).read_bytes()
        per_image.setdefault(relative.stem, set()).add(old)
    return sum(len(kinds) > 1 for kinds in per_image.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="kills per command")
    parser.add_argument("--commands", nargs="+", default=["train", "refine", "predict"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the table as JSON here too")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    table = {}
    runners = {"train": kill_train, "refine": kill_refine, "predict": kill_predict}
    for command in args.commands:
        with tempfile.TemporaryDirectory() as scratch:
            table[command] = runners[command](Path(scratch), args.kills, rng)
        print(command, table[command], flush=True)
    columns = ["uninterrupted s", "files per kill", *OUTCOMES, "temporary files"]
    extra = [
        "inconsistent project",
        "images mixing two runs, before next use",
        "images mixing two runs",
    ]
    print()
    print(f"{args.kills} kills per command (SIGKILL at a uniform random moment of a run)")
    header = ["command", *columns, *extra]
    print(" | ".join(header))
    for command, row in table.items():
        print(" | ".join([command] + [str(row.get(c, "-")) for c in columns + extra]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
