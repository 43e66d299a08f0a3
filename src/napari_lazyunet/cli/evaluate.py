"""`lazyunet evaluate`: predictions scored against ground-truth instances."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np


def _files_by_stem(folder: Path, what: str) -> dict[str, Path]:
    from ..core.files import list_images

    if not folder.is_dir():
        raise ValueError(f"{folder} does not exist or is not a folder; give the {what}")
    found: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in found:
            raise ValueError(
                f"{folder} has two files for {path.stem!r}: "
                f"{found[path.stem].name} and {path.name}; keep only one of them"
            )
        found[path.stem] = path
    return found


def _read_matching(path: Path, shape: tuple[int, ...], reference: Path) -> np.ndarray:
    from ..core.files import read_image

    array = read_image(path)
    if array.shape != shape:
        raise ValueError(
            f"{path} has shape {array.shape} but {reference} has {shape}; "
            "predictions and truth must cover the same pixels"
        )
    return array


def _interface_rates(counts: dict) -> tuple[float, float]:
    """Interface precision and recall, NaN (undefined) where there is no interface to count."""
    precision = counts["pred_correct"] / counts["n_pred"] if counts["n_pred"] else float("nan")
    recall = counts["truth_found"] / counts["n_truth"] if counts["n_truth"] else float("nan")
    return float(precision), float(recall)


def _score(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.4f}"


def cmd_evaluate(args: argparse.Namespace) -> int:

    from ..core.files import read_image
    from ..evaluation import metrics

    predictions = Path(args.predictions)
    if not predictions.is_dir():
        raise ValueError(
            f"{predictions} does not exist; give the output folder of `lazyunet predict`"
        )
    truth_files = _files_by_stem(Path(args.truth), "folder of ground-truth instance images")
    pred_files = _files_by_stem(
        predictions / "instances", "output folder of `lazyunet predict` (with instances/)"
    )
    common = sorted(set(truth_files) & set(pred_files))
    if not common:
        raise ValueError(
            f"no image name is both in {args.truth} and in {args.predictions}/instances; "
            "run `lazyunet predict` on the same images first"
        )
    seg_files = sep_files = class_files = {}
    if args.truth_classes:
        class_files = _files_by_stem(Path(args.truth_classes), "folder of ground-truth class masks")
        seg_files = _files_by_stem(
            predictions / "segmentation", "output folder of `lazyunet predict` (with segmentation/)"
        )
    if (predictions / "separation").is_dir():
        sep_files = _files_by_stem(predictions / "separation", "separation outputs")
    rows, interface_counts = [], []
    for name in common:
        truth_file = truth_files[name]
        truth = read_image(truth_file).astype(np.int64)
        pred = _read_matching(pred_files[name], truth.shape, truth_file).astype(np.int64)
        row = {
            "image": name,
            "dice": metrics.dice(pred > 0, truth > 0),
            **{
                f"instance_{k}": v
                for k, v in metrics.instance_f1(pred, truth).items()
                if k in ("f1", "precision", "recall")
            },
            "aji": metrics.aggregated_jaccard_index(pred, truth),
            **{f"object_{k}": v for k, v in metrics.object_f1(pred, truth).items() if k == "f1"},
            "object_dice": metrics.object_dice(pred, truth),
            "object_hausdorff": metrics.object_hausdorff(pred, truth),
        }
        if args.truth_classes:
            for missing, folder in (
                (class_files, args.truth_classes),
                (seg_files, predictions / "segmentation"),
            ):
                if name not in missing:
                    raise ValueError(
                        f"{folder} has no file for {name!r} "
                        f"(expected e.g. {Path(folder) / (name + '.tif')})"
                    )
            classes_truth = _read_matching(class_files[name], truth.shape, truth_file)
            seg = _read_matching(seg_files[name], truth.shape, truth_file)
            n = int(max(classes_truth.max(), seg.max(), 1))
            for k, v in metrics.dice_per_class(seg, classes_truth, n).items():
                row[f"dice_class_{k}"] = v
        if name in sep_files:
            from ..evaluation.simulate import interface_scribbles

            separation = _read_matching(sep_files[name], truth.shape, truth_file)
            truth_interface = interface_scribbles(truth.astype(np.int32), distance=2)
            counts = metrics.interface_precision_recall(separation > 0, truth_interface)
            row["interface_precision"], row["interface_recall"] = _interface_rates(counts)
            interface_counts.append(counts)
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "image"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of only undefined scores
        summary = {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in keys}
    if interface_counts:
        # Pixels pooled over all images: an image where nothing is predicted
        # would otherwise count as a perfect precision.
        pooled = metrics.pool_interface_scores(interface_counts)
        summary["interface_precision"], summary["interface_recall"] = _interface_rates(pooled)
    print(f"{len(rows)} image(s)")
    for key, value in summary.items():
        print(f"  {key:22s} {_score(value)}")
    if args.json:
        # Undefined scores are written as NaN (which Python's json reads back).
        Path(args.json).write_text(json.dumps({"summary": summary, "images": rows}, indent=2))
        print(f"wrote {args.json}")
    return 0
