"""How long does the viewer freeze while the Train widget trains?

Opens a real napari viewer with the synthetic foam sample (lazy labels
linked to each image, two images strong), starts training in the Train
widget's thread worker and, on the main thread, runs a 10 ms Qt timer that
records the gap between consecutive ticks. A gap much longer than 10 ms is
a stall of the event loop: the viewer could not repaint or react to the
mouse for that long. Prints the longest gap and the 99th percentile.

Run (under a virtual display on a headless machine)::

    xvfb-run -a .venv/bin/python benchmarks/gui_responsiveness.py --seconds 30

The target is a longest stall below 100 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="training time measured")
    parser.add_argument("--images", type=int, default=6, help="sample images")
    parser.add_argument("--size", type=int, default=192, help="image side")
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--patch-size", type=int, default=96)
    parser.add_argument(
        "--validate-every", type=int, default=10, help="validation (tiled prediction) every N steps"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: the widget's default, all cores but one)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--baseline",
        type=float,
        default=10.0,
        help="seconds measured with the viewer idle first (the machine's floor)",
    )
    parser.add_argument("--hide", action="store_true", help="do not show the window")
    args = parser.parse_args(argv)

    from qtpy.QtWidgets import QApplication

    import napari
    from napari_lazyunet._napari.labels_layers import link_label_layers
    from napari_lazyunet._napari.planes import set_strong
    from napari_lazyunet._napari.train_widget import TrainWidget
    from napari_lazyunet._napari.workers import StallMeter
    from napari_lazyunet.sample.synthetic import make_foam_sample

    viewer = napari.Viewer(show=not args.hide)
    sample = make_foam_sample(n_images=args.images, shape=(args.size, args.size), seed=0)
    for k in range(len(sample)):
        image = viewer.add_image(sample.images[k], name=f"foam {k}")
        layers = link_label_layers(viewer, image, sample.class_names)
        layers["detection"].data = sample.detection[k]
        layers["separation"].data = sample.separation[k]
        if k < 2:
            layers["segmentation"].data = sample.classes[k]
            set_strong(image, 0, True)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train", area="right")
    widget.base_spin.setValue(args.base_channels)
    widget.depth_spin.setValue(args.depth)
    widget.batch_spin.setValue(args.batch_size)
    widget.patch_spin.setValue(args.patch_size)
    widget.validate_spin.setValue(args.validate_every)
    widget.steps_spin.setValue(1_000_000)
    widget.device_combo.setCurrentIndex(widget.device_combo.findData(args.device))
    if args.threads:
        widget.threads_spin.setValue(args.threads)
    app = QApplication.instance()
    for _ in range(20):  # let the window settle before measuring
        app.processEvents()
        time.sleep(0.01)

    meter = StallMeter(10)

    def run_loop(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)

    if args.baseline > 0:
        meter.start()
        run_loop(args.baseline)
        meter.stop()
        print(
            f"idle viewer, {args.baseline:.0f} s: max stall {meter.max_gap_ms:.1f} ms, "
            f"99th percentile {meter.percentile_ms(99):.1f} ms"
        )

    meter.start()
    started = time.perf_counter()
    if not widget.start():
        print("training did not start:", widget.status.text())
        return 1
    run_loop(args.seconds - (time.perf_counter() - started))
    widget.stop()
    widget.wait(60)
    meter.stop()

    gaps = np.asarray(meter.gaps_ms)
    steps = widget.model.steps_done if widget.model is not None else 0
    print(f"cpu cores: {os.cpu_count()}, torch threads for training: {widget.threads_spin.value()}")
    print(
        f"trained {steps} steps in {args.seconds:.0f} s, plot redraws: {widget.plot.redraws} "
        f"({widget.plot.full_redraws} full)"
    )
    print(f"event-loop ticks: {gaps.size}, interval 10 ms")
    print(
        f"training: max stall: {meter.max_gap_ms:.1f} ms, "
        f"99th percentile: {meter.percentile_ms(99):.1f} ms, "
        f"median: {meter.percentile_ms(50):.1f} ms"
    )
    print(f"gaps over 100 ms: {int((gaps > 100).sum())}, over 50 ms: {int((gaps > 50).sum())}")
    viewer.close()
    return 0 if meter.max_gap_ms < 100 else 2


if __name__ == "__main__":
    sys.exit(main())
