"""Reproduce the lazy-label experiments of the paper on GlaS and BBBC039.

Methods (same harness, same iteration budget):

``a``  multi-task U-Net on weak + strong labels (detection on 75 % of the
       training images, separation on 100 %, exact masks on ``k``);
``b``  single-task U-Net on the detection weak labels only;
``c``  single-task U-Net on the ``k`` strong images only;
``d``  single-task U-Net on GrabCut pseudo-labels grown from the detection
       labels (exact masks where the image is strong), the paper's PL baseline;
``e``  single-task U-Net on 100 % exact masks (upper reference);
``f``  multi-task U-Net on weak labels + GrabCut pseudo-labels as strong
       masks (exact where the image is strong): the plugin's own workflow,
       where strong masks are grown from the inner regions with GrabCut.

``b`` and ``e`` do not depend on ``k`` and run once per seed. Every run
writes one JSON file (config, seed, git commit, machine, wall times, every
metric) and the trained model (same name, ``.pt``) to ``--out``; a run whose
JSON file exists is skipped, so an interrupted
table resumes where it stopped. ``benchmarks/report.py`` turns the files
into the tables and the plot of docs/benchmarks.md.

Examples::

    python benchmarks/paper.py --data-dir ../shared/data --dataset glas --config cpu \\
        --methods a b c d e --strong 8 --seeds 0 1 2
    python benchmarks/paper.py --data-dir ../shared/data --dataset glas --config gpu \\
        --methods a b c d e --strong 2 4 8 85 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lazy_data import (
    Dataset,
    LazyLabels,
    background_strokes,
    interfaces,
    load_dataset,
    resize_labels,
    simulate,
)
from napari_lazyunet.api import LazyUNet
from napari_lazyunet.config import LazyUNetConfig
from napari_lazyunet.core.devices import resolve_device
from napari_lazyunet.core.grabcut import refine_with_grabcut
from napari_lazyunet.core.labels import background_value
from napari_lazyunet.evaluation import metrics

METHODS = {
    "a": "multi-task U-Net (weak + k strong)",
    "b": "U-Net on detection weak labels",
    "c": "U-Net on k strong images",
    "d": "U-Net on GrabCut pseudo-labels",
    "e": "U-Net on 100% strong",
    "f": "multi-task U-Net (weak + GrabCut pseudo-strong)",
}
K_INDEPENDENT = {"b", "e"}

# Harness settings per configuration and dataset. ``scale`` resizes the
# images before anything else; ``min_size_full`` is the smallest instance in
# pixels at full resolution; ``scribble`` is the half-width of the simulated
# interface scribbles in working-resolution pixels.
CONFIGS: dict[str, dict[str, dict]] = {
    "cpu": {
        "glas": dict(
            scale=0.25,
            base_channels=8,
            depth=4,
            steps=1500,
            batch_size=8,
            patch_size=64,
            learning_rate=1e-3,
            lr_schedule="constant",
            strong_fraction=0.25,
            task_weights=(1.0, 1.0, 1.0),
            recalibration_batches=20,
            tile_size=256,
            scribble=1,
            min_size_full=200,
            detection_background=False,
            separation_positive_weight=5.0,
            separation_threshold=None,
            calibrate_segmentation=True,
            segmentation_threshold=None,
            segmentation_from_inner=True,
            segmentation_far_background=True,
            device="cpu",
            mixed_precision=False,
            num_threads=2,
        ),
        "bbbc039": dict(
            scale=1.0,
            base_channels=8,
            depth=4,
            steps=1500,
            batch_size=8,
            patch_size=64,
            learning_rate=1e-3,
            lr_schedule="constant",
            strong_fraction=0.25,
            task_weights=(1.0, 1.0, 1.0),
            recalibration_batches=20,
            tile_size=256,
            scribble=2,
            min_size_full=10,
            detection_background=False,
            separation_positive_weight=5.0,
            separation_threshold=None,
            calibrate_segmentation=True,
            segmentation_threshold=None,
            segmentation_from_inner=True,
            segmentation_far_background=True,
            device="cpu",
            mixed_precision=False,
            num_threads=2,
        ),
    },
    "gpu": {
        "glas": dict(
            scale=1.0,
            base_channels=64,
            depth=4,
            steps=10000,
            batch_size=16,
            patch_size=256,
            learning_rate=2e-4,
            lr_schedule="constant",
            strong_fraction=0.25,
            task_weights=(1.0, 1.0, 1.0),
            recalibration_batches=20,
            tile_size=512,
            scribble=3,
            min_size_full=200,
            detection_background=False,
            separation_positive_weight=5.0,
            separation_threshold=None,
            calibrate_segmentation=True,
            segmentation_threshold=None,
            segmentation_from_inner=True,
            segmentation_far_background=True,
            device="auto",
            mixed_precision=True,
            num_threads=0,
        ),
        "bbbc039": dict(
            scale=1.0,
            base_channels=64,
            depth=4,
            steps=10000,
            batch_size=16,
            patch_size=256,
            learning_rate=2e-4,
            lr_schedule="constant",
            strong_fraction=0.25,
            task_weights=(1.0, 1.0, 1.0),
            recalibration_batches=20,
            tile_size=512,
            scribble=2,
            min_size_full=10,
            detection_background=False,
            separation_positive_weight=5.0,
            separation_threshold=None,
            calibrate_segmentation=True,
            segmentation_threshold=None,
            segmentation_from_inner=True,
            segmentation_far_background=True,
            device="auto",
            mixed_precision=True,
            num_threads=0,
        ),
    },
}
DEFAULT_STRONG = {"glas": [2, 4, 8, 85], "bbbc039": [2, 5, 10, 100]}
CACHE = Path(os.environ.get("LAZYUNET_PAPER_CACHE", "/tmp/lazyunet-paper-cache"))


# ----------------------------------------------------------------------- helpers
def git_commit() -> str:
    # From the repository root: the pathspecs below are relative to it.
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "benchmarks", "src"],
            capture_output=True,
            text=True,
            cwd=root,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(device: str) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def grabcut_pseudo_labels(data: Dataset, lazy: LazyLabels) -> list[np.ndarray | None]:
    """GrabCut masks grown from the simulated inner regions, cached per dataset + seed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    n = len(data.train.images)
    path = CACHE / f"grabcut-{data.name}-x{data.scale:g}-n{n}-s{lazy.seed}.npz"
    if path.exists():
        stored = np.load(path)
        return [stored.get(f"m{i}", None) for i in range(n)]
    masks: dict[str, np.ndarray] = {}
    for i, (image, det, inner) in enumerate(
        zip(data.train.images, lazy.detection, lazy.inner, strict=True)
    ):
        if det is None:
            continue
        result = refine_with_grabcut(image, det, instances=inner)
        masks[f"m{i}"] = (result.classes > 0).astype(np.uint8)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **masks)
    tmp.replace(path)
    return [masks.get(f"m{i}") for i in range(n)]


