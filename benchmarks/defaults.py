"""What a new user gets: ``lazyunet train`` with its defaults, within a time budget.

Protocol, per dataset and seed
------------------------------
1. Two project folders (docs/project-format.md) are written from the
   training split at full resolution (no rescaling: the engine must find the
   scale itself). ``project/``: the lazy labels simulated as in
   ``benchmarks/paper.py`` (``benchmarks/lazy_data.py``): inner regions on a
   random 75 % of the images, interface scribbles on all, exact masks on
   ``k`` of them (``--strong``; glas 8, bbbc039 10, dsb2018 18, usiigaci 2).
   ``project-strong-only/``: only those ``k`` images with their exact masks.
2. ``lazyunet train project -o multitask/model.pt --time-budget B --threads T``
   (the multi-task U-Net, method (a) of paper.py) and ``lazyunet train
   project-strong-only -o strong-only/model.pt --single-task ...`` (the
   single-task U-Net on the strong images, method (c)), as subprocesses with
   nothing else set. ``--parallel`` runs both side by side with one thread each.
3. ``lazyunet predict MODEL test-images -o PRED`` on the test split (glas:
   ``testA_*``; the others: the ``val`` rows of ``splits.csv``), given as a
   folder of symlinks to the data.
4. ``PRED/instances/*.tif`` are scored against the full instance truth
   (``napari_lazyunet.evaluation.metrics``), mean over test images: pixel Dice of the
   foreground, instance F1 at IoU 0.5, AJI, and on glas the GlaS object F1 and
   object Dice; pooled Dice / F1 and object counts are kept too.
5. Every non-progress-bar line of the commands' stderr is kept as a warning.

One JSON per (dataset, seed, method) goes to ``WORK/<dataset>/seed<S>/<method>.json``
(command lines, git commit, machine, wall times, metrics, warnings) beside the
logs, models and predictions; an existing JSON is skipped unless ``--overwrite``.

Full run (about 15 minutes per training; 2 h sequential, 1 h with ``--parallel``)::

    .venv/bin/python benchmarks/defaults.py --data-dir ../shared/data \\
        --datasets glas bbbc039 dsb2018 usiigaci --time-budget 15 --threads 2

Smoke run::

    nice -n 10 .venv/bin/python benchmarks/defaults.py --data-dir ../shared/data \\
        --datasets bbbc039 usiigaci --limit-train 4 --limit-test 2 --time-budget 0 \\
        --train-args "--steps 3 --base-channels 4 --depth 2" --work-dir /tmp/defaults-smoke
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lazy_data import Dataset, _split, load_dataset, simulate
from napari_lazyunet.core.labels import ImageLabels
from napari_lazyunet.core.project import save_project
from napari_lazyunet.evaluation import metrics
from paper import painted_detection

ROOT = Path(__file__).resolve().parent.parent
# k strong images, half-width of the interface scribbles (full-resolution
# pixels), channels and class name of every dataset.
DATASETS = {
    "glas": dict(strong=8, scribble=3, channels=3, classes=("gland",)),
    "bbbc039": dict(strong=10, scribble=2, channels=1, classes=("nucleus",)),
    "dsb2018": dict(strong=18, scribble=2, channels=3, classes=("nucleus",)),
    "usiigaci": dict(strong=2, scribble=2, channels=1, classes=("cell",)),
}
METHODS = {
    "multitask": ("a", "multi-task U-Net (weak + k strong)", "project", False),
    "strong-only": ("c", "single-task U-Net on the k strong images", "project-strong-only", True),
}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROGRESS = re.compile(r"\d+%\||\[\d+:\d+(?:<|,|\])|\d(?:it|step|image|%)/s|s/(?:it|step|image)")


# -------------------------------------------------------------------------- data
def load(data_dir: Path, name: str, limit_train: int | None, limit_test: int | None) -> Dataset:
    """Training and test split of ``name`` at full resolution.

    glas and bbbc039 come from :func:`lazy_data.load_dataset`; dsb2018 (RGB)
    and usiigaci (uint16 gray) are read the same way from their ``splits.csv``
    (``train`` / ``val``).
    """
    if name in ("glas", "bbbc039"):
        return load_dataset(data_dir, name, 1.0, limit_test, limit_train)
    folder = data_dir / name
    with open(folder / "splits.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = sorted(r["name"] for r in rows if r["split"] == "train")[: limit_train or None]
    test = sorted(r["name"] for r in rows if r["split"] == "val")[: limit_test or None]
    spec = DATASETS[name]
    return Dataset(
        name,
        _split(folder, train, 1.0),
        _split(folder, test, 1.0),
        "val",
        spec["channels"],
        spec["classes"],
        1.0,
    )


def build_projects(data: Dataset, k: int, seed: int, root: Path) -> dict:
    """Write ``project/`` (lazy labels) and ``project-strong-only/`` under ``root``.

    Returns
    -------
    dict
        Label counts of the two projects.
    """
    lazy = simulate(data.train.instances, k, seed, DATASETS[data.name]["scribble"])
    detection, _ = painted_detection(data, lazy, background=False)
    labels = [
        ImageLabels(det, sep, seg, strong)
        for det, sep, seg, strong in zip(
            detection, lazy.separation, lazy.segmentation, lazy.strong, strict=True
        )
    ]
    strong = [i for i, s in enumerate(lazy.strong) if s]
    for folder in ("project", "project-strong-only"):
        shutil.rmtree(root / folder, ignore_errors=True)  # no image of an earlier run left
    names, images = data.train.names, data.train.images
    save_project(root / "project", names, images, labels, data.class_names, data.in_channels)
    save_project(
        root / "project-strong-only",
        [names[i] for i in strong],
        [images[i] for i in strong],
        [ImageLabels(segmentation=lazy.segmentation[i], strong=True) for i in strong],
        data.class_names,
        data.in_channels,
    )
    return {
        "n_train": len(names),
        "k": len(strong),
        "strong": [names[i] for i in strong],
        "n_detection": sum(d is not None for d in detection),
    }


def link_test_images(data_dir: Path, data: Dataset, folder: Path) -> Path:
    """A folder of symlinks to the test images (never copies)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in data.test.names:
        (folder / f"{name}.png").symlink_to(
            (data_dir / data.name / "images" / f"{name}.png").resolve()
        )
    return folder


