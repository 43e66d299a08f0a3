"""Output helpers shared by the commands: progress bars, one-line warnings and errors."""

from __future__ import annotations

import sys

from tqdm import tqdm


def _progress_bar(total: int, desc: str, disable: bool):
    return tqdm(total=total, desc=desc, unit="step", disable=disable, dynamic_ncols=True)


def _print_warnings(caught: list) -> None:
    """Each distinct warning as one line on stderr, without Python's file and line prefix."""
    seen = set()
    for warning in caught:
        text = str(warning.message)
        if text not in seen:
            seen.add(text)
            print(f"warning: {text}", file=sys.stderr)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