def painted_detection(
    data: Dataset, lazy: LazyLabels, background: bool
) -> tuple[list[np.ndarray | None], list[bool]]:
    """Detection layers as painted, and which images are sparse.

    Without ``background`` these are the simulated inner regions on complete
    images (unpainted = background). A detection-labelled image without any
    object is filled with the explicit background value, as an annotator
    says "nothing here" in the plugin: an empty layer would read as "not
    labelled". With ``background``, every detection-labelled image also gets
    background strokes (painted value 2, the explicit background of one
    class) and is sparse, so the unpainted ring around each inner region is
    ignored by the detection loss.
    """
    if not background:
        nothing_here = background_value(len(data.class_names))
        layers = [
            det if det is None or det.any() else np.full_like(det, nothing_here)
            for det in lazy.detection
        ]
        return layers, [False] * len(layers)
    layers: list[np.ndarray | None] = []
    sparse: list[bool] = []
    for i, (det, inst) in enumerate(zip(lazy.detection, data.train.instances, strict=True)):
        if det is None:
            layers.append(None)
            sparse.append(False)
            continue
        strokes = background_strokes(inst, seed=lazy.seed * 100_003 + 50_021 + i)
        painted = det.copy()
        painted[strokes & (det == 0)] = background_value(len(data.class_names))
        layers.append(painted)
        sparse.append(True)
    return layers, sparse


