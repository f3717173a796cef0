"""Memories: facts and preferences the user taught, and a rule-based suggester.

Memories are written in the user's own voice ("My name is Sam.", "I prefer tea."), because
the prompt shows them inside the user's message as "notes from my private memory". A
correction supersedes: the new row is current, the old one points at it (`superseded_by`) and
is kept as history until the user forgets it.

`suggest_memories` finds statements like "my name is ...", "I prefer ...", "remember that ..."
with regular expressions, not the model: a 135M model is unreliable at extraction. It only
proposes; the user confirms, and then `add_memory` / `supersede_memory` store it.
Forgetting lives in `forget`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import get_args

from sqlite_utils import Database

from agent.foundation.ids import new_id, now_iso
from memory.db import write
from memory.errors import NotFoundError, StoreError
from memory.records import MemoryKind, MemoryOrigin, MemoryRecord

MEMORY_KINDS: tuple[MemoryKind, ...] = get_args(MemoryKind)
ORIGINS: tuple[MemoryOrigin, ...] = get_args(MemoryOrigin)


def _clean(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise StoreError("A memory cannot be empty; give the fact or preference to remember.")
    return text


def add_memory(
    db: Database,
    text: str,
    kind: str = "fact",
    source_message_id: str | None = None,
    pinned: bool = False,
    origin: str | None = None,
) -> str:
    """Store a memory and return its id (the existing id if the same text is already a
    current memory). `origin` defaults to 'conversation' with a source message, else 'typed'."""
    text = _clean(text)
    if kind not in MEMORY_KINDS:
        raise StoreError(f"Memory kind {kind!r} is not one of {', '.join(MEMORY_KINDS)}.")
    origin = origin or ("conversation" if source_message_id else "typed")
    if origin not in ORIGINS:
        raise StoreError(f"Memory origin {origin!r} is not one of {', '.join(ORIGINS)}.")
    with write(db):
        if (
            source_message_id
            and not db.execute(
                "SELECT 1 FROM messages WHERE id = ?", [source_message_id]
            ).fetchone()
        ):
            raise NotFoundError(f"No message {source_message_id}; it may have been forgotten.")
        same = db.execute(
            "SELECT id FROM memories WHERE text = ? AND superseded_by IS NULL", [text]
        ).fetchone()
        if same:
            if pinned:
                db.execute("UPDATE memories SET pinned = 1 WHERE id = ?", [same[0]])
            return str(same[0])
        mid, now = new_id(), now_iso()
        db.execute(
            "INSERT INTO memories (id, text, kind, origin, source_message_id, created_at, "
            "updated_at, superseded_by, pinned) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            [mid, text, kind, origin, source_message_id, now, now, int(pinned)],
        )
    return mid


def get_memory(db: Database, memory_id: str) -> MemoryRecord:
    rows = list(db.query("SELECT * FROM memories WHERE id = ?", [memory_id]))
    if not rows:
        raise NotFoundError(f"No memory {memory_id}; see `hearth memory list`.")
    return MemoryRecord.from_row(rows[0])


def supersede_memory(db: Database, old_id: str, new_text: str, kind: str | None = None) -> str:
    """Replace a current memory with a corrected one; the old row is kept as history.
    Returns the new id."""
    new_text = _clean(new_text)
    with write(db):
        old = get_memory(db, old_id)
        if old.superseded_by is not None:
            raise StoreError(
                f"Memory {old_id} was already replaced by {old.superseded_by}; edit that one."
            )
        new_kind = kind or old.kind
        if new_kind not in MEMORY_KINDS:
            raise StoreError(f"Memory kind {new_kind!r} is not one of {', '.join(MEMORY_KINDS)}.")
        mid, now = new_id(), now_iso()
        db.execute(
            "INSERT INTO memories (id, text, kind, origin, source_message_id, created_at, "
            "updated_at, superseded_by, pinned) VALUES (?, ?, ?, 'typed', NULL, ?, ?, NULL, ?)",
            [mid, new_text, new_kind, now, now, int(old.pinned)],
        )
        db.execute(
            "UPDATE memories SET superseded_by = ?, updated_at = ? WHERE id = ?", [mid, now, old_id]
        )
    return mid


def list_memories(db: Database, include_superseded: bool = False) -> list[MemoryRecord]:
    """Current memories (and old versions if asked), pinned first, then oldest first."""
    where = "" if include_superseded else "WHERE superseded_by IS NULL"
    rows = db.query(f"SELECT * FROM memories {where} ORDER BY pinned DESC, created_at, id")
    return [MemoryRecord.from_row(row) for row in rows]


def memory_history(db: Database, memory_id: str) -> list[MemoryRecord]:
    """Every version before `memory_id` and the version itself, oldest first."""
    rows = db.query(
        "WITH RECURSIVE chain(id) AS (SELECT ? UNION SELECT m.id FROM memories m "
        "JOIN chain c ON m.superseded_by = c.id) "
        "SELECT memories.* FROM memories JOIN chain USING (id) ORDER BY created_at, id",
        [memory_id],
    )
    found = [MemoryRecord.from_row(row) for row in rows]
    if not found:
        raise NotFoundError(f"No memory {memory_id}; see `hearth memory list`.")
    return found


def set_pinned(db: Database, memory_id: str, pinned: bool) -> None:
    with write(db):
        cur = db.execute(
            "UPDATE memories SET pinned = ?, updated_at = ? WHERE id = ?",
            [int(pinned), now_iso(), memory_id],
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"No memory {memory_id}; see `hearth memory list`.")


# -- suggestions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A memory proposed from what the user said. `supersedes` is the id of a current memory
    it would replace (same single-valued fact, e.g. a new address)."""

    text: str
    kind: str
    rule: str
    quote: str
    supersedes: str | None = None