# ---------------------------------------------------------------------- commands
def lazyunet() -> str:
    """The ``lazyunet`` entry point next to this Python (the venv's), else on PATH."""
    exe = Path(sys.executable).with_name("lazyunet")
    return str(exe) if exe.exists() else "lazyunet"


def train_command(project: Path, model: Path, single_task: bool, threads: int, args) -> list:
    """``lazyunet train`` as a user types it (``--time-budget 0``: no budget flags)."""
    cmd = [lazyunet(), "train", str(project), "-o", str(model)]
    if single_task:
        cmd.append("--single-task")
    if args.time_budget > 0:
        cmd += ["--time-budget", f"{args.time_budget:g}", "--threads", str(threads)]
    return cmd + shlex.split(args.train_args)


def run_commands(jobs: list[tuple[list, Path]], threads: int, parallel: bool) -> list[dict]:
    """Run ``(command, log prefix)`` pairs, side by side when ``parallel``.

    stdout and stderr go to ``PREFIX.stdout.log`` / ``PREFIX.stderr.log``.
    ``OMP_NUM_THREADS`` is set to ``threads`` (what the engine's own
    ``--threads`` overrides) so that commands without that flag stay in their share.

    Returns
    -------
    list of dict
        Per job: ``command``, ``returncode``, ``seconds``, ``stdout``, ``stderr``.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    results = []
    for batch in [jobs] if parallel else [[job] for job in jobs]:
        running = []
        for cmd, prefix in batch:
            prefix.parent.mkdir(parents=True, exist_ok=True)
            # Closed below, once the process has ended.
            out = open(prefix.with_name(prefix.name + ".stdout.log"), "w")  # noqa: SIM115
            err = open(prefix.with_name(prefix.name + ".stderr.log"), "w")  # noqa: SIM115
            print("$", shlex.join(cmd), flush=True)
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
            running.append([proc, time.perf_counter(), None, out, err, cmd])
        while any(r[2] is None for r in running):
            for r in running:
                if r[2] is None and r[0].poll() is not None:
                    r[2] = time.perf_counter() - r[1]
            time.sleep(0.2)
        for proc, _, seconds, out, err, cmd in running:
            out.close()
            err.close()
            results.append(
                {
                    "command": shlex.join(cmd),
                    "returncode": proc.returncode,
                    "seconds": round(seconds, 1),
                    "stdout": Path(out.name).read_text(errors="replace"),
                    "stderr": Path(err.name).read_text(errors="replace"),
                }
            )
    return results


def warning_lines(stderr: str) -> list[str]:
    """Lines of stderr that are not progress-bar updates (unique, in order)."""
    lines = re.split(r"[\r\n]+", ANSI.sub("", stderr))
    kept = [line.strip() for line in lines if line.strip() and not PROGRESS.search(line)]
    return list(dict.fromkeys(kept))


# ----------------------------------------------------------------------- scoring
def n_objects(labels: np.ndarray) -> int:
    """Number of distinct non-zero labels."""
    return int(np.unique(labels[labels > 0]).size)


def score(pred_dir: Path, data: Dataset) -> dict:
    """Instance scores of ``pred_dir/instances/<stem>.tif`` against the full truth.

    A missing prediction counts as an empty one and is listed in ``missing``.
    """
    rows, missing = [], []
    for name, truth in zip(data.test.names, data.test.full_instances, strict=True):
        path = pred_dir / "instances" / f"{name}.tif"
        if path.exists():
            pred = tifffile.imread(path).astype(np.int64)
        else:
            missing.append(name)
            pred = np.zeros(truth.shape, np.int64)
        f1 = metrics.instance_f1(pred, truth, 0.5)
        row = {
            "name": name,
            "dice": metrics.dice(pred > 0, truth > 0),
            "both": int(np.count_nonzero((pred > 0) & (truth > 0))),
            "sum": int(np.count_nonzero(pred) + np.count_nonzero(truth)),
            "instance_f1": f1["f1"],
            **{k: f1[k] for k in ("tp", "fp", "fn")},
            "aji": metrics.aggregated_jaccard_index(pred, truth),
            "objects_predicted": n_objects(pred),
            "objects_true": n_objects(truth),
        }
        if data.name == "glas":
            row["object_f1"] = metrics.object_f1(pred, truth)["f1"]
            row["object_dice"] = metrics.object_dice(pred, truth)
        rows.append(row)
    keys = ["dice", "instance_f1", "aji"]
    if data.name == "glas":
        keys += ["object_f1", "object_dice"]
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    return {
        **{f"{k}_mean": float(np.mean([r[k] for r in rows])) for k in keys},
        "dice_pooled": 2 * sum(r["both"] for r in rows) / max(sum(r["sum"] for r in rows), 1),
        "instance_f1_pooled": 2 * tp / max(2 * tp + fp + fn, 1),
        "objects_predicted": sum(r["objects_predicted"] for r in rows),
        "objects_true": sum(r["objects_true"] for r in rows),
        "n_test_images": len(rows),
        "missing": missing,
        "per_image": rows,
    }


# ----------------------------------------------------------------------- records
def git_state() -> dict:
    """``git rev-parse HEAD`` and whether src/ or benchmarks/ have uncommitted changes."""

    def git(*cmd):
        return subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=ROOT).stdout

    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "dirty": bool(git("status", "--porcelain", "--", "src", "benchmarks").strip()),
    }


def machine() -> dict:
    """CPU count and platform of this machine."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def run_seed(data: Dataset, seed: int, args, root: Path) -> None:
    """Build, train, predict and score both methods of one dataset and seed."""
    k = min(args.strong or DATASETS[data.name]["strong"], len(data.train.names))
    t0 = time.perf_counter()
    built = build_projects(data, k, seed, root)
    test_dir = link_test_images(args.data_dir, data, root / "test-images")
    build_seconds = time.perf_counter() - t0
    threads = 1 if args.parallel else args.threads
    jobs = [
        (
            train_command(root / project, root / m / "model.pt", single, threads, args),
            root / m / "train",
        )
        for m, (_, _, project, single) in METHODS.items()
    ]
    trained = run_commands(jobs, threads, args.parallel)
    jobs = [
        (
            [
                lazyunet(),
                "predict",
                str(root / m / "model.pt"),
                str(test_dir),
                "-o",
                str(root / m / "pred"),
            ],
            root / m / "predict",
        )
        for m, t in zip(METHODS, trained, strict=True)
        if t["returncode"] == 0
    ]
    for m in METHODS:
        shutil.rmtree(root / m / "pred", ignore_errors=True)
    predicted = iter(run_commands(jobs, threads, args.parallel))
    for (method, (letter, title, project, _)), train in zip(METHODS.items(), trained, strict=True):
        pred = next(predicted) if train["returncode"] == 0 else None
        t0 = time.perf_counter()
        ok = pred is not None and pred["returncode"] == 0
        scores = score(root / method / "pred", data) if ok else None
        record = {
            "dataset": data.name,
            "test_split": data.test_name,
            "seed": seed,
            "method": method,
            "paper_method": letter,
            "method_name": title,
            "project": str(root / project),
            **built,
            "n_train_images_used": built["k"] if method == "strong-only" else built["n_train"],
            "n_test": len(data.test.names),
            "time_budget_minutes": args.time_budget,
            "threads": threads,
            "parallel": args.parallel,
            "train_args": args.train_args,
            "partial": bool(args.limit_train or args.limit_test or args.train_args),
            "commands": {"train": train["command"], "predict": pred and pred["command"]},
            "returncodes": {"train": train["returncode"], "predict": pred and pred["returncode"]},
            "git": args.git,
            "machine": machine(),
            "wall_seconds": {
                "build_projects": round(build_seconds, 1),
                "train": train["seconds"],
                "predict": pred and pred["seconds"],
                "score": round(time.perf_counter() - t0, 1),
            },
            "train_stdout_tail": train["stdout"].strip().splitlines()[-3:],
            "warnings": {
                "train": warning_lines(train["stderr"]),
                "predict": warning_lines(pred["stderr"]) if pred else [],
            },
            "metrics": scores,
        }
        (root / f"{method}.json").write_text(json.dumps(record, indent=1))
        print(f"wrote {root / f'{method}.json'}", flush=True)