def training_inputs(
    method: str, data: Dataset, lazy: LazyLabels, detection_background: bool = False
) -> tuple[dict, dict]:
    """``fit`` arguments and model options of a method."""
    images = data.train.images
    exact = [(inst > 0).astype(np.uint8) for inst in data.train.instances]
    detection, sparse = painted_detection(data, lazy, detection_background)
    if method == "a":
        return dict(
            images=images,
            detection=detection,
            separation=lazy.separation,
            segmentation=lazy.segmentation,
            strong=lazy.strong,
            sparse=sparse,
        ), dict(multitask=True)
    if method == "b":
        # Only images that carry a painted detection layer (objects, or the
        # background fill of an image without objects) count for (b).
        keep = [i for i, d in enumerate(detection) if d is not None and d.any()]
        return dict(
            images=[images[i] for i in keep],
            detection=[detection[i] for i in keep],
            sparse=[sparse[i] for i in keep],
        ), dict(multitask=False, baseline_target="detection")
    if method == "c":
        keep = [i for i, s in enumerate(lazy.strong) if s]
        return dict(
            images=[images[i] for i in keep],
            segmentation=[exact[i] for i in keep],
        ), dict(multitask=False, baseline_target="segmentation")
    if method in ("d", "f"):
        # Exact mask where the image is strong, else its GrabCut mask (None
        # for an image without detection label).
        pseudo = grabcut_pseudo_labels(data, lazy)
        segmentation = [e if s else p for e, s, p in zip(exact, lazy.strong, pseudo, strict=True)]
    if method == "d":
        keep = [i for i, m in enumerate(segmentation) if m is not None]
        return dict(
            images=[images[i] for i in keep],
            segmentation=[segmentation[i] for i in keep],
        ), dict(multitask=False, baseline_target="segmentation")
    if method == "f":
        return dict(
            images=images,
            detection=detection,
            separation=lazy.separation,
            segmentation=segmentation,
            strong=[m is not None for m in segmentation],
            sparse=sparse,
        ), dict(multitask=True)
    if method == "e":
        return dict(images=images, segmentation=exact), dict(
            multitask=False, baseline_target="segmentation"
        )
    raise ValueError(f"unknown method {method!r}")


def working_min_size(settings: dict, data: Dataset) -> int:
    """Smallest instance in pixels of the working scale."""
    return max(1, round(settings["min_size_full"] * data.scale**2))


def build_config(
    settings: dict,
    data: Dataset,
    multitask: bool,
    baseline_target: str,
    seed: int,
    steps: int | None,
) -> LazyUNetConfig:
    s = settings
    return LazyUNetConfig.from_dict(
        {
            "model": dict(
                in_channels=data.in_channels,
                class_names=data.class_names,
                base_channels=s["base_channels"],
                depth=s["depth"],
                multitask=multitask,
            ),
            "train": dict(
                steps=steps or s["steps"],
                batch_size=s["batch_size"],
                patch_size=s["patch_size"],
                learning_rate=s["learning_rate"],
                lr_schedule=s["lr_schedule"],
                strong_fraction=s["strong_fraction"],
                # Task weights matter only to the multi-task model; the
                # single-task baselines keep the plain loss.
                task_weights=s["task_weights"] if multitask else (1.0, 1.0, 1.0),
                separation_positive_weight=s["separation_positive_weight"],
                # The hand-tuned configurations predate intensity inversion.
                invert_intensity=0.0,
                recalibration_batches=s["recalibration_batches"],
                calibrate_segmentation=s["calibrate_segmentation"],
                segmentation_from_inner=s["segmentation_from_inner"],
                segmentation_far_background=s["segmentation_far_background"],
                seed=seed,
                device=s["device"],
                validate_every=0,
                mixed_precision=s["mixed_precision"],
                num_threads=s["num_threads"],
                baseline_target=baseline_target,
            ),
            "predict": dict(
                tile_size=s["tile_size"],
                device=s["device"],
                min_instance_size=working_min_size(s, data),
                # The harness resizes the images itself (``scale``): none on top.
                input_scale=1.0,
            ),
        }
    )


