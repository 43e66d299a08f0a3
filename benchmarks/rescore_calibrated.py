"""Rescore saved paper models at the thresholds that training calibrates now.

Training ends by calibrating two thresholds on its training data: the
separation threshold (:func:`napari_lazyunet.core.calibrate.calibrate_separation_threshold`)
and the segmentation threshold
(:func:`napari_lazyunet.core.calibrate.calibrate_segmentation_threshold`). Runs of
``benchmarks/paper.py`` saved before either existed cut touching objects
apart at 0.5 and segmented by argmax. For each saved run this rebuilds the
run's simulated training set, draws the same calibration patches that
``fit`` draws now (:func:`~napari_lazyunet.core.train.calibration_sampler`:
seed and step of the run) for the separation threshold, and measures the
segmentation threshold on the run's training images as ``fit`` does, so the
thresholds are those a rerun of the run would store (the weights are the
same: training is seeded). It scores the test split at them and writes the
run's JSON with those scores and the model with those thresholds to
``<results>/calibrated/`` (``report.py --rescored`` uses the scores;
``paper.py --score-saved --out <results>/calibrated`` and ``lazyunet
predict`` the models). No test
image is looked at to choose a threshold.

Example::

    python benchmarks/rescore_calibrated.py --data-dir ../shared/data --dataset bbbc039 \
        --runs a-k2-s0 a-k5-s0 a-k10-s0 f-k10-s0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lazy_data import load_dataset, simulate
from napari_lazyunet.api import LazyUNet, make_labels
from napari_lazyunet.core.calibrate import (
    calibrate_segmentation_threshold,
    calibrate_separation_threshold,
    calibration_sampler,
    task_probabilities,
)
from napari_lazyunet.core.training_set import prepare_set
from paper import CONFIGS, evaluate, git_commit, training_inputs


def headline(metrics: dict) -> dict:
    """The scores the thresholds can change: pixels, instances and interfaces."""
    pixels = {"pixel_dice": next(iter(metrics["pixel_dice"].values()))}
    if "object_f1" in metrics:  # GlaS
        return {
            **pixels,
            "object_f1": metrics["object_f1"]["f1"],
            "object_dice": metrics["object_dice"],
            "object_hausdorff": metrics["object_hausdorff"],
        }
    return {
        **pixels,
        "instance_f1": metrics["instance_f1_iou50"]["f1"],
        **{
            key: metrics.get(key)
            for key in ("aji", "touching_recognised", "interface_precision", "interface_recall")
        },
    }


def probe(model: LazyUNet, sampler, batches: int) -> dict:
    """Interface probability on the calibration patches: where labelled, elsewhere, at most."""
    p, truth = task_probabilities(
        model.network, sampler, torch.device("cpu"), batches, "separation"
    )
    on, off = p[truth], p[~truth]
    return {
        "mean_on_interfaces": float(on.mean()) if on.size else None,
        "mean_elsewhere": float(off.mean()),
        "max": float(p.max()),
        "interface_share": on.size / p.size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", choices=("glas", "bbbc039"), default="bbbc039")
    parser.add_argument("--config", choices=tuple(CONFIGS), default="cpu")
    parser.add_argument(
        "--runs", nargs="+", required=True, help="runs of benchmarks/results, e.g. a-k5-s0 f-k10-s1"
    )
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the before / after rows here")
    parser.add_argument(
        "--no-score",
        action="store_true",
        help="only write the calibrated models (<results>/calibrated/<run>.pt); score nothing",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="only print the interface probabilities on the calibration patches "
        "(mean on labelled interfaces, mean elsewhere, maximum); no scoring",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    datasets = {}  # by working scale
    rows = []
    for run in args.runs:
        method, k_tag, seed_tag = run.split("-")[:3]
        k, seed = int(k_tag.lstrip("k")), int(seed_tag.lstrip("s"))
        stem = Path(args.results) / f"{args.dataset}-{args.config}-{run}"
        model = LazyUNet.load(stem.with_suffix(".pt"))
        record = json.loads(stem.with_suffix(".json").read_text())
        stored = record["metrics"]
        # The run's own harness settings (an exploratory run may have changed
        # the scale or the scribbles), completed by today's defaults.
        settings = {**CONFIGS[args.config][args.dataset], **record["harness"]}
        if settings["scale"] not in datasets:
            datasets[settings["scale"]] = load_dataset(
                args.data_dir, args.dataset, settings["scale"]
            )
        data = datasets[settings["scale"]]

        lazy = simulate(data.train.instances, k, seed, settings["scribble"])
        fit_args, _ = training_inputs(method, data, lazy, settings["detection_background"])
        images = fit_args.pop("images")
        prepared = prepare_set(
            images, make_labels(len(images), **fit_args), model.config, warn_weak_only=False
        )
        sampler = calibration_sampler(prepared, model.config.train, model.steps_done)
        if args.probe:
            found = probe(model, sampler, model.config.train.recalibration_batches)
            print(
                f"{run}: "
                + ", ".join(
                    f"{key} {value:.4f}" for key, value in found.items() if value is not None
                ),
                flush=True,
            )
            continue
        cpu, batches = torch.device("cpu"), model.config.train.recalibration_batches
        separation = calibrate_separation_threshold(model.network, sampler, cpu, batches)
        # The working-scale training images, predicted as the harness predicts.
        segmentation = calibrate_segmentation_threshold(
            model.network, prepared, model.config.predict, cpu
        )
        # The model as a rerun would save it: both thresholds, and (like the
        # harness now) the working scale and the full-size smallest instance,
        # so that `lazyunet predict` and `paper.py --score-saved` use it as is.
        model.config = model.config.replace(
            predict={
                "separation_threshold": separation or 0.5,
                "segmentation_threshold": segmentation,
                "input_scale": data.scale,
                "min_instance_size": settings["min_size_full"],
            }
        )
        target = Path(args.results) / "calibrated" / stem.with_suffix(".json").name
        target.parent.mkdir(exist_ok=True)
        model.save(target.with_suffix(".pt"))
        if args.no_score:
            print(
                f"{run}: thresholds separation {separation}, segmentation {segmentation} "
                f"-> {target.with_suffix('.pt')}",
                flush=True,
            )
            continue
        # Scored at the thresholds just stored in the model (None: the model's own).
        scores = evaluate(
            model, data, {**settings, "separation_threshold": None, "segmentation_threshold": None}
        )
        record.update(
            metrics=scores,
            separation_threshold=separation,
            segmentation_threshold=segmentation,
            rescored={"by": "benchmarks/rescore_calibrated.py", "git_commit": git_commit()},
        )
        target.write_text(json.dumps(record, indent=1))
        row = {
            "run": run,
            "separation_threshold": separation,
            "segmentation_threshold": segmentation,
            "stored": headline(stored),
            "calibrated": headline(scores),
        }
        rows.append(row)
        print(
            f"{run}: thresholds separation {separation}, segmentation {segmentation} | "
            + " | ".join(
                f"{key} {row['stored'][key]:.3f} -> {row['calibrated'][key]:.3f}"
                for key in row["stored"]
                if row["stored"][key] is not None
            ),
            flush=True,
        )
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
