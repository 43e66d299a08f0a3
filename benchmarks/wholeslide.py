"""A whole-slide-sized image predicted by ``lazyunet predict``: wall time and peak memory.

Builds a mosaic of a dataset's images (BBBC039 by default: gray uint16
nuclei, the model's input scale 1, so every pixel goes through the network)
as a tiled TIFF and as an OME-Zarr, of ``--size`` x ``--size`` pixels,
written tile by tile so that building it needs little memory. Then runs
``lazyunet predict MODEL IMAGE -o OUT`` on each under ``/usr/bin/time -v``
and prints the wall time, the peak resident memory, the instances found and
the pixel pairs left cut along block borders.

Example (2-core CPU; about half an hour per input at 20000 x 20000)::

    python benchmarks/wholeslide.py --data-dir ../shared/data/bbbc039 \\
        --model benchmarks/results/defaults-v3/bbbc039/seed0/multitask/model.pt \\
        --size 20000 --threads 2 --work-dir /tmp/wholeslide --out benchmarks/results/wholeslide.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TILE = 512


def _mosaic_tiles(images: list[np.ndarray], size: int):
    """Tiles of a ``size`` x ``size`` mosaic of ``images`` (repeated, flipped), row by row."""
    height, width = images[0].shape[:2]
    for ty in range(0, size, TILE):
        for tx in range(0, size, TILE):
            tile = np.zeros((TILE, TILE), images[0].dtype)
            for gy in range(ty // height, (min(ty + TILE, size) - 1) // height + 1):
                for gx in range(tx // width, (min(tx + TILE, size) - 1) // width + 1):
                    source = images[(gy * 7 + gx) % len(images)]
                    if (gy + gx) % 2:
                        source = source[:, ::-1]
                    y0, x0 = max(ty, gy * height), max(tx, gx * width)
                    y1 = min(ty + TILE, (gy + 1) * height, size)
                    x1 = min(tx + TILE, (gx + 1) * width, size)
                    tile[y0 - ty : y1 - ty, x0 - tx : x1 - tx] = source[
                        y0 - gy * height : y1 - gy * height, x0 - gx * width : x1 - gx * width
                    ]
            yield tile


def build_inputs(data_dir: Path, size: int, work: Path) -> tuple[Path, Path]:
    """The mosaic as a tiled TIFF and as an OME-Zarr (both made once, then reused)."""
    import tifffile
    import zarr

    from napari_lazyunet.core.files import read_image

    tiff, store = work / f"mosaic-{size}.tif", work / f"mosaic-{size}.ome.zarr"
    if tiff.is_file() and store.is_dir():
        return tiff, store
    files = sorted((data_dir / "images").iterdir())[:20]
    images = [read_image(path) for path in files]
    shape = images[0].shape[:2]
    images = [image for image in images if image.shape[:2] == shape and image.ndim == 2]
    work.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        tiff,
        _mosaic_tiles(images, size),
        shape=(size, size),
        dtype=images[0].dtype,
        tile=(TILE, TILE),
        compression="zlib",
    )
    group = zarr.open_group(str(store), mode="w", zarr_format=2)
    array = group.create_array("0", shape=(size, size), chunks=(1024, 1024), dtype=images[0].dtype)
    source = tifffile.imread(tiff, aszarr=True)
    try:
        tiff_array = zarr.open(source, mode="r")
        for y in range(0, size, 1024):
            array[y : y + 1024] = tiff_array[y : y + 1024]
    finally:
        source.close()
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    return tiff, store


def run_predict(model: Path, image: Path, out: Path, threads: int, extra: list[str]) -> dict:
    """``lazyunet predict`` under ``/usr/bin/time -v``: seconds, peak RSS, its last lines."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [
        "/usr/bin/time",
        "-v",
        str(Path(sys.executable).parent / "lazyunet"),
        "predict",
        str(model),
        str(image),
        "-o",
        str(out),
        "--device",
        "cpu",
        "-q",
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    peak_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"lazyunet predict failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {
        "input": image.name,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(int(peak_kb.group(1)) / 1024) if peak_kb else None,
        "stdout": done.stdout.strip().splitlines()[-2:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a dataset folder (images/)")
    parser.add_argument("--model", type=Path, required=True, help="a model file of that dataset")
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/lazyunet-wholeslide"))
    parser.add_argument("--inputs", nargs="+", default=["tiff", "zarr"], choices=["tiff", "zarr"])
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument(
        "--predict-options",
        nargs=argparse.REMAINDER,
        default=[],
        help="passed on to lazyunet predict (last), e.g. --overlap 0.125",
    )
    args = parser.parse_args(argv)

    tiff, store = build_inputs(args.data_dir, args.size, args.work_dir)
    results = {"size": args.size, "threads": args.threads, "model": str(args.model), "runs": []}
    if args.out and args.out.is_file():  # earlier runs' figures are kept, new ones appended
        results["runs"] = json.loads(args.out.read_text()).get("runs", [])
    for kind in args.inputs:
        image = tiff if kind == "tiff" else store
        out = args.work_dir / f"out-{kind}"
        figures = run_predict(args.model, image, out, args.threads, args.predict_options)
        figures["options"] = args.predict_options
        figures["megapixels_per_s"] = round(args.size**2 / 1e6 / figures["seconds"], 3)
        results["runs"].append(figures)
        print(json.dumps(figures), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