# ---------------------------------------------------------------------- scoring
def evaluate(model: LazyUNet, data: Dataset, settings: dict) -> dict:
    """Every metric on the test split, scored at the original resolution."""
    full_scribble = max(1, round(settings["scribble"] / data.scale))
    inter = total = predicted = 0
    per_image_dice, obj_dice, obj_haus, aji, touching = [], [], [], [], []
    # Object pixels per image (predicted, true, both): what the pooled scores
    # are made of, e.g. how much an image without any object adds.
    pixel_counts = []
    counts = {"obj": [0, 0, 0], "inst": [0, 0, 0]}
    iface = []
    has_sep = model.config.model.multitask
    # None: the model's own threshold (calibrated when it was trained); a
    # number scores the model at that threshold (e.g. a saved model rescored).
    threshold = settings["separation_threshold"]
    # The test images are already at the working scale (load_dataset resized
    # them), so the model must not resize them again, and sizes count pixels
    # of that scale.
    options = {"input_scale": 1.0, "min_instance_size": working_min_size(settings, data)}
    if threshold is not None:
        options["separation_threshold"] = threshold
    if settings["segmentation_threshold"] is not None:
        options["segmentation_threshold"] = settings["segmentation_threshold"]
    for name, image, truth in zip(
        data.test.names, data.test.images, data.test.full_instances, strict=True
    ):
        pred = model.predict(image, **options)
        shape = truth.shape
        seg = resize_labels(pred.segmentation, shape)
        inst = resize_labels(pred.instances.astype(np.int32), shape)
        fg = truth > 0
        n_seg = int(np.count_nonzero(seg == 1))
        n_truth = int(np.count_nonzero(fg))
        n_both = int(np.count_nonzero((seg == 1) & fg))
        inter += n_both
        total += n_seg + n_truth
        predicted += n_seg
        pixel_counts.append({"name": name, "predicted": n_seg, "truth": n_truth, "both": n_both})
        per_image_dice.append(metrics.dice_per_class(seg, fg.astype(np.uint8), 1)[1])
        if data.name == "glas":
            of1 = metrics.object_f1(inst, truth)
            for j, key in enumerate(("tp", "fp", "fn")):
                counts["obj"][j] += of1[key]
            obj_dice.append(metrics.object_dice(inst, truth))
            obj_haus.append(metrics.object_hausdorff(inst, truth))
        else:
            f1 = metrics.instance_f1(inst, truth, 0.5)
            for j, key in enumerate(("tp", "fp", "fn")):
                counts["inst"][j] += f1[key]
            aji.append(metrics.aggregated_jaccard_index(inst, truth))
            touching.append(metrics.touching_objects_recognised(inst, truth))
            if has_sep:
                sep = resize_labels(pred.separation, shape)
                pr = metrics.interface_precision_recall(
                    sep, interfaces(truth, full_scribble), tolerance=2
                )
                iface.append(pr)

    def f1_of(tp, fp, fn):
        return {
            "f1": 2 * tp / max(2 * tp + fp + fn, 1),
            "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1),
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }

    out = {
        "n_test_images": len(data.test.images),
        "pixel_dice": {data.class_names[0]: inter * 2 / max(total, 1)},
        "pixel_dice_mean_per_image": float(np.mean(per_image_dice)),
        # Pooled like the Dice; recall far below precision means under-segmentation.
        "pixel_precision": inter / max(predicted, 1),
        "pixel_recall": inter / max(total - predicted, 1),
        "pixel_counts": pixel_counts,
        # Test images without any object: every pixel predicted there is false.
        "objectless_images": {
            "n": sum(c["truth"] == 0 for c in pixel_counts),
            "predicted_pixels": sum(c["predicted"] for c in pixel_counts if c["truth"] == 0),
        },
    }
    if data.name == "glas":
        out["object_f1"] = f1_of(*counts["obj"])
        out["object_dice"] = float(np.mean(obj_dice))
        out["object_hausdorff"] = float(np.mean(obj_haus))
    else:
        out["instance_f1_iou50"] = f1_of(*counts["inst"])
        out["aji"] = float(np.mean(aji))
        valid = [t for t in touching if not np.isnan(t)]
        out["touching_recognised"] = float(np.mean(valid)) if valid else None
        if has_sep:
            # Pooled over the interface pixels of all images (an image with
            # nothing predicted must not count as precision 1.0).
            pooled = metrics.pool_interface_scores(iface)
            out["interface_precision"] = pooled["precision"]
            out["interface_recall"] = pooled["recall"]
            out["interface_pixels"] = {
                k: pooled[k] for k in ("n_pred", "pred_correct", "n_truth", "truth_found")
            }
            out["interface_precision_mean_per_image"] = float(
                np.mean([r["precision"] for r in iface])
            )
            out["interface_recall_mean_per_image"] = float(np.mean([r["recall"] for r in iface]))
    return out


