"""`lazyunet refine`: exact masks grown from the inner regions with GrabCut."""

from __future__ import annotations

import argparse

import numpy as np


def cmd_refine(args: argparse.Namespace) -> int:
    from ..api import refine
    from ..core.labels import ImageLabels
    from ..core.project import load_project, save_labels

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
