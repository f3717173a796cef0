"""Turn any exception into one notification line that says what to do next.

Hearth's own errors (`agent.foundation.errors.HearthError`, which the store's errors derive from, and
`adapters.training.errors.AdapterError`) already carry a message for the user; they are shown as is.
Anything else is a bug: its traceback goes to `logs/crash.log` and the notification says
where. The app never shows a traceback.
"""

from __future__ import annotations

from agent.foundation.crashlog import log_crash
from agent.foundation.errors import is_user_error


def describe(exc: BaseException) -> str:
    """The one line to notify for `exc`.

    >>> from agent.foundation.errors import HearthError
    >>> describe(HearthError("no model"))
    'no model'
    """
    if is_user_error(exc):
        return str(exc)
    where = log_crash(exc, "tui")
    return f"Internal error ({type(exc).__name__}: {exc}). Details in {where}; please report it."