# ------------------------------------------------------------------------- runs
def run_one(
    method: str, k: int, seed: int, data: Dataset, settings: dict, args
) -> tuple[dict, LazyUNet]:
    n_train = len(data.train.images)
    lazy = simulate(data.train.instances, k, seed, settings["scribble"])
    t0 = time.perf_counter()
    fit_args, options = training_inputs(method, data, lazy, settings["detection_background"])
    prep_seconds = time.perf_counter() - t0
    config = build_config(
        settings,
        data,
        options["multitask"],
        options.get("baseline_target", "segmentation"),
        seed,
        args.steps,
    )
    model = LazyUNet(config)
    images = fit_args.pop("images")
    t0 = time.perf_counter()
    model.fit(images, **fit_args)
    train_seconds = time.perf_counter() - t0
    # The saved model then takes images at their original size (``lazyunet
    # predict``), works at the scale it was trained at and drops instances by
    # their size at the original resolution.
    model.config = model.config.replace(
        predict={"input_scale": data.scale, "min_instance_size": settings["min_size_full"]}
    )
    t0 = time.perf_counter()
    scores = evaluate(model, data, settings)
    eval_seconds = time.perf_counter() - t0
    device = str(resolve_device(config.train.device))
    history = model.history
    result = {
        "dataset": data.name,
        "test_split": data.test_name,
        "config_name": args.config,
        "method": method,
        "method_name": METHODS[method],
        "k": None if method in K_INDEPENDENT else k,
        "n_train": n_train,
        "strong_fraction": (n_train if method == "e" else 0 if method == "b" else k) / n_train,
        "n_train_images_used": len(images),
        "seed": seed,
        "harness": settings,
        "config": model.config.to_dict(),  # as trained (calibrated threshold included)
        "git_commit": args.git_commit,
        "machine": machine(device),
        "wall_seconds": {
            "labels": round(prep_seconds, 2),
            "train": round(train_seconds, 2),
            "evaluate": round(eval_seconds, 2),
        },
        "final_loss": float(np.mean([h["loss"] for h in history[-20:]])) if history else None,
        # The threshold the model calibrated at the end of training (multi-task).
        "separation_threshold": model.config.predict.separation_threshold,
        # The segmentation threshold it calibrated (None: argmax).
        "segmentation_threshold": model.config.predict.segmentation_threshold,
        "metrics": scores,
    }
    return result, model