_END = r"(?P<x>[^,;.!?]{2,120}?)(?=\s+(?:and|but|so|because|though)\b|[,;.!?]|$)"
_REST = r"(?P<x>[^.!?]{2,200}?)(?=[.!?]|$)"
# (rule name, kind, pattern, single-valued: a new one supersedes the old)
RULES: tuple[tuple[str, str, re.Pattern[str], bool], ...] = tuple(
    (name, kind, re.compile(pattern, re.IGNORECASE), single)
    for name, kind, pattern, single in (
        ("name", "fact", r"\bmy name is\s+" + _END, True),
        ("call_me", "preference", r"\b(?:please\s+)?call me\s+" + _END, True),
        ("lives_in", "fact", r"\bI(?: now)? live in\s+" + _END, True),
        ("birthday", "fact", r"\bmy birthday is\s+" + _END, True),
        ("works", "fact", r"\bI work (?:at|for|as)\s+" + _END, True),
        ("allergy", "fact", r"\bI(?:'m|’m| am) allergic to\s+" + _END, False),
        ("prefers", "preference", r"\bI(?: much)? prefer\s+" + _REST, False),
        ("rather", "preference", r"\bI(?:'d|’d| would) rather\s+" + _REST, False),
        ("likes", "preference", r"\bI (?:really )?(?:like|love|enjoy)\s+" + _END, False),
        (
            "dislikes",
            "preference",
            r"\bI (?:really )?(?:dislike|hate|can't stand|don't like)\s+" + _END,
            False,
        ),
        ("remember", "fact", r"\b(?:please\s+)?remember(?:\s+that)?\s+" + _REST, False),
    )
)
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def _as_memory(clause: str) -> str:
    """Capitalise and end with a full stop: "my name is Sam" -> "My name is Sam."."""
    clause = " ".join(clause.split()).rstrip(" ,;:")
    return clause[:1].upper() + clause[1:] + ("" if clause.endswith((".", "!")) else ".")


def _lead(text: str) -> str:
    """The words of a memory before its value, to spot a single-valued fact being replaced."""
    for name, _kind, pattern, single in RULES:
        m = pattern.search(text)
        if single and m and m.start() == 0:
            return name
    return ""


def suggest_memories(user_text: str, existing: Iterable[MemoryRecord] = ()) -> list[Suggestion]:
    """Memories worth proposing from one user message (questions are ignored).

    >>> [s.text for s in suggest_memories("Hi! My name is Sam and I prefer tea over coffee.")]
    ['My name is Sam.', 'I prefer tea over coffee.']
    """
    current = [m for m in existing if m.superseded_by is None]
    known = {m.text.lower() for m in current}
    found: list[Suggestion] = []
    for sentence in SENTENCE.findall(user_text):
        if sentence.rstrip().endswith("?"):
            continue
        taken: list[tuple[int, int]] = []
        for name, kind, pattern, single in RULES:
            for m in pattern.finditer(sentence):
                if name == "remember" and any(s >= m.start() for s, _ in taken):
                    continue
                clause = m.group(0) if name != "remember" else m.group("x")
                text = _as_memory(re.sub(r"^(?:please\s+)", "", clause, flags=re.IGNORECASE))
                if text.lower() in known:
                    continue
                taken.append(m.span())
                replaced = next((c.id for c in current if single and _lead(c.text) == name), None)
                found.append(Suggestion(text, kind, name, sentence.strip(), replaced))
                known.add(text.lower())
    return found
