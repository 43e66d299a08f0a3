"""The end-to-end demo: lazy labels in, both networks trained, outputs and scores out.

``run_demo`` builds the synthetic two-class foam sample (bubbles and
crystals, many touching with no visible boundary), trains the multi-task
U-Net on its lazy labels (inner regions on every training image, interface
scribbles, exact masks on two images) and, for comparison, a single-task
U-Net on the same weak inner-region labels, then predicts held-out images
and scores both against the known ground truth.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..api import LazyUNet
from ..config import LazyUNetConfig, ModelConfig, PredictConfig, TrainConfig
from ..core.files import write_image, write_labels
from ..core.labels import ImageLabels, WeakLabelsOnlyWarning
from ..core.project import save_project
from ..evaluation.metrics import (
    aggregated_jaccard_index,
    dice_per_class,
    instance_f1,
    interface_precision_recall,
    pool_interface_scores,
)
from .synthetic import FoamSample, make_foam_sample

N_TRAIN, N_TEST, N_STRONG = 10, 4, 2


@dataclass(frozen=True)
class DemoSettings:
    """Size of the demo run (defaults fit in a few minutes on a 2-core CPU)."""

    steps: int = 600
    image_size: int = 160
    base_channels: int = 8
    depth: int = 3
    batch_size: int = 4
    patch_size: int = 96
    seed: int = 0


@dataclass
class DemoScores:
    """Scores of one model on the held-out images (means over images)."""

    name: str
    dice: dict[str, float] = field(default_factory=dict)
    instance_f1: float = 0.0
    aji: float = 0.0
    interface_precision: float | None = None
    interface_recall: float | None = None
    train_seconds: float = 0.0


def demo_config(settings: DemoSettings, class_names, multitask: bool) -> LazyUNetConfig:
    """Configuration used for one of the demo's two models."""
    return LazyUNetConfig(
        model=ModelConfig(
            in_channels=1,
            class_names=tuple(class_names),
            base_channels=settings.base_channels,
            depth=settings.depth,
            multitask=multitask,
        ),
        train=TrainConfig(
            steps=settings.steps,
            batch_size=settings.batch_size,
            patch_size=settings.patch_size,
            learning_rate=1e-3 if settings.steps < 1000 else 2e-4,
            seed=settings.seed,
            validate_every=0,
            baseline_target="segmentation" if multitask else "detection",
            # This network is too small to gain from a second CPU thread, and
            # on a busy machine torch's threads wait on each other: measured
            # 0.28 s per step with one thread against 0.81 s with two.
            num_threads=1,
        ),
        predict=PredictConfig(tile_size=128, overlap=0.25),
    )


def demo_training_set(settings: DemoSettings) -> tuple[FoamSample, list[ImageLabels]]:
    """The demo's sample and the lazy labels of its first ``N_TRAIN`` images.

    The first ``N_STRONG`` images are strong (exact masks); the last
    ``N_TEST`` images of the sample are held out.
    """
    size = settings.image_size
    sample = make_foam_sample(N_TRAIN + N_TEST, shape=(size, size), seed=settings.seed)
    labels = [
        ImageLabels(
            detection=sample.detection[i],
            separation=sample.separation[i],
            segmentation=sample.classes[i] if i < N_STRONG else None,
            strong=i < N_STRONG,
        )
        for i in range(N_TRAIN)
    ]
    return sample, labels


def score_model(
    name, model, images, truth_classes, truth_instances, truth_interfaces, class_names, seconds
) -> tuple[DemoScores, list]:
    """The demo's scores of ``model`` on held-out images, and its predictions."""
    dices = {c: [] for c in class_names}
    f1s, ajis, interfaces, predictions = [], [], [], []
    for image, classes, instances, interface in zip(
        images, truth_classes, truth_instances, truth_interfaces, strict=True
    ):
        result = model.predict(image)
        predictions.append(result)
        per_class = dice_per_class(result.segmentation, classes, len(class_names))
        for k, c in enumerate(class_names, start=1):
            dices[c].append(per_class[k])
        f1s.append(instance_f1(result.instances, instances)["f1"])
        ajis.append(aggregated_jaccard_index(result.instances, instances))
        if result.separation is not None:
            interfaces.append(interface_precision_recall(result.separation > 0, interface > 0))
    pooled = pool_interface_scores(interfaces) if interfaces else None
    scores = DemoScores(
        name=name,
        dice={c: float(np.mean(v)) for c, v in dices.items()},
        instance_f1=float(np.mean(f1s)),
        aji=float(np.mean(ajis)),
        interface_precision=pooled["precision"] if pooled else None,
        interface_recall=pooled["recall"] if pooled else None,
        train_seconds=seconds,
    )
    return scores, predictions


