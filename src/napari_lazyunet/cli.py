"""Command line: ``lazyunet train | predict | refine | evaluate | demo``.

Every command is a thin layer over :mod:`napari_lazyunet.api` and the
project folder format (``docs/project-format.md``). Expected mistakes (bad
labels, missing files, incompatible models) end with a one-line message and
exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__
from .core.labels import OUTPUTS


def _progress_bar(total: int, desc: str, disable: bool):
    return tqdm(total=total, desc=desc, unit="step", disable=disable, dynamic_ncols=True)


# ---------------------------------------------------------------------------- train
def _file_signature(path: str) -> tuple[int, ...] | None:
    """What changes when a file is replaced (inode, times, size); None when it is missing."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size


def _interrupted_message(steps_done: int, out: str, before: tuple[int, ...] | None) -> str:
    """What Ctrl-C left: the model file only when this run wrote it."""
    from .core.checkpoint import CheckpointError, load_checkpoint

    if _file_signature(out) in (None, before):
        unchanged = f" ({out} is as it was)" if before is not None else ""
        return f"stopped at step {steps_done}; no model was written{unchanged}"
    try:
        saved = load_checkpoint(out).step
    except CheckpointError:
        return f"stopped at step {steps_done}; no model was written ({out} is not readable)"
    as_of = "" if saved == steps_done else f" (as of step {saved})"
    return f"stopped at step {steps_done}; the model so far is in {out}{as_of}"


