"""Notifications for the widgets: expected mistakes become a short message, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from napari.utils.notifications import show_error, show_info, show_warning

from napari_lazyunet.config import ConfigError
from napari_lazyunet.core.checkpoint import CheckpointError
from napari_lazyunet.core.files import ProjectError
from napari_lazyunet.core.labels import LabelError

__all__ = [
    "EXPECTED_ERRORS",
    "PluginInputError",
    "notify_error",
    "notify_info",
    "notify_warning",
    "reporting_errors",
]

_log = logging.getLogger("napari_lazyunet")


class PluginInputError(ValueError):
    """The layers in the viewer cannot be used as asked; the message says what to do."""


#: Mistakes a user can make and fix; shown as a notification with the message only.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    PluginInputError,
    LabelError,
    ProjectError,
    CheckpointError,
    ConfigError,
    # A diverged training says which file keeps the last good model.
    FloatingPointError,
)


def _message(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, EXPECTED_ERRORS):
        return str(error)
    return f"{type(error).__name__}: {error}"


def notify_error(error: BaseException | str) -> str:
    """Show an error notification in napari and return its text.

    Parameters
    ----------
    error : exception or str
        An expected error (:data:`EXPECTED_ERRORS`) is shown with its message
        only; any other exception also names its type and is logged with its
        traceback (for bug reports), without opening a traceback dialog.

    Returns
    -------
    str
        The text shown.
    """
    text = _message(error)
    if isinstance(error, BaseException) and not isinstance(error, EXPECTED_ERRORS):
        _log.error("napari-lazyunet: unexpected error", exc_info=error)
    show_error(text)
    return text


def notify_warning(message: str) -> str:
    """Show a warning notification and return its text."""
    show_warning(message)
    return message


def notify_info(message: str) -> str:
    """Show an information notification and return its text."""
    show_info(message)
    return message


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn errors raised inside the block into a notification instead of a dialog.

    Examples
    --------
    >>> with reporting_errors():  # doctest: +SKIP
    ...     data = collect_training_data(viewer)
    """
    try:
        yield
    except Exception as error:  # noqa: BLE001 - every failure is reported; expected ones plainly
        notify_error(error)
