"""Conversations, messages and feedback: the record of what was said and what was accepted.

A message keeps everything needed to reproduce it (the exact prompt messages, the hits used,
model/adapter/prompt versions, timings). Feedback rows are append-only; the latest row for a
message decides whether it is a training example, and the latest correction is its target.

Functions take a sqlite-utils `Database`; `Store` wraps them. Forgetting lives in `forget`.
"""

from __future__ import annotations

from typing import Any, get_args

from sqlite_utils import Database

from agent.foundation.ids import new_id, now_iso
from memory.db import write
from memory.errors import NotFoundError, StoreError
from memory.records import (
    Accepted,
    ConversationRecord,
    FeedbackKind,
    MessageRecord,
    Role,
    final_text,
    from_json,
    to_json,
)

ROLES: tuple[Role, ...] = get_args(Role)
FEEDBACK_KINDS: tuple[FeedbackKind, ...] = get_args(FeedbackKind)
MESSAGE_META = (
    "model_id",
    "adapter_version",
    "prompt_version",
    "prompt_messages",
    "hits",
    "tokens_prompt",
    "tokens_completion",
    "latency_ms",
    "tokens_per_s",
)
JSON_META = ("prompt_messages", "hits")

MESSAGE_SELECT = """
SELECT m.*, f.kind AS feedback,
  (SELECT e.edited_text FROM feedback e WHERE e.message_id = m.id AND e.kind = 'edited'
   ORDER BY e.id DESC LIMIT 1) AS edited_text,
  (SELECT a.arm FROM experiment_arms a JOIN experiments x ON x.id = a.experiment_id
   WHERE a.conversation_id = m.conversation_id AND m.role = 'assistant'
     AND m.created_at >= x.started_at AND (x.ended_at IS NULL OR m.created_at <= x.ended_at)
  ) AS arm
FROM messages m
LEFT JOIN feedback f ON f.id = (SELECT max(id) FROM feedback WHERE message_id = m.id)
"""


def new_conversation(db: Database, title: str | None = None, id: str | None = None) -> str:
    cid = id or new_id()
    now = now_iso()
    with write(db):
        db.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
            [cid, title, now, now],
        )
    return cid


def set_conversation_title(db: Database, conversation_id: str, title: str | None) -> None:
    with write(db):
        cur = db.execute(
            "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
            [title, now_iso(), conversation_id],
        )
        if cur.rowcount == 0:
            raise NotFoundError(
                f"No conversation {conversation_id}; list them with `hearth history list`."
            )


def _check_meta(meta: dict[str, Any]) -> None:
    unknown = sorted(set(meta) - set(MESSAGE_META))
    if unknown:
        raise StoreError(
            f"Unknown message field(s) {', '.join(unknown)}; use {', '.join(MESSAGE_META)}."
        )


def add_message(db: Database, conversation_id: str, role: str, text: str, **meta: Any) -> str:
    """Record a message; `meta` holds the MESSAGE_META fields. Returns its id."""
    if role not in ROLES:
        raise StoreError(f"Message role {role!r} is not one of {', '.join(ROLES)}.")
    _check_meta(meta)
    mid = new_id()
    now = now_iso()
    row: dict[str, Any] = {
        "id": mid,
        "conversation_id": conversation_id,
        "role": role,
        "text": text,
        "created_at": now,
    }
    for key in MESSAGE_META:
        value = meta.get(key)
        row[key] = to_json(value) if key in JSON_META else value
    with write(db):
        cur = db.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?", [now, conversation_id]
        )
        if cur.rowcount == 0:
            raise NotFoundError(
                f"No conversation {conversation_id}; start one with new_conversation() first."
            )
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        db.execute(f"INSERT INTO messages ({columns}) VALUES ({marks})", list(row.values()))
    return mid


def _message_rows(db: Database, where: str, params: list[Any]) -> list[MessageRecord]:
    rows = db.query(f"{MESSAGE_SELECT} WHERE {where} ORDER BY m.id", params)
    return [MessageRecord.from_row(row) for row in rows]


def get_message(db: Database, message_id: str) -> MessageRecord:
    rows = _message_rows(db, "m.id = ?", [message_id])
    if not rows:
        raise NotFoundError(f"No message {message_id}; it may have been forgotten.")
    return rows[0]


