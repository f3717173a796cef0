"""Slash commands shared by the REPL and the Textual app: /remember, /forget, /accept, ...

Each command acts on a `Chat` and returns a `CommandResult`: a one-line message, plus what
happened as fields (the feedback given, a new conversation, quit), so front ends render it
without reading the message. It parses and dispatches only; the work is done by the store and
the chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agent.foundation.errors import HearthError

Feedback = Literal["accepted", "rejected", "edited"]


@dataclass(frozen=True)
class CommandResult:
    message: str
    quit: bool = False
    feedback: Feedback | None = None
    """Set when the last answer was marked (accepted / rejected / edited)."""
    edited_text: str | None = None
    """The corrected answer, for feedback == "edited"."""
    new_conversation: bool = False
    """The chat started a new conversation."""


def _remember(chat: Any, arg: str) -> CommandResult:
    if not arg:
        raise HearthError("usage: /remember FACT (e.g. /remember my cat is called Miso)")
    memory_id = chat.store.add_memory(arg, kind="fact")
    return CommandResult(f"remembered ({memory_id})")


def _forget(chat: Any, arg: str) -> CommandResult:
    if not arg:
        raise HearthError("usage: /forget MEMORY_ID or /forget TEXT (forgets matching memories)")
    memories = [m for m in chat.store.list_memories() if m.id == arg]
    if not memories:
        needle = arg.lower()
        memories = [m for m in chat.store.list_memories() if needle in m.text.lower()]
    if not memories:
        raise HearthError(f"no memory matches {arg!r}; see `hearth memory list`")
    for m in memories:
        chat.store.forget_memory(m.id)
    return CommandResult(f"forgot {len(memories)} memor{'y' if len(memories) == 1 else 'ies'}")


def _feedback(kind: Feedback) -> Any:
    def run(chat: Any, arg: str) -> CommandResult:
        if kind == "edited":
            chat.feedback("edited", edited_text=arg)
        else:
            chat.feedback(kind)
        return CommandResult(f"marked the last answer {kind}", feedback=kind,
                             edited_text=arg if kind == "edited" else None)

    return run


def _yes(chat: Any, arg: str) -> CommandResult:
    kept = chat.keep_suggestions()
    if not kept:
        raise HearthError("nothing to keep: no memory was suggested by your last message")
    return CommandResult(f"remembered {len(kept)} thing{'s' if len(kept) > 1 else ''}")


def _new(chat: Any, arg: str) -> CommandResult:
    chat.new_conversation()
    return CommandResult("new conversation", new_conversation=True)


COMMANDS = {
    "remember": _remember,
    "forget": _forget,
    "accept": _feedback("accepted"),
    "reject": _feedback("rejected"),
    "edit": _feedback("edited"),
    "new": _new,
    "yes": _yes,
}


def run_command(chat: Any, line: str) -> CommandResult:
    name, _, arg = line.lstrip("/").partition(" ")
    name = name.lower()
    if name in ("quit", "exit", "q"):
        return CommandResult("bye", quit=True)
    if name == "help":
        return CommandResult(
            "/accept /reject /edit TEXT /remember FACT /yes (keep a suggested memory) "
            "/forget ID|TEXT /new /quit"
        )
    if name not in COMMANDS:
        return CommandResult(f"unknown command /{name}; try /help")
    try:
        return COMMANDS[name](chat, arg.strip())
    except HearthError as exc:
        return CommandResult(str(exc))
