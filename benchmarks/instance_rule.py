"""Instances with and without the evidence rule for seed splits, from one prediction.

For each test image, a trained model predicts once; the instance step then
runs twice on the same label maps: splitting every region by its detection
seeds (``neck_ratio=None``, the rule before) and splitting only where the
region narrows or predicted interfaces support it (the default,
:data:`napari_lazyunet.core.postprocess.NECK_RATIO`). Instance F1 at IoU 0.5
and AJI against the truth, mean over images, and the object counts.

Run after ``benchmarks/defaults.py`` (which writes the models), e.g.::

    python benchmarks/instance_rule.py --data-dir ../shared/data \\
        --work-dir benchmarks/results/defaults --datasets bbbc039 glas dsb2018 usiigaci
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from defaults import load  # noqa: E402
from napari_lazyunet.api import LazyUNet  # noqa: E402
from napari_lazyunet.core import metrics  # noqa: E402
from napari_lazyunet.core.postprocess import NECK_RATIO, instances_from_outputs  # noqa: E402

RULES = {"split by any seeds": None, f"evidence (neck ratio {NECK_RATIO:g})": NECK_RATIO}


def score_dataset(model: LazyUNet, images, truths) -> dict:
    """Mean instance F1 / AJI and object counts of each rule over the images."""
    min_size = model.config.predict.with_defaults().min_instance_size
    cut = model.config.predict.separate_touching
    rows = {rule: {"f1": [], "aji": [], "objects": 0} for rule in RULES}
    true_objects = 0
    for image, truth in zip(images, truths, strict=True):
        result = model.predict(image)
        true_objects += int(len(np.unique(truth)) - 1)
        for rule, ratio in RULES.items():
            instances, _ = instances_from_outputs(
                result.segmentation, result.separation if cut else None, result.detection,
                min_size=min_size, neck_ratio=ratio,
            )
            rows[rule]["f1"].append(metrics.instance_f1(instances, truth)["f1"])
            rows[rule]["aji"].append(metrics.aggregated_jaccard_index(instances, truth))
            rows[rule]["objects"] += int(instances.max())
    return {
        rule: {"instance_f1": float(np.mean(r["f1"])), "aji": float(np.mean(r["aji"])),
               "objects": r["objects"], "true_objects": true_objects}
        for rule, r in rows.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, default=Path("benchmarks/results/defaults"))
    parser.add_argument("--datasets", nargs="+", default=["bbbc039", "glas", "dsb2018",
                                                          "usiigaci"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-test", type=int, default=None)
    args = parser.parse_args(argv)
    results = {}
    print(f"{'dataset':9s} {'rule':28s} {'F1@.5':>6s} {'AJI':>6s} {'objects':>14s}")
    for name in args.datasets:
        model_file = args.work_dir / name / f"seed{args.seed}" / "multitask" / "model.pt"
        if not model_file.is_file():
            print(f"{name}: no model at {model_file}, skipped")
            continue
        data = load(args.data_dir, name, 1, args.limit_test)
        model = LazyUNet.load(model_file)
        results[name] = score_dataset(model, data.test.images, data.test.full_instances)
        for rule, r in results[name].items():
            print(f"{name:9s} {rule:28s} {r['instance_f1']:6.3f} {r['aji']:6.3f} "
                  f"{r['objects']:6d}/{r['true_objects']:<6d}")
    out = args.work_dir / f"instance_rule_seed{args.seed}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
