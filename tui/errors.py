"""Turn any exception into one notification line that says what to do next.

Hearth's own errors (`agent.errors.HearthError`, which the store's errors derive from, and
`adapters.errors.AdapterError`) already carry a message for the user; they are shown as is.
Anything else is a bug: its traceback goes to `logs/crash.log` and the notification says
where. The app never shows a traceback.
"""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, datetime

from agent import paths
from agent.errors import HearthError


def is_user_error(exc: BaseException) -> bool:
    """True for errors whose message is written for the user.

    >>> is_user_error(HearthError("no model")), is_user_error(KeyError("x"))
    (True, False)
    """
    if isinstance(exc, HearthError):
        return True
    top = type(exc).__module__.split(".")[0]
    return top in ("memory", "adapters") and type(exc).__name__.endswith("Error")


def log_crash(exc: BaseException) -> str:
    """Append the traceback to the crash log; returns its path (or a note if unwritable)."""
    try:
        log = paths.logs_dir() / "crash.log"
        with log.open("a") as fh:
            fh.write(f"--- {datetime.now(UTC).isoformat()} tui {' '.join(sys.argv)}\n")
            fh.write("".join(traceback.format_exception(exc)))
        return str(log)
    except OSError:
        return "(the crash log could not be written)"


def describe(exc: BaseException) -> str:
    """The one line to notify for `exc`."""
    if is_user_error(exc):
        return str(exc)
    where = log_crash(exc)
    return f"Internal error ({type(exc).__name__}: {exc}). Details in {where}; please report it."
