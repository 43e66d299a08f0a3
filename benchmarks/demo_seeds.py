"""The demo's multi-task U-Net over training seeds, with and without the weak-image labels.

``lazyunet demo`` trains on one synthetic foam sample with one seed; its
four held-out images make single scores move with the seed. This script
trains the demo's multi-task model on the same sample (``DemoSettings``)
for each training seed given, with the engine's weak-image segmentation
labels (``segmentation_from_inner`` and ``segmentation_far_background``,
the defaults) and, with ``--paper-loss``, without them, and prints the
demo's scores per run. One torch thread per run, as the demo.

Example::

    python benchmarks/demo_seeds.py --seeds 0 1 2 --paper-loss
"""

from __future__ import annotations

import argparse
import time

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.sample.demo import (
    N_TEST,
    N_TRAIN,
    DemoSettings,
    demo_config,
    demo_training_set,
    score_model,
)


def train_and_score(seed: int, weak_labels: bool, settings: DemoSettings) -> dict:
    """Scores of the demo's multi-task model trained with ``seed``."""
    sample, labels = demo_training_set(settings)
    config = demo_config(settings, sample.class_names, True).replace(
        train={
            "seed": seed,
            "segmentation_from_inner": weak_labels,
            "segmentation_far_background": weak_labels,
        }
    )
    model = LazyUNet(config)
    started = time.perf_counter()
    model.fit(sample.images[:N_TRAIN], labels=labels)
    test = range(N_TRAIN, N_TRAIN + N_TEST)
    scores, _ = score_model(
        "multi-task U-Net",
        model,
        [sample.images[i] for i in test],
        [sample.classes[i] for i in test],
        [sample.instances[i] for i in test],
        [sample.separation[i] for i in test],
        sample.class_names,
        time.perf_counter() - started,
    )
    return {
        "dice": scores.dice,
        "instance_f1": scores.instance_f1,
        "aji": scores.aji,
        "train_seconds": scores.train_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--paper-loss",
        action="store_true",
        help="also train without the weak-image segmentation labels",
    )
    args = parser.parse_args(argv)
    settings = DemoSettings()
    variants = [True, False] if args.paper_loss else [True]
    print("| labels | training seed | Dice per class | instance F1 | AJI | train s |")
    print("|---|---|---|---|---|---|")
    for weak_labels in variants:
        name = "weak-image labels (default)" if weak_labels else "paper's loss"
        for seed in args.seeds:
            row = train_and_score(seed, weak_labels, settings)
            dice = " / ".join(f"{value:.3f}" for value in row["dice"].values())
            print(
                f"| {name} | {seed} | {dice} | {row['instance_f1']:.3f} | {row['aji']:.3f} "
                f"| {row['train_seconds']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