# ------------------------------------------------------------------------- table
def fmt(value, spec: str = ".3f") -> str:
    """A number formatted, or ``-`` when missing."""
    return "-" if value is None else format(value, spec)


def table(records: list[dict]) -> str:
    """Compact table of the runs (scores are means over test images)."""
    head = (
        f"{'dataset':9s} {'seed':>4s} {'method':12s} {'Dice':>6s} {'F1@.5':>6s} {'AJI':>6s} "
        f"{'objF1':>6s} {'objDice':>7s} {'objects pred/true':>17s} {'train s':>8s} warn"
    )
    lines = [head, "-" * len(head)]
    for r in records:
        m = r["metrics"] or {}
        objects = f"{m['objects_predicted']}/{m['objects_true']}" if m else "failed"
        lines.append(
            f"{r['dataset']:9s} {r['seed']:>4d} {r['method']:12s} {fmt(m.get('dice_mean')):>6s} "
            f"{fmt(m.get('instance_f1_mean')):>6s} {fmt(m.get('aji_mean')):>6s} "
            f"{fmt(m.get('object_f1_mean')):>6s} {fmt(m.get('object_dice_mean')):>7s} "
            f"{objects:>17s} {fmt(r['wall_seconds']['train'], '.0f'):>8s} "
            f"{len(r['warnings']['train'])}"
        )
    return "\n".join(lines)


