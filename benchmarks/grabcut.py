"""GrabCut refinement on real images: exact masks from simulated inner regions.

For every image, each ground-truth object is shrunk to a random 30-70% of its
area (its deepest pixels, seeded; ``core.simulate.shrink_instances``) to play
the painted inner region. Four ways of turning those inner regions into
masks are compared in the same run:

``inner``
    the raw inner regions;
``dilation``
    each inner region dilated by the radius that doubles the area of a disc
    of the same area (``r = (sqrt(2) - 1) * sqrt(A / pi)``, the mean shrink
    of the simulation), overlaps going to the nearest inner region;
``grabcut-whole``
    one ``cv2.grabCut`` on the whole image, all inner regions sure
    foreground and everything else probable background (the naive use),
    foreground pixels going to the nearest inner region;
``grabcut-object``
    :func:`napari_lazyunet.core.grabcut.refine_with_grabcut`.

Reported per dataset: pixel Dice and IoU of the foreground (mean over
images), object Dice (mean over ground-truth objects of the Dice with the
predicted object of the same id, so merged or split touching objects
count), the median and 95th percentile milliseconds per object (all objects,
and objects at most 150 px across; wall-clock, and CPU time of the refining
thread, which does not grow when other programs compete for the CPUs), and
wall-clock and CPU seconds per image.

The default subset, to keep a run near 10 minutes on 2 cores: the first 20
GlaS ``testA`` images (``testA_1`` .. ``testA_20``) and the first 20 BBBC039
``val`` images in name order (``--limit 0`` runs them all).

Example::

    python benchmarks/grabcut.py --data-dir ../shared/data --datasets glas bbbc039 --limit 20 \
        --seed 0 --out benchmarks/results/grabcut.json

The data folders are only read; nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from napari_lazyunet.core.grabcut import image_to_uint8, refine_with_grabcut
from napari_lazyunet.evaluation.simulate import shrink_instances

METHODS = ("inner", "dilation", "grabcut-whole", "grabcut-object")
SMALL = 150  # px across: the size the per-object speed target is set for


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_images(data_dir: Path, dataset: str, limit: int | None) -> list[str]:
    """Image names of the benchmark subset (test / validation part first)."""
    folder = data_dir / dataset
    if dataset == "glas":
        names = sorted((p.stem for p in (folder / "images").glob("testA_*.png")), key=_natural_key)
    elif dataset == "bbbc039":
        names = []
        for line in (folder / "splits.csv").read_text().splitlines()[1:]:
            name, split = line.strip().split(",")
            if split == "val":
                names.append(name)
        names.sort()
    else:
        raise SystemExit(f"unknown dataset {dataset!r}; choose glas or bbbc039")
    return names[:limit] if limit else names


def load(data_dir: Path, dataset: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    folder = data_dir / dataset
    image = cv2.imread(str(folder / "images" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"cannot read {folder / 'images' / name}.png")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    instances = cv2.imread(str(folder / "instances" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    return image, instances.astype(np.int32)


def nearest_seed(mask: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Instance image: every pixel of ``mask`` gets the id of the nearest inner region."""
    _, (iy, ix) = ndi.distance_transform_edt(inner == 0, return_indices=True)
    return np.where(mask | (inner > 0), inner[iy, ix], 0).astype(np.int32)


def dilate(inner: np.ndarray) -> np.ndarray:
    """Per-object dilation that doubles a disc's area; overlaps to the nearest region."""
    best = np.full(inner.shape, np.inf)
    out = np.zeros(inner.shape, dtype=np.int32)
    boxes = ndi.find_objects(inner)
    for label, box in enumerate(boxes, start=1):
        if box is None:
            continue
        seed = inner[box] == label
        radius = (np.sqrt(2.0) - 1.0) * np.sqrt(seed.sum() / np.pi)
        pad = int(np.ceil(radius)) + 1
        crop = tuple(
            slice(max(s.start - pad, 0), min(s.stop + pad, n))
            for s, n in zip(box, inner.shape, strict=True)
        )
        distance = ndi.distance_transform_edt(inner[crop] != label)
        closer = (distance <= radius) & (distance < best[crop])
        best[crop][closer] = distance[closer]
        out[crop][closer] = label
    return out


def grabcut_whole(image: np.ndarray, inner: np.ndarray, iterations: int) -> np.ndarray:
    """One cv2.grabCut over the whole image from all inner regions at once."""
    mask = np.full(inner.shape, cv2.GC_PR_BGD, dtype=np.uint8)
    mask[inner > 0] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    mask, _, _ = cv2.grabCut(
        image_to_uint8(image), mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK
    )
    return nearest_seed((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), inner)


def pixel_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    p, t = pred > 0, truth > 0
    inter = np.logical_and(p, t).sum()
    total = p.sum() + t.sum()
    union = np.logical_or(p, t).sum()
    return (2.0 * inter / total if total else 1.0), (inter / union if union else 1.0)


def object_dice(pred: np.ndarray, truth: np.ndarray) -> list[float]:
    """Dice of every ground-truth object with the predicted object of the same id."""
    n = int(max(truth.max(), pred.max())) + 1
    same = (truth == pred) & (truth > 0)
    inter = np.bincount(truth[same], minlength=n)
    t_area = np.bincount(truth.ravel(), minlength=n)
    p_area = np.bincount(pred.ravel(), minlength=n)
    ids = np.flatnonzero(t_area[1:]) + 1
    return (2.0 * inter[ids] / (t_area[ids] + p_area[ids])).tolist()


