"""How well saved paper models segment their own training images, by label kind.

A model that learns exact boundaries from ``k`` strong images can fit those
images well and still under-segment the others. This scores the
segmentation of saved ``benchmarks/paper.py`` models on the training images,
pooled separately over three groups that the run's simulated labels define:
the strong images, the other detection-labelled images, and the images with
no detection label. Scores are at working resolution (the resolution the
model was trained at).

Example::

    python benchmarks/training_fit.py --data-dir ../shared/data --dataset glas --config cpu \\
        --runs a-k8-s0 c-k8-s0 d-k8-s0 f-k8-s0 e-all-s0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lazy_data import load_dataset, simulate
from napari_lazyunet.api import LazyUNet
from paper import CONFIGS

GROUPS = ("strong", "detection only", "no detection")


def group_of(strong: bool, detection: np.ndarray | None) -> str:
    if strong:
        return "strong"
    return "detection only" if detection is not None else "no detection"


def pooled_scores(counts: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """Precision, recall and Dice per group from pooled (tp, fp, fn, images) counts."""
    out = {}
    for name, (tp, fp, fn, n) in counts.items():
        if n:
            out[name] = {
                "images": n,
                "precision": tp / max(tp + fp, 1),
                "recall": tp / max(tp + fn, 1),
                "dice": 2 * tp / max(2 * tp + fp + fn, 1),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", choices=("glas", "bbbc039"), required=True)
    parser.add_argument("--config", choices=tuple(CONFIGS), default="cpu")
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="METHOD-kK-sSEED",
        help="runs to score, e.g. a-k8-s0 (the part of the file name after the configuration)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = CONFIGS[args.config][args.dataset]
    data = load_dataset(args.data_dir, args.dataset, settings["scale"])
    print(f"| run | {' | '.join(GROUPS)} |")
    print("|---|" + "---|" * len(GROUPS))
    for run in args.runs:
        _method, k_tag, seed_tag = run.split("-")
        # (b) and (e) runs ("all") have no strong set of their own: group
        # their images by detection label only.
        k = 0 if k_tag == "all" else int(k_tag[1:])
        seed = int(seed_tag[1:])
        path = Path(args.results) / f"{args.dataset}-{args.config}-{run}.pt"
        model = LazyUNet.load(path)
        lazy = simulate(data.train.instances, k, seed, settings["scribble"])
        counts = {name: [0, 0, 0, 0] for name in GROUPS}
        for image, truth, strong, detection in zip(
            data.train.images, data.train.instances, lazy.strong, lazy.detection, strict=True
        ):
            # The images are at the working scale already (the model must not
            # resize them again).
            predicted = model.predict(image, input_scale=1.0).segmentation > 0
            foreground = truth > 0
            tally = counts[group_of(strong, detection)]
            tally[0] += int(np.count_nonzero(predicted & foreground))
            tally[1] += int(np.count_nonzero(predicted & ~foreground))
            tally[2] += int(np.count_nonzero(~predicted & foreground))
            tally[3] += 1
        scores = pooled_scores(counts)
        cells = [
            f"P {s['precision']:.3f} / R {s['recall']:.3f} / Dice {s['dice']:.3f} ({s['images']})"
            if (s := scores.get(name))
            else "–"
            for name in GROUPS
        ]
        print(f"| {run} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
