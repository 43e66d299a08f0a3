"""Tables, compact summary and plot from the JSON files of ``benchmarks/paper.py``.

Example::

    python benchmarks/report.py --results benchmarks/results --dataset glas --config cpu \\
        --summary docs/benchmarks/paper-cpu-glas.json --plot docs/images/paper-cpu-glas.png \\
        --markdown /tmp/paper-cpu-glas.md

Partial runs (``--limit-test``, ``--limit-train``, ``--steps``, ``--set``) are left out.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

METHOD_NAMES = {
    "a": "(a) multi-task U-Net, weak + strong",
    "b": "(b) U-Net, detection weak labels",
    "c": "(c) U-Net, strong images only",
    "d": "(d) U-Net, GrabCut pseudo-labels",
    "e": "(e) U-Net, 100% strong",
    "f": "(f) multi-task U-Net, weak + GrabCut pseudo-strong",
}

#: Whose paired differences the report gives, and against which methods.
PAIRINGS = {"a": "bcde", "f": "ade"}


#: The ``k`` of the headline comparison (9.4 % of GlaS, 10 % of BBBC039; the paper's 9.4 %).
HEADLINE_K = {"glas": 8, "bbbc039": 10}


def load_runs(
    folder: Path,
    dataset: str,
    config: str,
    rescored: Path | None = None,
    include_partial: bool = False,
) -> list[dict]:
    """Full runs of ``folder``; a run rescored in ``rescored`` is taken from there.

    ``include_partial`` also takes exploratory runs (``--set``, ``--steps``,
    ...), for a folder that holds one such variant only.
    """
    runs = []
    for path in sorted(folder.glob(f"{dataset}-{config}-*.json")):
        if rescored is not None and (rescored / path.name).exists():
            path = rescored / path.name
        run = json.loads(path.read_text())
        if run.get("partial") and not include_partial:
            continue
        runs.append(run)
    return runs


def summary_runs(path: Path, present: list[dict]) -> list[dict]:
    """Runs of a compact summary (``--summary`` output) for what ``present`` lacks.

    Every (method, k) of the summary that the folder has no run of is taken
    from the summary, so that a folder holding new runs of one method at some
    ``k`` is compared with the runs of the published tables without their
    per-run files. A (method, k) of the folder is never mixed with its runs
    from the summary.
    """
    stored = json.loads(Path(path).read_text())
    have = {(r["method"], r["k"]) for r in present}
    n_train = max(r["n_train_images_used"] for r in stored["runs"])
    shared = {
        key: stored[key] for key in ("dataset", "test_split", "config_name", "harness", "machine")
    }
    return [
        {
            **shared,
            **run,
            "n_train": n_train,
            "from_summary": str(path),
            "source_commits": stored["git_commits"],
        }
        for run in stored["runs"]
        if (run["method"], run["k"]) not in have
    ]


def metric_columns(dataset: str) -> list[tuple[str, str, callable]]:
    columns = [("pixel Dice", "dice", lambda m: next(iter(m["pixel_dice"].values())))]
    if dataset == "glas":
        columns += [
            ("object F1", "object_f1", lambda m: m["object_f1"]["f1"]),
            ("object Dice", "object_dice", lambda m: m["object_dice"]),
            ("object Hausdorff", "object_hausdorff", lambda m: m["object_hausdorff"]),
        ]
    else:
        columns += [
            ("instance F1 @0.5", "instance_f1", lambda m: m["instance_f1_iou50"]["f1"]),
            ("AJI", "aji", lambda m: m["aji"]),
            ("touching recognised", "touching", lambda m: m.get("touching_recognised")),
            ("interface precision", "iface_p", lambda m: m.get("interface_precision")),
            ("interface recall", "iface_r", lambda m: m.get("interface_recall")),
        ]
    return columns


def _fmt(values: list[float], digits: int) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def group(runs: list[dict]) -> dict[tuple[str, int | None], list[dict]]:
    groups: dict[tuple[str, int | None], list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["method"], run["k"])].append(run)
    return groups


def _order(key: tuple[str, int | None]) -> tuple:
    method, k = key
    return (-1 if k is None else k, method)


def markdown(runs: list[dict], dataset: str) -> str:
    columns = metric_columns(dataset)
    groups = group(runs)
    n_train = runs[0]["n_train"]
    test = runs[0]["test_split"]
    lines = [
        f"Scores on {dataset} `{test}` (mean ± sample standard deviation over seeds; "
        "one value where one seed ran).",
        "",
        "| method | strong images k (fraction) | seeds | "
        + " | ".join(c[0] for c in columns)
        + " | train s / run |",
        "|---|---|---|" + "---|" * len(columns) + "---|",
    ]
    for key in sorted(groups, key=_order):
        method, k = key
        members = groups[key]
        seeds = ",".join(str(r["seed"]) for r in sorted(members, key=lambda r: r["seed"]))
        if method == "b":
            strong = "0 (weak only)"
        elif method == "e":
            strong = f"{n_train} (100%)"
        else:
            strong = f"{k} ({100 * k / n_train:.1f}%)"
        cells = []
        for _, name, get in columns:
            digits = 1 if name == "object_hausdorff" else 3
            cells.append(_fmt([get(r["metrics"]) for r in members], digits))
        train = np.mean([r["wall_seconds"]["train"] for r in members])
        lines.append(
            f"| {METHOD_NAMES[method]} | {strong} | {seeds} | "
            + " | ".join(cells)
            + f" | {train:.0f} |"
        )
    return "\n".join(lines) + "\n"


def paired_differences(runs: list[dict], dataset: str, k: int, subject: str = "a") -> str:
    """``subject`` minus each method it is compared with at ``k``, seed by seed.

    A seed's runs share the simulated labels and the strong set, so the
    difference per seed removes the part of the spread that comes from the
    draw of the data; "wins" counts the seeds where ``subject`` scores better.
    """
    columns = metric_columns(dataset)
    groups = group(runs)
    mine = {r["seed"]: r for r in groups.get((subject, k), [])}
    if not mine:
        return ""
    hausdorff = "; lower is better for Hausdorff" if dataset == "glas" else ""
    lines = [
        f"Paired differences at k = {k}: ({subject}) minus the other method, per seed "
        f"(mean ± sd; wins = seeds where ({subject}) is better{hausdorff}).",
        "",
        "| compared with | seeds | " + " | ".join(c[0] for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for method in PAIRINGS[subject]:
        theirs = {r["seed"]: r for r in groups.get((method, None if method in "be" else k), [])}
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            continue
        cells = []
        for _, name, get in columns:
            diffs = [
                get(mine[s]["metrics"]) - get(theirs[s]["metrics"])
                for s in seeds
                if get(mine[s]["metrics"]) is not None and get(theirs[s]["metrics"]) is not None
            ]
            if not diffs:
                cells.append("–")
                continue
            better = sum((d < 0) if name == "object_hausdorff" else (d > 0) for d in diffs)
            digits = 1 if name == "object_hausdorff" else 3
            spread = f" ± {np.std(diffs, ddof=1):.{digits}f}" if len(diffs) > 1 else ""
            cells.append(f"{np.mean(diffs):+.{digits}f}{spread} ({better}/{len(diffs)} wins)")
        lines.append(
            f"| {METHOD_NAMES[method]} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def summary(runs: list[dict]) -> dict:
    """Compact record of ``runs``: shared settings once, metrics per run.

    The harness settings given are those of the folder's own runs; a run
    whose recorded settings differ (e.g. one taken from an earlier summary
    with ``--baselines``) lists its differences under ``harness_changes``
    (settings a run predates are not recorded for it, so not listed).
    """
    first = next((r for r in runs if "from_summary" not in r), runs[0])
    harness = first["harness"]

    def changes(run: dict) -> dict:
        return {
            key: value
            for key, value in run["harness"].items()
            if key in harness and value != harness[key]
        }

    return {
        "dataset": first["dataset"],
        "test_split": first["test_split"],
        "config_name": first["config_name"],
        "harness": harness,
        "machine": first["machine"],
        "git_commits": sorted(
            {r["git_commit"] for r in runs if "git_commit" in r}
            | {c for r in runs for c in r.get("source_commits", ())}
        ),
        "runs": [
            {
                "method": r["method"],
                "k": r["k"],
                "seed": r["seed"],
                "strong_fraction": r["strong_fraction"],
                "n_train_images_used": r["n_train_images_used"],
                "wall_seconds": r["wall_seconds"],
                "final_loss": r["final_loss"],
                "separation_threshold": r.get("separation_threshold"),
                "segmentation_threshold": r.get("segmentation_threshold"),
                **({"rescored": r["rescored"]} if "rescored" in r else {}),
                **({"from_summary": r["from_summary"]} if "from_summary" in r else {}),
                **({"harness_changes": changes(r)} if changes(r) else {}),
                # Per-image pixel counts stay in the per-run files.
                "metrics": {k: v for k, v in r["metrics"].items() if k != "pixel_counts"},
            }
            for r in sorted(runs, key=lambda r: (r["method"], r["k"] or 0, r["seed"]))
        ],
    }


def plot(runs: list[dict], dataset: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = metric_columns(dataset)
    # Pixel Dice, and the object-level score the dataset is judged by.
    panels = [columns[0], columns[1]]
    groups = group(runs)
    n_train = runs[0]["n_train"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), dpi=100)
    for ax, (label, _, get) in zip(axes, panels, strict=True):
        _plot_panel(ax, groups, get, n_train)
        ax.set_ylabel(f"{label}, {runs[0]['test_split']}")
    seeds = sorted({(k, len(groups[(m, k)])) for m, k in groups if k is not None})
    counts = ", ".join(f"k={k}: {n}" for k, n in seeds)
    fig.suptitle(f"{title}\nseeds per point ({counts}); bars: sd over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_panel(ax, groups: dict, get, n_train: int) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    colours = {"a": "C0", "b": "C1", "c": "C2", "d": "C3", "e": "C4", "f": "C5"}
    for method in "acdf":
        keys = sorted(k for m, k in groups if m == method)
        if not keys:
            continue
        xs = [100 * k / n_train for k in keys]
        vals = [[get(r["metrics"]) for r in groups[(method, k)]] for k in keys]
        means = [np.mean(v) for v in vals]
        errs = [np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals]
        ax.errorbar(
            xs,
            means,
            yerr=errs,
            marker="o",
            capsize=3,
            color=colours[method],
            label=METHOD_NAMES[method],
        )
    for method, style in (("b", ":"), ("e", "--")):
        if (method, None) in groups:
            v = [get(r["metrics"]) for r in groups[(method, None)]]
            ax.axhline(
                np.mean(v),
                linestyle=style,
                color=colours[method],
                label=f"{METHOD_NAMES[method]} ({len(v)} seed{'s' * (len(v) > 1)})",
            )
    ax.set_xscale("log")
    # Labelled ticks at round percentages only: labels on every minor tick
    # of a log axis run into each other between 50 and 100.
    ax.set_xticks([2, 5, 10, 20, 50, 100])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("strong (exactly labelled) training images, % (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--dataset", choices=("glas", "bbbc039"), required=True)
    parser.add_argument("--config", default="cpu")
    parser.add_argument("--summary", help="compact summary JSON to write")
    parser.add_argument("--plot", help="PNG to write")
    parser.add_argument("--markdown", help="markdown table to write (default: print)")
    parser.add_argument(
        "--rescored",
        help="folder of rescored runs that replace those of "
        "--results (rescore_calibrated.py writes <results>/calibrated)",
    )
    parser.add_argument(
        "--include-partial",
        action="store_true",
        help="also report exploratory runs (a folder of one --set variant)",
    )
    parser.add_argument(
        "--baselines",
        metavar="SUMMARY",
        help="compact summary JSON (e.g. docs/benchmarks/paper-cpu-glas.json) "
        "whose runs of every (method, k) the folder lacks complete it (tables, "
        "paired differences, plot and --summary)",
    )
    args = parser.parse_args(argv)
    runs = load_runs(
        Path(args.results),
        args.dataset,
        args.config,
        Path(args.rescored) if args.rescored else None,
        args.include_partial,
    )
    if args.baselines and runs:
        runs = runs + summary_runs(Path(args.baselines), runs)
    if not runs:
        raise SystemExit(f"no finished {args.dataset} {args.config} runs in {args.results}")
    text = markdown(runs, args.dataset)
    headline = HEADLINE_K[args.dataset]
    for subject in PAIRINGS:
        paired = paired_differences(runs, args.dataset, headline, subject)
        if paired:
            text += "\n" + paired
    if args.markdown:
        Path(args.markdown).write_text(text)
    else:
        print(text)
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(json.dumps(summary(runs), indent=1))
    if args.plot:
        machine = runs[0]["machine"].get("gpu") or f"{runs[0]['machine']['cpu_count']}-core CPU"
        plot(
            runs, args.dataset, Path(args.plot), f"{args.dataset}, config {args.config} ({machine})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
