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


SHOWN = 5  # memories named in a /forget TEXT listing


def _memories(n: int) -> str:
    return f"{n} memor{'y' if n == 1 else 'ies'}"


def _forget_ids(chat: Any, ids: list[str]) -> CommandResult:
    for memory_id in ids:
        chat.store.forget_memory(memory_id)
    return CommandResult(f"forgot {_memories(len(ids))}")


def _forget(chat: Any, arg: str) -> CommandResult:
    """`/forget ID [ID ...]` forgets exactly those memories. `/forget TEXT` forgets nothing:
    it lists the memories containing TEXT, and `/forget yes` then forgets exactly those."""
    if not arg:
        raise HearthError("usage: /forget MEMORY_ID, or /forget TEXT to list matches first")
    current = {m.id: m for m in chat.store.list_memories()}
    if arg.lower() == "yes":
        pending = [i for i in chat.pending_forget if i in current]
        chat.pending_forget = []
        if not pending:
            raise HearthError("nothing to confirm: /forget TEXT lists the memories first")
        return _forget_ids(chat, pending)
    ids = arg.split()
    if all(i in current for i in ids):
        return _forget_ids(chat, ids)
    needle = arg.lower()
    matches = [m for m in current.values() if needle in m.text.lower()]
    chat.pending_forget = [m.id for m in matches]
    if not matches:
        raise HearthError(f"no memory matches {arg!r}; see `hearth memory list`")
    shown = "; ".join(f"{m.id} “{_short(m.text)}”" for m in matches[:SHOWN])
    more = f" and {len(matches) - SHOWN} more" if len(matches) > SHOWN else ""
    return CommandResult(
        f"{_memories(len(matches))} contain {arg!r}: {shown}{more}. Nothing is forgotten yet: "
        f"type /forget yes to forget {'it' if len(matches) == 1 else 'all ' + str(len(matches))}"
        ", or /forget ID for one"
    )


def _short(text: str, width: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


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
            "/forget ID|TEXT (lists, then /forget yes) /new /quit"
        )
    if name not in COMMANDS:
        return CommandResult(f"unknown command /{name}; try /help")
    try:
        return COMMANDS[name](chat, arg.strip())
    except HearthError as exc:
        return CommandResult(str(exc))
