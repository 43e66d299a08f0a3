"""Command line: ``lazyunet train | predict | refine | evaluate | demo``.

Every command is a thin layer over :mod:`napari_lazyunet.api` and the
project folder format (``docs/project-format.md``), in a module of its own
(``train``, ``predict``, ``refine``, ``evaluate``); this one holds the
parser, the demo and ``main``. Expected mistakes (bad
labels, missing files, incompatible models) end with a one-line message and
exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tqdm import tqdm

from .. import __version__
from .evaluate import cmd_evaluate
from .predict import cmd_predict
from .refine import cmd_refine
from .train import cmd_train


# ----------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from ..sample.demo import DemoSettings, format_scores, run_demo

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
    p.add_argument(
        "--block-size",
        type=int,
        help="pixels per side of the blocks a large image is predicted in (default 4096); "
        "smaller blocks use less memory",
    )
    p.add_argument(
        "--scheduler",
        help="run on dask: 'processes' (a local cluster, one worker per core) or a "
        "scheduler address such as tcp://host:8786 (workers must see the input files); "
        "default: one image after another in this process",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="predict again the images this model and these settings already wrote to "
        "--out (by default they are skipped, so a stopped run resumes)",
    )
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
    from ..config import ConfigError
    from ..core.checkpoint import CheckpointError
    from ..core.files import ProjectError
    from ..core.labels import LabelError

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
