"""Forget something everywhere Hearth keeps it: the store's rows, then the adapter layer's copies.

`forget(store, what, target)` runs the store's forget (memory, message, conversation or
document: rows, history, prompts, training flags; see memory/forget.py) and then
`adapters.training.registry.purge_forgotten`: every training run folder (`adapters/.runs/*`, copies of
accepted answers, possibly quoting notes) is deleted, and so are the files of every retired or
rejected adapter that learned a forgotten answer; the active one stops being served at once
and the next refresh replaces it. Every front end (CLI, slash commands, the app) forgets
through here. It decides nothing about confirmation (the callers ask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from adapters.training import registry

Kind = Literal["memory", "message", "conversation", "document"]


@dataclass(frozen=True)
class Forgotten:
    """The store's report and what the adapter layer removed."""

    report: Any
    removed: tuple[str, ...]


def forget(store: Any, what: Kind, target: str) -> Forgotten:
    method = {"memory": store.forget_memory, "message": store.forget_message,
              "conversation": store.forget_conversation, "document": store.forget_document}[what]
    report = method(target)
    return Forgotten(report, tuple(registry.purge_forgotten(store)))