def score_saved(path: Path, data: Dataset, settings: dict, changes: list[str]) -> None:
    """Score the model saved by an earlier run on ``data.test`` (no training).

    Scores go to ``scores-<split>/``, or ``scores-<split>-<changes>/`` when
    harness settings were changed (``--set``), e.g. the separation threshold.
    """
    model_path = path.with_suffix(".pt")
    if not model_path.exists():
        print(f"skip {path.name} (no saved model {model_path.name})", flush=True)
        return
    run = json.loads(path.read_text()) if path.exists() else {}
    model = LazyUNet.load(model_path)
    t0 = time.perf_counter()
    scores = evaluate(model, data, settings)
    folder = "-".join([f"scores-{data.test_name}", *changes]).replace("=", "")
    target = path.parent / folder / path.name
    target.parent.mkdir(exist_ok=True)
    target.write_text(
        json.dumps(
            {
                "model": str(model_path),
                "test_split": data.test_name,
                "run": {
                    key: run.get(key) for key in ("dataset", "method", "k", "seed", "git_commit")
                },
                "evaluate_seconds": round(time.perf_counter() - t0, 2),
                "metrics": scores,
            },
            indent=1,
        )
    )
    print(f"{target}: dice {scores['pixel_dice'][data.class_names[0]]:.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder holding glas/ and bbbc039/")
    parser.add_argument("--dataset", choices=("glas", "bbbc039"), required=True)
    parser.add_argument("--config", choices=tuple(CONFIGS), default="cpu")
    parser.add_argument("--methods", nargs="+", choices=tuple(METHODS), default=list(METHODS))
    parser.add_argument(
        "--strong",
        nargs="+",
        type=int,
        default=None,
        help="numbers k of strong training images (default: the paper's)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="benchmarks/results/")
    parser.add_argument("--limit-test", type=int, default=None, help="score N test images only")
    parser.add_argument(
        "--limit-train",
        type=int,
        default=None,
        help="use the first N training images only (smoke runs)",
    )
    parser.add_argument("--steps", type=int, default=None, help="override the iterations")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: the configuration's)"
    )
    parser.add_argument(
        "--test-split",
        default=None,
        help="score on this split instead (GlaS: testB, BBBC039: test)",
    )
    parser.add_argument(
        "--score-saved",
        action="store_true",
        help="train nothing: score the models saved in --out on --test-split, "
        "writing scores-<split>/<run>.json there (with --set: "
        "scores-<split>-<KEYVALUE>/)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override harness settings, e.g. strong_fraction=0.5 (results are marked partial)",
    )
    args = parser.parse_args(argv)
    args.git_commit = git_commit()  # the code as it was when this process started

    settings = dict(CONFIGS[args.config][args.dataset])
    if args.steps:
        settings["steps"] = args.steps
    if args.threads is not None:
        settings["num_threads"] = args.threads
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in settings:
            parser.error(f"--set {item}: unknown setting; known: {', '.join(settings)}")
        kind = type(settings[key])
        if settings[key] is None:  # optional numbers, e.g. separation_threshold
            settings[key] = float(value)
        elif kind is bool:
            settings[key] = value.lower() in ("1", "true", "yes")
        elif kind is tuple:  # e.g. task_weights=1,2,1
            settings[key] = tuple(float(v) for v in value.split(","))
        else:
            settings[key] = kind(value)
    strong = args.strong or DEFAULT_STRONG[args.dataset]
    if settings["num_threads"]:
        torch.set_num_threads(settings["num_threads"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = load_dataset(
        # Scoring saved models reads no training image beyond the first.
        args.data_dir,
        args.dataset,
        settings["scale"],
        args.limit_test,
        1 if args.score_saved else args.limit_train,
        args.test_split,
    )
    n_train = len(data.train.images)
    print(
        f"loaded {args.dataset}: {n_train} train, {len(data.test.images)} {data.test_name} "
        f"images at scale {settings['scale']} ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    empty = [sum(not inst.any() for inst in split.instances) for split in (data.train, data.test)]
    print(f"images without any object: {empty[0]} train, {empty[1]} {data.test_name}", flush=True)
    done_independent: set[tuple[str, int]] = set()
    for seed in args.seeds:
        for k in strong:
            k = k if args.score_saved else min(k, n_train)
            for method in args.methods:
                if method in K_INDEPENDENT:
                    if (method, seed) in done_independent:
                        continue
                    done_independent.add((method, seed))
                tag = "all" if method in K_INDEPENDENT else f"k{k}"
                name = f"{args.dataset}-{args.config}-{method}-{tag}-s{seed}.json"
                if args.score_saved:  # the models of earlier runs, on any subset of images
                    path = out / name
                    exploratory = out / name.replace(".json", "-partial.json")
                    if not path.with_suffix(".pt").exists() and exploratory.exists():
                        path = exploratory  # a folder of exploratory runs
                    score_saved(path, data, settings, args.set)
                    continue
                partial = bool(args.limit_test or args.limit_train or args.steps or args.set)
                if partial:
                    name = name.replace(".json", "-partial.json")
                path = out / name
                if path.exists():
                    print(f"skip {name} (exists)", flush=True)
                    continue
                t0 = time.perf_counter()
                result, model = run_one(method, k, seed, data, settings, args)
                result["wall_seconds"]["total"] = round(time.perf_counter() - t0, 2)
                result["partial"] = partial
                # The trained model beside its scores, to evaluate on other images
                # (``lazyunet predict`` on images at their original size).
                model.save(path.with_suffix(".pt"))
                path.write_text(json.dumps(result, indent=1))
                m = result["metrics"]
                extra = (
                    f"objF1 {m['object_f1']['f1']:.3f} objDice {m['object_dice']:.3f} "
                    f"objH {m['object_hausdorff']:.1f}"
                    if "object_f1" in m
                    else f"instF1 {m['instance_f1_iou50']['f1']:.3f} AJI {m['aji']:.3f}"
                )
                print(
                    f"{name}: dice {m['pixel_dice'][data.class_names[0]]:.3f} {extra} "
                    f"({result['wall_seconds']['total']:.0f} s)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