def collect(work_dir: Path, datasets: list[str]) -> list[dict]:
    """Every record JSON under ``work_dir`` of the given datasets."""
    paths = [p for d in datasets for p in sorted((work_dir / d).glob("seed*/*.json"))]
    return [json.loads(p.read_text()) for p in paths]


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="folder holding glas/ bbbc039/ dsb2018/ usiigaci/",
    )
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--seed", nargs="+", type=int, default=[0], help="seeds of the labels")
    parser.add_argument(
        "--strong",
        type=int,
        default=None,
        help="k strong images (default per dataset: glas 8, bbbc039 10, dsb2018 18, usiigaci 2)",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=15.0,
        help="minutes per training (0: pass no --time-budget / --threads)",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per training")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="run the two trainings side by side, one thread each",
    )
    parser.add_argument("--train-args", default="", help="extra arguments of both trainings")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks/results/defaults")
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true", help="rerun existing results")
    parser.add_argument(
        "--report-only", action="store_true", help="print the table of the JSON files in --work-dir"
    )
    args = parser.parse_args(argv)
    args.git = git_state()
    args.data_dir, args.work_dir = args.data_dir.resolve(), args.work_dir.resolve()
    if not args.report_only:
        for name in args.datasets:
            roots = {s: args.work_dir / name / f"seed{s}" for s in args.seed}
            todo = [
                s
                for s, r in roots.items()
                if args.overwrite or not all((r / f"{m}.json").exists() for m in METHODS)
            ]
            if not todo:
                print(f"skip {name} (results exist; --overwrite reruns)", flush=True)
                continue
            data = load(args.data_dir, name, args.limit_train, args.limit_test)
            print(
                f"{name}: {len(data.train.names)} train, {len(data.test.names)} "
                f"{data.test_name} images",
                flush=True,
            )
            for seed in todo:
                run_seed(data, seed, args, roots[seed])
    print(table(collect(args.work_dir, args.datasets)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