def _overlay_png(path: Path, image: np.ndarray, truth, multi, single) -> None:
    """Side by side: image, ground truth, multi-task and single-task instance boundaries."""
    from skimage.color import label2rgb
    from skimage.io import imsave
    from skimage.segmentation import find_boundaries

    gray = (image - image.min()) / max(np.ptp(image), 1e-9)
    panels = [np.dstack([gray] * 3)]
    for instances in (truth, multi, single):
        colour = label2rgb(instances, image=gray, bg_label=0, alpha=0.35)
        colour[find_boundaries(instances, mode="inner")] = (1.0, 1.0, 0.0)
        panels.append(colour)
    gap = np.ones((gray.shape[0], 4, 3))
    row = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    imsave(path, (np.clip(row, 0, 1) * 255).astype(np.uint8), check_contrast=False)


def run_demo(
    out: str | Path,
    settings: DemoSettings | None = None,
    report: Callable[[str], None] = print,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[DemoScores, DemoScores]:
    """Run the whole demo and write its outputs under ``out``.

    Parameters
    ----------
    out : path-like
        Output folder: ``project/`` (the training sample in the project
        format), ``models/``, ``predictions/`` and ``overlay.png``.
    settings : DemoSettings, optional
        Run size.
    report : callable
        Receives one line of text per stage.
    progress : callable, optional
        ``progress(stage, step, total)`` during training.

    Returns
    -------
    (DemoScores, DemoScores)
        Multi-task U-Net, then the single-task U-Net.
    """
    settings = settings or DemoSettings()
    out = Path(out)
    size = settings.image_size
    sample, labels = demo_training_set(settings)
    train_idx, test_idx = range(N_TRAIN), range(N_TRAIN, N_TRAIN + N_TEST)
    images = [sample.images[i] for i in train_idx]
    names = [f"foam_{i:02d}" for i in train_idx]
    save_project(out / "project", names, images, labels, sample.class_names)
    report(
        f"sample: {N_TRAIN} training images {size}x{size} with lazy labels "
        f"({N_STRONG} strong), {N_TEST} held-out images with ground truth -> {out / 'project'}"
    )

    results = []
    for multitask, name in ((True, "multi-task U-Net"), (False, "single-task U-Net (weak)")):
        model = LazyUNet(demo_config(settings, sample.class_names, multitask))
        started = time.perf_counter()

        def on_step(event, name=name):
            if progress is not None:
                progress(name, event.step, event.total_steps)

        if multitask:
            model.fit(images, labels=labels, callback=on_step)
        else:
            # The baseline sees the same weak inner regions and nothing else; that it
            # has no strong image is the point of the comparison, not a mistake.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", WeakLabelsOnlyWarning)
                model.fit(images, detection=[lab.detection for lab in labels], callback=on_step)
        seconds = time.perf_counter() - started
        tag = "multitask" if multitask else "singletask"
        model.save(out / "models" / f"{tag}.pt")
        scores, predictions = score_model(
            name,
            model,
            [sample.images[i] for i in test_idx],
            [sample.classes[i] for i in test_idx],
            [sample.instances[i] for i in test_idx],
            [sample.separation[i] for i in test_idx],
            sample.class_names,
            seconds,
        )
        for i, result in zip(test_idx, predictions, strict=True):
            folder = out / "predictions" / tag
            write_image(folder / "images" / f"foam_{i:02d}.tif", sample.images[i])
            for task in ("detection", "segmentation", "separation", "instances"):
                value = getattr(result, task)
                if value is not None:
                    write_labels(folder / task / f"foam_{i:02d}.tif", value)
        results.append((scores, predictions))
        report(f"trained {name} in {seconds:.0f} s")

    first = test_idx[0]
    _overlay_png(
        out / "overlay.png",
        sample.images[first].astype(np.float32),
        sample.instances[first],
        results[0][1][0].instances,
        results[1][1][0].instances,
    )
    report(f"overlay (image | truth | multi-task | single-task): {out / 'overlay.png'}")
    return results[0][0], results[1][0]


def format_scores(scores: list[DemoScores]) -> str:
    """A plain-text table of the demo's scores."""
    class_names = list(scores[0].dice)
    header = (
        ["model"]
        + [f"Dice {c}" for c in class_names]
        + ["instance F1", "AJI", "interface P/R", "train s"]
    )

    def interface(s: DemoScores) -> str:
        if s.interface_precision is None:
            return "-"  # the single-task network has no separation output
        return f"{s.interface_precision:.2f}/{s.interface_recall:.2f}"

    rows = [
        [s.name]
        + [f"{s.dice[c]:.3f}" for c in class_names]
        + [f"{s.instance_f1:.3f}", f"{s.aji:.3f}", interface(s), f"{s.train_seconds:.0f}"]
        for s in scores
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
