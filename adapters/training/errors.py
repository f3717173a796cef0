"""The adapters package's one exception. Every message says what to do next."""

from __future__ import annotations

from agent.foundation.errors import HearthError


class AdapterError(HearthError):
    """Training, evaluating, registering or serving a personal adapter failed.

    The message is one line meant for the user: what went wrong and what to do about it.
    """