def run_dataset(data_dir: Path, dataset: str, args) -> dict:
    names = list_images(data_dir, dataset, args.limit)
    stats = {
        m: {"dice": [], "iou": [], "object_dice": [], "image_s": [], "image_cpu_s": []}
        for m in METHODS
    }
    per_object, per_small_object, cpu_per_object, n_objects = [], [], [], 0
    for index, name in enumerate(names):
        print(f"{dataset} {index + 1}/{len(names)} {name}", file=sys.stderr, flush=True)
        image, truth = load(data_dir, dataset, name)
        inner = shrink_instances(truth, (0.3, 0.7), seed=args.seed + index)
        detection = (inner > 0).astype(np.uint8)
        sizes = {
            label: max(b[0].stop - b[0].start, b[1].stop - b[1].start)
            for label, b in enumerate(ndi.find_objects(truth), start=1)
            if b is not None
        }
        n_objects += len(sizes)
        for method in METHODS:
            start, cpu_start = time.perf_counter(), time.process_time()
            if method == "inner":
                pred = inner
            elif method == "dilation":
                pred = dilate(inner)
            elif method == "grabcut-whole":
                pred = grabcut_whole(image, inner, args.iterations)
            else:
                result = refine_with_grabcut(
                    image,
                    detection,
                    instances=inner,
                    iterations=args.iterations,
                    n_threads=args.threads,
                )
                pred = result.instances
                per_object += result.timings_per_object
                cpu_per_object += result.cpu_timings_per_object
                per_small_object += [
                    s
                    for k, s in zip(result.object_ids, result.timings_per_object, strict=True)
                    if sizes.get(k, 0) <= SMALL
                ]
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
            dice, iou = pixel_scores(pred, truth)
            entry = stats[method]
            entry["dice"].append(dice)
            entry["iou"].append(iou)
            entry["object_dice"] += object_dice(pred, truth)
            entry["image_s"].append(seconds)
            entry["image_cpu_s"].append(cpu_seconds)
    return {
        "images": names,
        "n_objects": n_objects,
        "methods": {
            m: {
                "dice": float(np.mean(s["dice"])),
                "iou": float(np.mean(s["iou"])),
                "object_dice": float(np.mean(s["object_dice"])),
                "seconds_per_image": float(np.mean(s["image_s"])),
                "cpu_seconds_per_image": float(np.mean(s["image_cpu_s"])),
            }
            for m, s in stats.items()
        },
        "per_object_ms": {
            "median": 1e3 * float(np.median(per_object)),
            "p95": 1e3 * float(np.percentile(per_object, 95)),
            "n": len(per_object),
            f"median_up_to_{SMALL}px": 1e3 * float(np.median(per_small_object)),
            f"p95_up_to_{SMALL}px": 1e3 * float(np.percentile(per_small_object, 95)),
            f"n_up_to_{SMALL}px": len(per_small_object),
            "cpu_median": 1e3 * float(np.median(cpu_per_object)),
            "cpu_p95": 1e3 * float(np.percentile(cpu_per_object, 95)),
        },
    }


def markdown(results: dict) -> str:
    lines = [
        "| dataset | method | Dice | IoU | object Dice | s / image | CPU s / image |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for dataset, summary in results.items():
        for method, m in summary["methods"].items():
            lines.append(
                f"| {dataset} | {method} | {m['dice']:.3f} | {m['iou']:.3f} | "
                f"{m['object_dice']:.3f} | {m['seconds_per_image']:.2f} | "
                f"{m['cpu_seconds_per_image']:.2f} |"
            )
    lines += [
        "",
        "| dataset | images | objects | ms / object median | p95 | "
        f"median (<= {SMALL} px) | p95 (<= {SMALL} px) | CPU ms median | CPU p95 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset, summary in results.items():
        t = summary["per_object_ms"]
        lines.append(
            f"| {dataset} | {len(summary['images'])} | {summary['n_objects']} | "
            f"{t['median']:.1f} | {t['p95']:.1f} | {t[f'median_up_to_{SMALL}px']:.1f} | "
            f"{t[f'p95_up_to_{SMALL}px']:.1f} | {t['cpu_median']:.1f} | {t['cpu_p95']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=["glas", "bbbc039"])
    parser.add_argument(
        "--limit",
        type=int,
        default=20,
        help="images per dataset (GlaS testA and BBBC039 val, in name order); 0 = all",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated shrink")
    parser.add_argument("--iterations", type=int, default=5, help="GrabCut iterations")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: CPUs)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/grabcut.json"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    results = {d: run_dataset(args.data_dir, d, args) for d in args.datasets}
    table = markdown(results)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python benchmarks/grabcut.py "
        + " ".join(
            f"{k} {v}"
            for k, v in [
                ("--data-dir", args.data_dir),
                ("--datasets", " ".join(args.datasets)),
                ("--limit", args.limit),
                ("--seed", args.seed),
                ("--iterations", args.iterations),
            ]
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "opencv": cv2.__version__,
            "load_average_1min": [load_at_start, os.getloadavg()[0]],
        },
        "threads": args.threads or os.cpu_count(),
        "wall_seconds": time.perf_counter() - start,
        "results": results,
        "table": table,
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(
        f"\nwall time {record['wall_seconds']:.0f} s, load average {load_at_start:.1f} -> "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; written to {args.out}"
    )


if __name__ == "__main__":
    main()
