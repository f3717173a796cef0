"""Hearth's base exception and the foundation's errors, and how any front end tells them
from crashes.

Every message says what to do next. `is_user_error` decides whether an exception is one
line for the user (Hearth's own errors) or a crash (kept by `agent.foundation.crashlog`).
The CLI and the TUI both use these.
"""

from __future__ import annotations


class HearthError(Exception):
    """Base class for errors Hearth reports to the user as one line."""


class ModelError(HearthError):
    """The model could not be found, converted, validated or loaded."""


class AdapterLoadError(HearthError):
    """An adapter could not be loaded onto the base model."""


class NetworkRefused(HearthError):
    """Something tried to reach the network while Hearth is offline."""


def is_user_error(exc: BaseException) -> bool:
    """True for Hearth's own errors, shown as one line.

    Every package's exception derives from `HearthError` (`memory.errors.StoreError`,
    `adapters.training.errors.AdapterError`, the ones here), so this is one `isinstance`.
    """
    return isinstance(exc, HearthError)
