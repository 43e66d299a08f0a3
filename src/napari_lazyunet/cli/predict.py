"""`lazyunet predict`: a model run on an image or a folder, outputs in a prediction folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..core.labels import OUTPUTS
from ._common import _one_line


def cmd_predict(args: argparse.Namespace) -> int:
    import dataclasses

    from ..api import LazyUNet
    from ..batch import FolderItem, iter_predict_folder
    from ..core.files import list_images
    from ..core.lazy_images import digest_tree
    from ..core.prediction_folder import PredictionFolder, output_names

    failures: list[str] = []
    files: list[Path] = []
    done = skipped = 0
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
                "block_size",
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
                "model_sha256": digest_tree(args.model),
                "input": str(Path(args.input).resolve()),
                "settings": {
                    **dataclasses.asdict(settings),
                    "probabilities": bool(args.probabilities),
                },
            },
        )
        for note in notes:
            print(note)
        images = tqdm(
            total=len(files), desc="images", unit="image", disable=args.quiet or len(files) < 2
        )
        bar = tqdm(total=100, unit="%", leave=False, disable=args.quiet)
        events = iter_predict_folder(
            model,
            files,
            names,
            out,
            scheduler=args.scheduler,
            probabilities=args.probabilities,
            resume=not args.overwrite,
            **options,
        )
        try:
            for item in events:
                if not isinstance(item, FolderItem):
                    bar.n = int(100 * item.fraction)
                    bar.refresh()
                    continue
                images.update()
                bar.n = 0
                if item.error is not None:
                    message = _one_line(item.error)
                    if len(files) == 1:
                        raise ValueError(
                            message if str(item.path) in message else f"{item.path}: {message}"
                        )
                    tqdm.write(f"{item.path.name}: skipped: {message}", file=sys.stderr)
                    failures.append(item.path.name)
                elif item.skipped:
                    skipped += 1
                else:
                    done += 1
                    if not args.quiet:
                        tqdm.write(_summary(item))
        finally:
            events.close()
            bar.close()
            images.close()
    except KeyboardInterrupt:
        print(
            f"lazyunet predict: stopped after {done} of {len(files)} image(s); "
            f"their outputs are complete in {args.out}; run the same command again to "
            "predict the rest",
            file=sys.stderr,
        )
        return 130
    already = f" ({skipped} already there from an earlier run, skipped)" if skipped else ""
    print(f"wrote {done} prediction(s) to {out.folder}/{{{','.join(OUTPUTS)}}}{already}")
    if failures:
        print(
            f"lazyunet predict: error: {len(failures)} of {len(files)} image(s) could not be "
            f"predicted: {', '.join(failures)}",
            file=sys.stderr,
        )
        return 2
    return 0


def _summary(item) -> str:
    result = item.result
    seams = (
        f" ({result.seam_splits} pixel pairs along block borders left cut)"
        if result.seam_splits
        else ""
    )
    return f"{item.path.name}: {result.n_instances} instances{seams}"