def conversation_messages(db: Database, conversation_id: str) -> list[MessageRecord]:
    if not db.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone():
        raise NotFoundError(
            f"No conversation {conversation_id}; list them with `hearth history list`."
        )
    return _message_rows(db, "m.conversation_id = ?", [conversation_id])


def list_conversations(db: Database, limit: int | None = None) -> list[ConversationRecord]:
    """Most recently updated first."""
    sql = (
        "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) "
        "AS n_messages FROM conversations c ORDER BY c.updated_at DESC, c.id DESC"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [ConversationRecord(**row) for row in db.query(sql)]


IMPORT_MODEL_ID = "import"
"""`model_id` of answers brought in by `import_training_jsonl` (not chatted)."""


def last_chat_at(db: Database) -> str | None:
    """When the user last chatted: the newest message or feedback in a conversation that
    was not imported (imported pairs are history, not activity). None: never chatted."""
    imported = "SELECT conversation_id FROM messages WHERE model_id = ?"
    row = db.execute(
        "SELECT max(t) FROM ("
        f"SELECT max(m.created_at) AS t FROM messages m WHERE m.conversation_id NOT IN ({imported}) "
        "UNION ALL SELECT max(f.created_at) FROM feedback f JOIN messages m ON m.id = f.message_id "
        f"WHERE m.conversation_id NOT IN ({imported}))",
        [IMPORT_MODEL_ID, IMPORT_MODEL_ID],
    ).fetchone()
    return row[0] if row and row[0] else None


def add_feedback(db: Database, message_id: str, kind: str, edited_text: str | None = None) -> int:
    """Record accepted / rejected / edited feedback on an assistant message. The latest row
    wins; an edit's text becomes the example's target. Returns the feedback row id."""
    if kind not in FEEDBACK_KINDS:
        raise StoreError(f"Feedback kind {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}.")
    if kind == "edited" and not (edited_text and edited_text.strip()):
        raise StoreError("An edit needs the corrected text; pass edited_text.")
    if kind != "edited" and edited_text is not None:
        raise StoreError("Only 'edited' feedback takes edited_text; use kind='edited'.")
    with write(db):
        row = db.execute("SELECT role FROM messages WHERE id = ?", [message_id]).fetchone()
        if row is None:
            raise NotFoundError(f"No message {message_id}; it may have been forgotten.")
        if row[0] != "assistant":
            raise StoreError("Feedback applies to assistant answers only; pick an answer.")
        cur = db.execute(
            "INSERT INTO feedback (message_id, kind, edited_text, created_at) VALUES (?, ?, ?, ?)",
            [message_id, kind, edited_text, now_iso()],
        )
    return int(cur.lastrowid or 0)


ACCEPTED_SQL = """
WITH latest AS (SELECT message_id, max(id) AS fid FROM feedback GROUP BY message_id)
SELECT m.id AS message_id, m.prompt_messages, m.text, f.created_at,
  (SELECT e.edited_text FROM feedback e WHERE e.message_id = m.id AND e.kind = 'edited'
   ORDER BY e.id DESC LIMIT 1) AS edited_text,
  fe.message_id IS NOT NULL AS forgotten
FROM latest
JOIN feedback f ON f.id = latest.fid
JOIN messages m ON m.id = latest.message_id
LEFT JOIN forgotten_examples fe ON fe.message_id = m.id
WHERE f.kind IN ('accepted', 'edited') AND m.prompt_messages IS NOT NULL
"""


def accepted_examples(
    db: Database, include_forgotten: bool = False, message_ids: list[str] | None = None
) -> list[Accepted]:
    """Accepted or edited answers (latest feedback wins), oldest acceptance first.

    Answers recorded without prompt messages are left out: they cannot be rebuilt.
    """
    sql, params = ACCEPTED_SQL, []
    if not include_forgotten:
        sql += " AND fe.message_id IS NULL"
    if message_ids is not None:
        sql += f" AND m.id IN ({', '.join('?' for _ in message_ids)})"
        params = list(message_ids)
    return [
        Accepted(
            message_id=row["message_id"],
            prompt_messages=from_json(row["prompt_messages"], []),
            target=final_text(row["text"], row["edited_text"]),
            created_at=row["created_at"],
            forgotten=bool(row["forgotten"]),
        )
        for row in db.query(sql + " ORDER BY f.id", params)
    ]
