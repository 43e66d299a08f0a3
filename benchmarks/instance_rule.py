"""The instance step's rules compared on one prediction per test image.

For each test image, a trained model predicts once; the instance step then
runs on the same probabilities with:

- ``split by any seeds``: every region is split by its detection seeds
  (``neck_ratio=None``), seeds = detection argmax (the rules before);
- ``evidence``: seeds split a region only where it narrows or predicted
  interfaces support it (:data:`napari_lazyunet.core.instances.NECK_RATIO`);
- ``evidence + detection threshold``: the same, with seeds where the
  detection probability exceeds the threshold calibrated on the model's
  training project (:func:`napari_lazyunet.core.calibrate.calibrate_detection_threshold`,
  computed here for models trained before it existed).

Instance F1 at IoU 0.5 and AJI against the truth, mean over images, and the
object counts. Run after ``benchmarks/defaults.py`` (which writes the
models and projects), e.g.::

    python benchmarks/instance_rule.py --data-dir ../shared/data \\
        --work-dir benchmarks/results/defaults --datasets bbbc039 glas dsb2018 usiigaci
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from defaults import load
from napari_lazyunet.api import LazyUNet
from napari_lazyunet.core.calibrate import calibrate_detection_threshold, calibration_sampler
from napari_lazyunet.core.instances import NECK_RATIO, instances_from_outputs
from napari_lazyunet.core.predict import segmentation_map
from napari_lazyunet.core.project import load_project
from napari_lazyunet.core.training_set import prepare_set
from napari_lazyunet.evaluation import metrics

RULES = ("split by any seeds", f"evidence (neck {NECK_RATIO:g})", "evidence + detection threshold")


def detection_threshold(model: LazyUNet, project_dir: Path) -> float | None:
    """The detection threshold training calibrates, computed on the model's training project."""
    project = load_project(project_dir)
    config = model.config
    prepared = prepare_set(project.images, project.labels, config, warn_weak_only=False)
    sampler = calibration_sampler(prepared, config.train, model.steps_done + 2)
    return calibrate_detection_threshold(
        model.network, sampler, torch.device("cpu"), config.train.recalibration_batches
    )


def score_dataset(model: LazyUNet, images, truths, threshold: float | None) -> dict:
    """Mean instance F1 / AJI and object counts of each rule over the images."""
    predict = model.config.predict.with_defaults()
    rows = {rule: {"f1": [], "aji": [], "objects": 0} for rule in RULES}
    true_objects = 0
    for image, truth in zip(images, truths, strict=True):
        result = model.predict(image, detection_threshold=None)
        probs = result.probabilities["detection"]
        seeds = {None: result.detection, threshold: segmentation_map(probs, threshold)}
        separation = result.separation if predict.separate_touching else None
        true_objects += int(len(np.unique(truth)) - 1)
        for rule, ratio, det in zip(
            RULES,
            (None, NECK_RATIO, NECK_RATIO),
            (seeds[None], seeds[None], seeds[threshold]),
            strict=True,
        ):
            instances, _ = instances_from_outputs(
                result.segmentation,
                separation,
                det,
                min_size=predict.min_instance_size,
                neck_ratio=ratio,
            )
            rows[rule]["f1"].append(metrics.instance_f1(instances, truth)["f1"])
            rows[rule]["aji"].append(metrics.aggregated_jaccard_index(instances, truth))
            rows[rule]["objects"] += int(instances.max())
    return {
        rule: {
            "instance_f1": float(np.mean(r["f1"])),
            "aji": float(np.mean(r["aji"])),
            "objects": r["objects"],
            "true_objects": true_objects,
        }
        for rule, r in rows.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, default=Path("benchmarks/results/defaults"))
    parser.add_argument("--datasets", nargs="+", default=["bbbc039", "glas", "dsb2018", "usiigaci"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-test", type=int, default=None)
    args = parser.parse_args(argv)
    results = {}
    print(f"{'dataset':9s} {'rule':32s} {'F1@.5':>6s} {'AJI':>6s} {'objects':>14s}")
    for name in args.datasets:
        model_file = args.work_dir / name / f"seed{args.seed}" / "multitask" / "model.pt"
        if not model_file.is_file():
            print(f"{name}: no model at {model_file}, skipped")
            continue
        data = load(args.data_dir, name, 1, args.limit_test)
        model = LazyUNet.load(model_file)
        threshold = model.config.predict.detection_threshold
        if threshold is None:
            threshold = detection_threshold(model, model_file.parent.parent / "project")
        print(f"{name}: detection threshold {threshold}")
        results[name] = score_dataset(model, data.test.images, data.test.full_instances, threshold)
        results[name]["detection_threshold"] = threshold
        for rule, r in ((k, v) for k, v in results[name].items() if k in RULES):
            print(
                f"{name:9s} {rule:32s} {r['instance_f1']:6.3f} {r['aji']:6.3f} "
                f"{r['objects']:6d}/{r['true_objects']:<6d}"
            )
    out = args.work_dir / f"instance_rule_seed{args.seed}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
