"""The memory package's exceptions. Every message says what to do next.

`StoreError` is the one base class callers catch; it derives from `agent.foundation.errors.HearthError`
so the CLI and TUI report it as one line like every other Hearth error.
"""

from __future__ import annotations

from agent.foundation.errors import HearthError


class StoreError(HearthError):
    """The store could not do what was asked; the message says what to do next."""


class NotFoundError(StoreError):
    """A conversation, message, memory, document or adapter version id does not exist."""


class CorruptDatabaseError(StoreError):
    """The database file is not a readable SQLite database (or is damaged)."""
