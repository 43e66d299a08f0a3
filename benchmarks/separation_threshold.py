"""Rescore saved multi-task paper models at a separation threshold calibrated on training patches.

The models of ``benchmarks/paper.py`` cut touching objects apart where the
interface probability exceeds a threshold (0.5 when they were trained). This
recomputes, for each saved run, the threshold that
:func:`napari_lazyunet.core.train.calibrate_separation_threshold` picks on
patches of that run's own simulated training labels (no test image is
looked at), and scores the test split at that threshold, next to the
run's scores at 0.5.

Example::

    python benchmarks/separation_threshold.py --data-dir ../shared/data --dataset bbbc039 \\
        --runs a-k2-s0 a-k5-s0 a-k10-s0 f-k10-s0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lazy_data import load_dataset, simulate  # noqa: E402
from napari_lazyunet.api import LazyUNet, make_labels  # noqa: E402
from napari_lazyunet.core.data import PatchSampler  # noqa: E402
from napari_lazyunet.core.train import calibrate_separation_threshold, prepare_set  # noqa: E402
from paper import CONFIGS, evaluate, training_inputs  # noqa: E402

def headline(metrics: dict) -> dict:
    """The scores the separation threshold can change (instances and interfaces)."""
    if "object_f1" in metrics:  # GlaS
        return {"object_f1": metrics["object_f1"]["f1"], "object_dice": metrics["object_dice"],
                "object_hausdorff": metrics["object_hausdorff"]}
    return {"instance_f1": metrics["instance_f1_iou50"]["f1"],
            **{key: metrics[key] for key in ("aji", "touching_recognised",
                                            "interface_precision", "interface_recall")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", choices=("glas", "bbbc039"), default="bbbc039")
    parser.add_argument("--config", choices=tuple(CONFIGS), default="cpu")
    parser.add_argument("--runs", nargs="+", required=True,
                        help="runs of benchmarks/results, e.g. a-k5-s0 f-k10-s1")
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--batches", type=int, default=20, help="training batches to calibrate on")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = dict(CONFIGS[args.config][args.dataset])
    data = load_dataset(args.data_dir, args.dataset, settings["scale"])
    rows = []
    for run in args.runs:
        method, k_tag, seed_tag = run.split("-")
        k, seed = int(k_tag.lstrip("k")), int(seed_tag.lstrip("s"))
        stem = Path(args.results) / f"{args.dataset}-{args.config}-{run}"
        model = LazyUNet.load(stem.with_suffix(".pt"))
        stored = json.loads(stem.with_suffix(".json").read_text())["metrics"]

        lazy = simulate(data.train.instances, k, seed, settings["scribble"])
        fit_args, _ = training_inputs(method, data, lazy, settings["detection_background"])
        images = fit_args.pop("images")
        prepared = prepare_set(images, make_labels(len(images), **fit_args), model.config,
                               warn_weak_only=False)
        sampler = PatchSampler(prepared.images, prepared.targets, prepared.strong,
                               model.config.train, np.random.default_rng(seed))
        threshold = calibrate_separation_threshold(
            model.network, sampler, torch.device("cpu"), args.batches
        )
        scores = evaluate(model, data, {**settings, "separation_threshold": threshold or 0.5})
        row = {"run": run, "threshold": threshold,
               "at_0.5": headline(stored), "calibrated": headline(scores)}
        rows.append(row)
        print(f"{run}: threshold {threshold} | " + " | ".join(
            f"{key} {row['at_0.5'][key]:.3f} -> {row['calibrated'][key]:.3f}"
            for key in row["at_0.5"]
        ), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
