"""How right the far-background segmentation labels are, against the truth.

``TrainConfig.segmentation_far_background`` labels as background, on the
weak images with a complete detection layer, every pixel farther from the
inner regions than the strong images' objects reach
(:mod:`napari_lazyunet.core.weak_targets`). This script builds those labels from
the lazy labels that ``benchmarks/paper.py`` simulates (same seeds, same
strong images) and prints, per dataset, ``k`` and seed, the reach measured
on the strong images, how much of the true background the rule labels, and
how many of the pixels it labels are in fact object pixels. No training.

Example::

    python benchmarks/far_background.py --data-dir ../shared/data --dataset glas \\
        --strong 2 4 8 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lazy_data import load_dataset, simulate
from napari_lazyunet.core.labels import IGNORE, TASKS, ImageLabels, training_targets
from napari_lazyunet.core.weak_targets import far_background_targets
from paper import CONFIGS


def label_quality(instances: list[np.ndarray], k: int, seed: int, scribble: int) -> dict:
    """Reach and far-background label counts of one simulated training set.

    The labels are those the engine trains with: the loss targets of the
    simulated lazy labels, passed through
    :func:`napari_lazyunet.core.weak_targets.far_background_targets`.
    """
    lazy = simulate(instances, k, seed, scribble)
    targets = [
        training_targets(
            ImageLabels(detection=det, segmentation=seg, strong=strong), truth.shape, n_classes=1
        )
        for det, seg, strong, truth in zip(
            lazy.detection, lazy.segmentation, lazy.strong, instances, strict=True
        )
    ]
    labelled_targets, measured = far_background_targets(targets, lazy.strong)
    segmentation = TASKS.index("segmentation")
    labelled = wrong = background = images = 0
    for before, after, truth in zip(targets, labelled_targets, instances, strict=True):
        if after is before:
            continue  # strong, or no complete detection layer: nothing labelled
        far = (after[segmentation] == 0) & (before[segmentation] == IGNORE)
        objects = truth > 0
        images += 1
        labelled += int(far.sum())
        wrong += int((far & objects).sum())
        background += int((~objects).sum())
    return {
        "reach": measured,
        "images": images,
        "labelled": labelled,
        "wrong": wrong,
        "background": background,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", choices=("glas", "bbbc039"), required=True)
    parser.add_argument("--config", choices=tuple(CONFIGS), default="cpu")
    parser.add_argument("--strong", type=int, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    settings = CONFIGS[args.config][args.dataset]
    data = load_dataset(args.data_dir, args.dataset, scale=settings["scale"], limit_test=1)
    print(
        f"{args.dataset} at scale {settings['scale']:g}: {len(data.train.images)} training "
        "images; far-background labels on the weak images with inner regions"
    )
    print(
        "| k | seed | reach (inner radii) | weak images | true background labelled "
        "| labelled pixels that are object |"
    )
    print("|---|---|---|---|---|---|")
    for k in args.strong:
        for seed in args.seeds:
            q = label_quality(data.train.instances, k, seed, settings["scribble"])
            print(
                f"| {k} | {seed} | {q['reach']:.2f} | {q['images']} | "
                f"{q['labelled'] / max(q['background'], 1):.1%} | "
                f"{q['wrong'] / max(q['labelled'], 1):.2%} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