def cmd_train(args: argparse.Namespace) -> int:
    from .api import LazyUNet, split_validation
    from .config import LazyUNetConfig, describe_thresholds
    from .core.checkpoint import check_writable
    from .core.project import load_project
    from .core.train import TrainingDiverged

    check_writable(args.out)  # before reading the project, not after training
    project = load_project(args.project)
    config = (
        LazyUNetConfig.from_json(Path(args.config).read_text()) if args.config else LazyUNetConfig()
    )
    model_options = {
        "class_names": project.class_names,
        "in_channels": project.in_channels,
        "multitask": not args.single_task,
    }
    for key in ("base_channels", "depth"):
        if getattr(args, key) is not None:
            model_options[key] = getattr(args, key)
    train_options = {
        key: getattr(args, key)
        for key in (
            "steps",
            "batch_size",
            "patch_size",
            "learning_rate",
            "lr_schedule",
            "device",
            "seed",
            "time_budget",
            "checkpoint_interval",
        )
        if getattr(args, key) is not None
    }
    if args.threads is not None:
        train_options["num_threads"] = args.threads
    for key in ("segmentation_from_inner", "segmentation_far_background"):
        if getattr(args, key) is not None:  # None: the engine's default
            train_options[key] = getattr(args, key)
    predict_options = {} if args.input_scale is None else {"input_scale": args.input_scale}
    config = config.replace(model=model_options, train=train_options, predict=predict_options)
    if args.init:
        ignored = [
            flag
            for flag, value in (
                ("--config", args.config),
                ("--single-task", args.single_task),
                ("--base-channels", args.base_channels),
                ("--depth", args.depth),
            )
            if value
        ]
        if ignored:
            raise ValueError(
                f"{', '.join(ignored)} cannot change a model given with --init (its network is "
                "fixed); drop them, or train a new model without --init"
            )
        model = LazyUNet.load(args.init)
        model.check_compatible(project.class_names, project.in_channels)
        if args.steps is None:
            train_options["steps"] = None  # fine-tuning fits its steps to the time budget
        model.config = model.config.replace(train=train_options, predict=predict_options)
    else:
        model = LazyUNet(config)
    labelled = project.labelled
    if not labelled:
        raise ValueError(f"no image in {args.project} has any label; paint some first")
    train_pos, val_pos = split_validation(
        [project.labels[i].has_segmentation for i in labelled],
        args.val_fraction,
        config.train.seed,
    )
    train_idx = [labelled[k] for k in train_pos]
    val_idx = [labelled[k] for k in val_pos]
    validation = None
    if val_idx:
        validation = ([project.images[i] for i in val_idx], [project.labels[i] for i in val_idx])
    train_images = [project.images[i] for i in train_idx]
    train_labels = [project.labels[i] for i in train_idx]
    train_names = [project.names[i] for i in train_idx]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        choices = model.configure(train_images, train_labels, train_names)
    _print_warnings(caught)
    if model.fingerprint is not None:
        print("data:")
        for line in model.fingerprint.describe():
            print(f"  {line}")
    if choices:
        print("settings chosen from the data (override with the options of `lazyunet train`):")
        for choice in choices:
            print(f"  {choice}")
    steps = model.config.train.steps
    print(
        f"training {model!r} on {len(train_idx)} image(s)"
        + (f", validating on {len(val_idx)}" if val_idx else "")
        + (
            f" for {steps} steps"
            if steps
            else f" for {model.config.train.time_budget:g} min (steps fitted to the time)"
        )
        + f" -> {args.out}"
    )
    bar = _progress_bar(steps, "train", args.quiet)

    def on_step(event):
        if bar.total != event.total_steps:
            bar.total = event.total_steps
        bar.update(1)
        postfix = {"loss": f"{event.loss:.3f}"}
        if event.validation:
            postfix.update({k: f"{v:.3f}" for k, v in event.validation.items()})
        bar.set_postfix(postfix, refresh=False)

    before = _file_signature(args.out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(
                train_images,
                labels=train_labels,
                names=train_names,
                validation=validation,
                checkpoint=args.out,
                callback=on_step,
            )
        except KeyboardInterrupt:
            bar.close()
            _print_warnings(caught)
            print(_interrupted_message(model.steps_done, args.out, before))
            return 130
        except TrainingDiverged as error:
            bar.close()
            _print_warnings(caught)
            print(f"lazyunet train: error: {_one_line(error)}", file=sys.stderr)
            return 2
    bar.close()
    _print_warnings(caught)
    thresholds = describe_thresholds(model.config)
    print(f"saved {args.out} ({model.steps_done} steps{', ' + thresholds if thresholds else ''})")
    return 0


def _print_warnings(caught: list) -> None:
    """Each distinct warning as one line on stderr, without Python's file and line prefix."""
    seen = set()
    for warning in caught:
        text = str(warning.message)
        if text not in seen:
            seen.add(text)
            print(f"warning: {text}", file=sys.stderr)


# -------------------------------------------------------------------------- predict


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _predict_file(model, path: Path, options: dict, quiet: bool):
    from .core.files import read_image

    image = read_image(path)
    result = None
    bar = tqdm(total=100, desc=path.name, unit="%", leave=False, disable=quiet)
    try:
        for event in model.iter_predict(image, **options):
            bar.n = int(100 * event.fraction)
            bar.refresh()
            result = event.result
    finally:
        bar.close()
    return result


def cmd_predict(args: argparse.Namespace) -> int:
    import dataclasses

    from .api import LazyUNet
    from .core.files import ProjectError, list_images
    from .core.prediction_folder import PredictionFolder, output_names

    failures: list[str] = []
    files: list[Path] = []
    done = 0
    try:
        model = LazyUNet.load(args.model)
        files = list_images(args.input)
        if not files:
            raise ValueError(f"{args.input} holds no image to predict")
        names, notes = output_names(files)
        options = {
            key: getattr(args, key)
            for key in (
                "tile_size",
                "overlap",
                "device",
                "batch_size",
                "min_instance_size",
                "separation_threshold",
                "segmentation_threshold",
                "input_scale",
            )
            if getattr(args, key) is not None
        }
        settings = model.config.replace(predict=options).predict  # bad options fail here
        out = PredictionFolder(
            args.out,
            run={
                "written_by": f"lazyunet predict {__version__}",
                "model": str(Path(args.model).resolve()),
                "input": str(Path(args.input).resolve()),
                "settings": {
                    **dataclasses.asdict(settings),
                    "probabilities": bool(args.probabilities),
                },
            },
        )
        for note in notes:
            print(note)
        for path, name in tqdm(
            list(zip(files, names, strict=True)),
            desc="images",
            unit="image",
            disable=args.quiet or len(files) < 2,
        ):
            try:
                result = _predict_file(model, path, options, args.quiet)
            except ValueError as error:  # unreadable file, NaN, wrong channels...
                message = _one_line(error)
                if len(files) == 1:
                    raise ValueError(
                        message if str(path) in message else f"{path}: {message}"
                    ) from error
                tqdm.write(f"{path.name}: skipped: {message}", file=sys.stderr)
                failures.append(path.name)
                continue
            try:
                out.write_prediction(name, result, probabilities=args.probabilities)
            except OSError as error:
                raise ProjectError(
                    f"could not write the outputs of {path.name} to {out.folder} "
                    f"({_one_line(error)}); none of them was written"
                ) from error
            done += 1
            if not args.quiet:
                n = int(result.instances.max()) if result.instances.size else 0
                tqdm.write(f"{path.name}: {n} instances")
    except KeyboardInterrupt:
        print(
            f"lazyunet predict: stopped after {done} of {len(files)} image(s); "
            f"their outputs are complete in {args.out}",
            file=sys.stderr,
        )
        return 130
    print(f"wrote {done} prediction(s) to {out.folder}/{{{','.join(OUTPUTS)}}}")
    if failures:
        print(
            f"lazyunet predict: error: {len(failures)} of {len(files)} image(s) could not be "
            f"predicted: {', '.join(failures)}",
            file=sys.stderr,
        )
        return 2
    return 0


# --------------------------------------------------------------------------- refine
def cmd_refine(args: argparse.Namespace) -> int:
    from .api import refine
    from .core.labels import ImageLabels
    from .core.project import load_project, save_labels

    project = load_project(args.project)
    wanted = set(args.images) if args.images else None
    if wanted is not None:
        unknown = wanted - set(project.names)
        if unknown:
            raise ValueError(f"unknown image(s) {sorted(unknown)}; project has {project.names}")
    done = 0
    for name, image, labels in zip(project.names, project.images, project.labels, strict=True):
        if wanted is not None and name not in wanted:
            continue
        if not labels.has_detection:
            if wanted is not None:
                print(f"{name}: no inner regions painted, skipped")
            continue
        if wanted is None and labels.strong:
            continue  # by default, leave images that already have exact masks alone
        result = refine(
            image,
            labels.detection,
            iterations=args.iterations,
            margin=args.margin,
            background_value=len(project.class_names) + 1,
        )
        segmentation = result.classes.astype(np.uint8)
        if labels.segmentation is not None and not args.overwrite:
            painted = labels.segmentation > 0
            segmentation[painted] = labels.segmentation[painted]  # user pixels win
        strong = labels.strong or args.mark_strong
        save_labels(
            args.project,
            name,
            ImageLabels(
                labels.detection, labels.separation, segmentation, strong, labels.detection_complete
            ),
        )
        times = np.array(result.timings_per_object) * 1000
        median = f"{np.median(times):.0f}" if times.size else "-"
        print(
            f"{name}: {len(result.object_ids)} objects refined in {result.total_seconds:.2f} s "
            f"(median {median} ms/object){', marked strong' if strong else ''}"
        )
        done += 1
    print(f"refined {done} image(s) in {args.project}")
    return 0


# ------------------------------------------------------------------------- evaluate
def _files_by_stem(folder: Path, what: str) -> dict[str, Path]:
    from .core.files import list_images

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
    from .core.files import read_image

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
    import warnings

    from .core.files import read_image
    from .evaluation import metrics

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
            from .evaluation.simulate import interface_scribbles

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


# ----------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from .sample.demo import DemoSettings, format_scores, run_demo

    settings = DemoSettings() if args.steps is None else DemoSettings(steps=args.steps)
    bars: dict[str, tqdm] = {}

    def progress(stage: str, step: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="step", disable=args.quiet)
        bars[stage].update(step - bars[stage].n)
        if step == total:
            bars[stage].close()

    multi, single = run_demo(args.out, settings, report=print, progress=progress)
    print()
    print("held-out images, mean over images (interface P/R: pooled over pixels):")
    print(format_scores([multi, single]))
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lazyunet",
        description="Instance segmentation of dense, touching objects from lazy labels.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on a project folder")
    p.add_argument("project", help="project folder (see docs/project-format.md)")
    p.add_argument("--out", "-o", required=True, help="model file to write (kept up to date)")
    p.add_argument("--config", help="JSON config file (LazyUNetConfig.to_json format)")
    p.add_argument("--init", help="start from this model file (fine-tuning)")
    p.add_argument(
        "--steps", type=int, help="optimiser steps (default: as many as fit in --time-budget)"
    )
    p.add_argument(
        "--time-budget",
        type=float,
        metavar="MINUTES",
        help="wall-clock minutes for training, preparation and calibration included "
        "(default: 15 on a CPU, 60 on a GPU)",
    )
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: every core this process may use)"
    )
    p.add_argument(
        "--checkpoint-interval",
        type=float,
        metavar="MINUTES",
        help="write the model file at least this often during training, and after "
        "every validation, so a killed run loses at most this much (default 5; "
        "0: only at the end and when stopped)",
    )
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        help="constant rate (default) or warm-up then cosine decay to 1%%",
    )
    p.add_argument("--base-channels", type=int, help="network width (paper: 64)")
    p.add_argument("--depth", type=int, help="poolings in the encoder (paper: 4)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--input-scale",
        type=float,
        help="train on the images resized by this factor (e.g. 0.5 for images "
        "with twice the detail the objects need); the model keeps it and "
        "predict resizes new images the same way",
    )
    p.add_argument(
        "--segmentation-from-inner",
        action=argparse.BooleanOptionalAction,
        help="on images without an exact mask, the inner regions also count as "
        "object pixels for segmentation (default: on; with "
        "--no-segmentation-far-background too, the paper's loss)",
    )
    p.add_argument(
        "--segmentation-far-background",
        action=argparse.BooleanOptionalAction,
        help="on images without an exact mask whose every object is painted, "
        "pixels farther from the inner regions than the strong images' "
        "objects reach count as background for segmentation (default: on)",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.0,
        help="share of labelled images held out for validation",
    )
    p.add_argument(
        "--single-task",
        action="store_true",
        help="train the plain U-Net baseline on the strong masks instead",
    )
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="predict an image file or a folder of images")
    p.add_argument("model", help="model file")
    p.add_argument("input", help="image file or folder")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--tile-size", type=int)
    p.add_argument("--overlap", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device")
    p.add_argument(
        "--min-instance-size",
        type=int,
        help="drop instances smaller than this many pixels (default: the model's)",
    )
    p.add_argument(
        "--separation-threshold",
        type=float,
        help="interface probability that separates touching objects (default: the "
        "one calibrated when the model was trained); lower it if touching "
        "objects stay merged",
    )
    p.add_argument(
        "--segmentation-threshold",
        type=float,
        help="object probability above which a pixel is segmented (default: the "
        "one calibrated when the model was trained, else the most probable "
        "class); lower it if objects come out too small",
    )
    p.add_argument(
        "--input-scale",
        type=float,
        help="resize every image by this factor before the network and the outputs "
        "back to the image's size (default: the model's, 1 unless it was "
        "trained on resized images; e.g. 0.5 for images twice the training "
        "resolution)",
    )
    p.add_argument("--probabilities", action="store_true", help="also write probability maps")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("refine", help="grow inner regions into exact masks with GrabCut")
    p.add_argument("project", help="project folder")
    p.add_argument(
        "--images",
        nargs="+",
        help="images to refine (default: every non-strong image with inner regions)",
    )
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--margin", type=int, default=20)
    p.add_argument(
        "--mark-strong", action="store_true", help="mark the refined images strong (exact masks)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing segmentation pixels too (default: keep them)",
    )
    p.set_defaults(func=cmd_refine)

    p = sub.add_parser("evaluate", help="score predictions against ground-truth instances")
    p.add_argument("predictions", help="output folder of `lazyunet predict`")
    p.add_argument("--truth", required=True, help="folder of ground-truth instance images")
    p.add_argument("--truth-classes", help="folder of ground-truth class masks (optional)")
    p.add_argument("--json", help="write all scores to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="train both networks on the built-in sample and compare")
    p.add_argument("--out", "-o", default="lazyunet-demo", help="output folder")
    p.add_argument("--steps", type=int, help="training steps per model")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lazyunet`` command."""
    from .config import ConfigError
    from .core.checkpoint import CheckpointError
    from .core.files import ProjectError
    from .core.labels import LabelError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        LabelError,
        ProjectError,
        CheckpointError,
        ConfigError,
        FileNotFoundError,
        ValueError,
    ) as error:
        print(f"lazyunet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
