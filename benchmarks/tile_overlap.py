"""Tile overlap at prediction: accuracy and speed of each setting, on every dataset.

Predicts the test images of each dataset with a trained model (the
defaults run's multi-task models) at each ``--overlaps`` value, interleaved
per image so that the timings share the machine's state, and prints pooled
instance F1 (GlaS: also object F1), the seconds spent in prediction and the
ratio to the first overlap's time.

Example (2-core CPU, about ten minutes)::

    python benchmarks/tile_overlap.py --data-dir ../shared/data \\
        --models benchmarks/results/defaults-v3 --overlaps 0.25 0.125 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from defaults import DATASETS, load
from napari_lazyunet.api import LazyUNet
from napari_lazyunet.evaluation import metrics


def run_dataset(name: str, args) -> dict:
    data = load(args.data_dir, name, 1, args.limit_test)
    model = LazyUNet.load(args.models / name / "seed0" / "multitask" / "model.pt")
    counts = {o: np.zeros(3, np.int64) for o in args.overlaps}
    object_f1 = {o: [] for o in args.overlaps}
    seconds = dict.fromkeys(args.overlaps, 0.0)
    for image, truth in zip(data.test.images, data.test.full_instances, strict=True):
        for overlap in args.overlaps:
            start = time.perf_counter()
            pred = model.predict(image, overlap=overlap, device="cpu").instances
            seconds[overlap] += time.perf_counter() - start
            f1 = metrics.instance_f1(pred, truth, 0.5)
            counts[overlap] += [f1["tp"], f1["fp"], f1["fn"]]
            if name == "glas":
                object_f1[overlap].append(metrics.object_f1(pred, truth)["f1"])
    first = args.overlaps[0]
    rows = {}
    for overlap in args.overlaps:
        tp, fp, fn = counts[overlap]
        rows[str(overlap)] = {
            "instance_f1_pooled": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
            "object_f1_mean": round(float(np.mean(object_f1[overlap])), 4)
            if name == "glas"
            else None,
            "seconds": round(seconds[overlap], 1),
            "time_ratio": round(seconds[overlap] / seconds[first], 3),
        }
    return {"dataset": name, "n_test_images": len(data.test.images), "overlaps": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True, help="work dir of a defaults run")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--overlaps", nargs="+", type=float, default=[0.25, 0.125])
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for name in args.datasets:
        result = run_dataset(name, args)
        results.append(result)
        print(json.dumps(result), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"threads": args.threads, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
