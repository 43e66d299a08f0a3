"""`lazyunet predict`: a model run on an image or a folder, outputs in a prediction folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..core.labels import OUTPUTS
from ._common import _one_line


def _predict_file(model, path: Path, out, name: str, options: dict, args) -> object:
    from ..batch import iter_predict_file

    result = None
    bar = tqdm(total=100, desc=path.name, unit="%", leave=False, disable=args.quiet)
    try:
        for event in iter_predict_file(
            model, path, out, name, probabilities=args.probabilities, **options
        ):
            bar.n = int(100 * event.fraction)
            bar.refresh()
            result = event.result
    finally:
        bar.close()
    return result


def cmd_predict(args: argparse.Namespace) -> int:
    import dataclasses

    from ..api import LazyUNet
    from ..core.files import ProjectError, list_images
    from ..core.prediction_folder import PredictionFolder, output_names

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
                result = _predict_file(model, path, out, name, options, args)
            except OSError as error:
                raise ProjectError(
                    f"could not write the outputs of {path.name} to {out.folder} "
                    f"({_one_line(error)}); none of them was written"
                ) from error
            except ValueError as error:  # unreadable file, NaN, wrong channels...
                message = _one_line(error)
                if len(files) == 1:
                    raise ValueError(
                        message if str(path) in message else f"{path}: {message}"
                    ) from error
                tqdm.write(f"{path.name}: skipped: {message}", file=sys.stderr)
                failures.append(path.name)
                continue
            done += 1
            if not args.quiet:
                seams = (
                    f" ({result.seam_splits} pixel pairs along block borders left cut)"
                    if result.seam_splits
                    else ""
                )
                tqdm.write(f"{path.name}: {result.n_instances} instances{seams}")
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
