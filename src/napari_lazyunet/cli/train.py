"""`lazyunet train`: a model from a project folder, settings chosen from the labels."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from ._common import _one_line, _print_warnings, _progress_bar


def _file_signature(path: str) -> tuple[int, ...] | None:
    """What changes when a file is replaced (inode, times, size); None when it is missing."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size


def _interrupted_message(steps_done: int, out: str, before: tuple[int, ...] | None) -> str:
    """What Ctrl-C left: the model file only when this run wrote it."""
    from ..core.checkpoint import CheckpointError, load_checkpoint

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
    from ..api import CalibrationEvent, LazyUNet, split_validation
    from ..config import LazyUNetConfig, describe_thresholds
    from ..core.checkpoint import check_writable
    from ..core.project import load_project
    from ..core.train import TrainingDiverged

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
        if isinstance(event, CalibrationEvent):
            bar.set_postfix_str(
                f"calibrating: {event.stage} ({event.done + 1}/{event.total})", refresh=True
            )
            return
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
            generator = model.iter_fit(
                train_images,
                labels=train_labels,
                names=train_names,
                validation=validation,
                checkpoint=args.out,
            )
            try:
                for event in generator:
                    on_step(event)
            finally:
                generator.close()
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
