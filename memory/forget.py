"""Forgetting that is real: rows, FTS entries, embeddings, copies inside other records, and
the bytes on disk.

Forgetting a memory (with the versions it replaced), a message, a conversation or a document:
1. deletes the rows (triggers drop their FTS entries, embeddings and queue rows);
2. scrubs copies of the text kept elsewhere, in every form it was recorded in (as typed, and
   as `agent.llm.prompt.defuse` quotes it): the prompt messages and hits recorded with later
   answers, corrections, and conversation titles (a title is the start of its first message)
   become "[forgotten]"; a forgotten document's name goes from the prompts that cited it;
3. flags every accepted answer that was deleted or scrubbed in `forgotten_examples` (ids only),
   so the adapter layer retrains without it (`forget_generation`, `forgotten_since`);
4. writes an audit row (kind, ids, time; never content);
5. after commit, `purge_disk`: with secure_delete on, merging the FTS index, checkpointing
   and truncating the WAL leaves no copy in any file (VACUUM only when the file is mostly
   free space).

Not covered: an answer that paraphrased forgotten text keeps its own words (forget that
answer too), and a copy cut short by prompt truncation keeps the part before the cut only
when it no longer matches the original line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from sqlite_utils import Database

from agent.foundation.ids import now_iso
from agent.llm.prompt import defuse
from memory.db import purge_disk, write
from memory.errors import NotFoundError
from memory.ingest import display_name
from memory.records import ForgetReport, from_json, to_json

FORGOTTEN = "[forgotten]"
SHORT = 12


def _json_fragment(text: str) -> str:
    """How `text` appears inside a JSON string written by `to_json`."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _lines(texts: Iterable[str]) -> list[str]:
    return sorted(
        {ln.strip() for t in texts for ln in t.splitlines() if len(ln.strip()) >= 3},
        key=len,
        reverse=True,
    )


def _forms(texts: Iterable[str]) -> list[str]:
    """Every form each text can be recorded in inside a prompt (as typed, and as the prompt
    layer quotes it, defused), longest first."""
    return sorted({f for t in texts for f in (t, defuse(t))}, key=len, reverse=True)


def _needles(texts: list[str]) -> list[str]:
    """What to replace: each text and each of its lines, in every recorded form."""
    return _forms(texts) + _forms(_lines(texts))


def _scrub_text(text: str, needles: list[str]) -> str:
    for needle in needles:
        if needle and needle in text:
            text = text.replace(needle, FORGOTTEN)
    return text


def _scrub_hits(hits: list[Any], hit_kind: str, ids: set[str], needles: list[str]) -> list[Any]:
    out = []
    for hit in hits:
        if isinstance(hit, dict) and hit.get("kind") == hit_kind and hit.get("id") in ids:
            out.append({"kind": hit_kind, "id": hit["id"], "forgotten": True})
        elif isinstance(hit, dict):
            out.append(
                {k: _scrub_text(v, needles) if isinstance(v, str) else v for k, v in hit.items()}
            )
        else:
            out.append(hit)
    return out


def _referencing(
    db: Database, hit_kind: str, ids: set[str], texts: list[str], conversations: set[str]
) -> set[str]:
    """Messages whose recorded hits name one of `ids`, or whose prompt/hits contain a text.

    Texts shorter than SHORT ("yes", "ok") are looked for only within `conversations`, so
    forgetting a "yes" does not scrub every other prompt that says yes."""
    found: set[str] = set()
    if ids:
        marks = ", ".join("?" for _ in ids)
        rows = db.execute(
            "SELECT DISTINCT m.id FROM messages m, json_each(m.hits) j WHERE m.hits IS NOT NULL "
            f"AND json_extract(j.value, '$.kind') = ? AND json_extract(j.value, '$.id') IN ({marks})",
            [hit_kind, *ids],
        )
        found.update(r[0] for r in rows)
    scope = ", ".join("?" for _ in conversations)
    for text in _forms(texts):
        fragment = _json_fragment(text)
        sql = "SELECT id FROM messages WHERE (instr(prompt_messages, ?) > 0 OR instr(hits, ?) > 0)"
        params = [fragment, fragment]
        if len(text) < SHORT:
            if not conversations:
                continue
            sql += f" AND conversation_id IN ({scope})"
            params += sorted(conversations)
        found.update(r[0] for r in db.execute(sql, params))
    return found


def _scrub_titles(db: Database, texts: list[str], conversations: set[str]) -> None:
    """Titles that are a piece of a forgotten text (the start of a first message) become
    "[forgotten]"; copies inside other titles are replaced. Short texts only count within
    `conversations`, as for messages."""
    needles = _needles(texts)
    rows = db.execute("SELECT id, title FROM conversations WHERE title IS NOT NULL").fetchall()
    for cid, title in rows:
        near = cid in conversations
        core = title.strip()
        if core and (near or len(core) >= SHORT) and any(core in t for t in _forms(texts)):
            new = FORGOTTEN
        else:
            new = _scrub_text(title, [n for n in needles if near or len(n) >= SHORT])
        if new != title:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", [new, cid])


def _scrub_messages(
    db: Database,
    hit_kind: str,
    ids: set[str],
    texts: list[str],
    skip: set[str],
    conversations: set[str] = frozenset(),  # type: ignore[assignment]
    labels: tuple[str, ...] = (),
) -> list[str]:
    """Replace copies of `texts` in other messages' prompt messages and hits, and in titles;
    `labels` (a document's name) are replaced only in the messages that cited `ids`.
    Returns the ids of the changed messages."""
    needles = _needles(texts)
    citing = _referencing(db, hit_kind, ids, [], set()) if labels else set()
    changed = []
    for mid in sorted(_referencing(db, hit_kind, ids, texts, set(conversations)) - skip):
        pm_json, hits_json = db.execute(
            "SELECT prompt_messages, hits FROM messages WHERE id = ?", [mid]
        ).fetchone()
        mine = needles + _forms(labels) if mid in citing else needles
        prompt = [
            {**m, "content": _scrub_text(m.get("content", ""), mine)}
            for m in from_json(pm_json, [])
        ]
        hits = _scrub_hits(from_json(hits_json, []), hit_kind, ids, needles)
        new_pm = to_json(prompt) if pm_json is not None else None
        new_hits = to_json(hits) if hits_json is not None else None
        if (new_pm, new_hits) != (pm_json, hits_json):
            db.execute(
                "UPDATE messages SET prompt_messages = ?, hits = ? WHERE id = ?",
                [new_pm, new_hits, mid],
            )
            changed.append(mid)
    for text in _forms(texts):
        db.execute(
            "UPDATE feedback SET edited_text = replace(edited_text, ?, ?) "
            "WHERE instr(edited_text, ?) > 0",
            [text, FORGOTTEN, text],
        )
    _scrub_titles(db, texts, set(conversations))
    return changed


def _flag_examples(db: Database, message_ids: Iterable[str], reason: str) -> list[str]:
    """Record accepted/edited answers among `message_ids` as forgotten examples."""
    flagged = []
    now = now_iso()
    for mid in message_ids:
        was_example = db.execute(
            "SELECT 1 FROM feedback WHERE message_id = ? AND kind IN ('accepted', 'edited')", [mid]
        ).fetchone()
        if was_example:
            db.execute(
                "INSERT OR REPLACE INTO forgotten_examples (message_id, reason, forgotten_at) "
                "VALUES (?, ?, ?)",
                [mid, reason, now],
            )
            flagged.append(mid)
    return flagged


def _audit(db: Database, kind: str, ids: list[str]) -> None:
    db.execute(
        "INSERT INTO deletions (kind, ids, created_at) VALUES (?, ?, ?)",
        [kind, to_json(ids), now_iso()],
    )


def _finish(
    db: Database, report: ForgetReport, fts_tables: Iterable[str], purge: bool
) -> ForgetReport:
    if not purge:
        return report
    tables = {*fts_tables, "messages_fts"} if report.scrubbed_messages else set(fts_tables)
    purged = purge_disk(db, sorted(tables))
    return ForgetReport(
        report.kind, report.ids, report.scrubbed_messages, report.flagged_examples, purged
    )


def forget_memory(db: Database, memory_id: str, purge: bool = True) -> ForgetReport:
    """Forget a memory and every version it replaced."""
    with write(db):
        rows = db.execute(
            "WITH RECURSIVE chain(id) AS (SELECT ? UNION SELECT m.id FROM memories m "
            "JOIN chain c ON m.superseded_by = c.id) "
            "SELECT memories.id, memories.text FROM memories JOIN chain USING (id)",
            [memory_id],
        ).fetchall()
        if not rows:
            raise NotFoundError(f"No memory {memory_id}; see `hearth memory list`.")
        ids = [r[0] for r in rows]
        texts = [r[1] for r in rows]
        marks = ", ".join("?" for _ in ids)
        db.execute(f"UPDATE memories SET superseded_by = NULL WHERE id IN ({marks})", ids)
        db.execute(f"DELETE FROM memories WHERE id IN ({marks})", ids)
        scrubbed = _scrub_messages(db, "memory", set(ids), texts, set())
        flagged = _flag_examples(db, scrubbed, "scrubbed")
        _audit(db, "memory", ids)
    return _finish(db, ForgetReport("memory", ids, scrubbed, flagged), ["memories_fts"], purge)


def _forget_messages(db: Database, ids: list[str]) -> tuple[list[str], list[str]]:
    """Delete messages (inside the caller's transaction); returns (scrubbed, flagged)."""
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(f"SELECT text, conversation_id FROM messages WHERE id IN ({marks})", ids)
    texts, conversations = [], set()
    for text, conversation_id in rows:
        texts.append(text)
        conversations.add(conversation_id)
    texts += [
        r[0]
        for r in db.execute(
            f"SELECT edited_text FROM feedback WHERE message_id IN ({marks}) "
            "AND edited_text IS NOT NULL",
            ids,
        )
    ]
    flagged = _flag_examples(db, ids, "deleted")
    db.execute(f"DELETE FROM feedback WHERE message_id IN ({marks})", ids)
    db.execute(f"DELETE FROM messages WHERE id IN ({marks})", ids)
    scrubbed = _scrub_messages(db, "history", set(ids), texts, set(ids), conversations)
    flagged += _flag_examples(db, scrubbed, "scrubbed")
    return scrubbed, flagged


def forget_message(db: Database, message_id: str, purge: bool = True) -> ForgetReport:
    """Forget one message (and its feedback); copies in later prompts are scrubbed."""
    with write(db):
        if not db.execute("SELECT 1 FROM messages WHERE id = ?", [message_id]).fetchone():
            raise NotFoundError(f"No message {message_id}; it may have been forgotten already.")
        scrubbed, flagged = _forget_messages(db, [message_id])
        _audit(db, "message", [message_id])
    report = ForgetReport("message", [message_id], scrubbed, flagged)
    return _finish(db, report, ["messages_fts"], purge)


def forget_conversation(db: Database, conversation_id: str, purge: bool = True) -> ForgetReport:
    """Forget a conversation and all its messages."""
    with write(db):
        if not db.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone():
            raise NotFoundError(
                f"No conversation {conversation_id}; list them with `hearth history list`."
            )
        ids = [
            r[0]
            for r in db.execute(
                "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id]
            )
        ]
        scrubbed, flagged = _forget_messages(db, ids) if ids else ([], [])
        db.execute("DELETE FROM conversations WHERE id = ?", [conversation_id])
        _audit(db, "conversation", [conversation_id, *ids])
    report = ForgetReport("conversation", [conversation_id, *ids], scrubbed, flagged)
    return _finish(db, report, ["messages_fts"], purge)


def forget_document(db: Database, document: str, purge: bool = True) -> ForgetReport:
    """Forget an ingested document (by id or by path) and all its chunks."""
    document = display_name(document)  # as ingest stored it (a non-UTF-8 name as \\xNN)
    with write(db):
        row = db.execute(
            "SELECT id, path FROM documents WHERE id = ? OR path = ?", [document, document]
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"No document {document}; give its id or the full path it was ingested from."
            )
        doc_id, path = row
        referenced = {
            r[0]
            for r in db.execute(
                "SELECT DISTINCT json_extract(j.value, '$.id') FROM messages m, json_each(m.hits) j "
                "WHERE m.hits IS NOT NULL AND json_extract(j.value, '$.kind') = 'document' AND "
                "json_extract(j.value, '$.id') IN (SELECT id FROM chunks WHERE document_id = ?)",
                [doc_id],
            )
        }
        marks = ", ".join("?" for _ in referenced)
        used_texts = (
            [
                r[0]
                for r in db.execute(
                    f"SELECT text FROM chunks WHERE id IN ({marks})", list(referenced)
                )
            ]
            if referenced
            else []
        )
        db.execute("DELETE FROM chunks WHERE document_id = ?", [doc_id])
        db.execute("DELETE FROM documents WHERE id = ?", [doc_id])
        labels = (path, PurePath(path).name)  # the source label names the file
        scrubbed = _scrub_messages(db, "document", referenced, used_texts, set(), labels=labels)
        flagged = _flag_examples(db, scrubbed, "scrubbed")
        _audit(db, "document", [doc_id])
    return _finish(db, ForgetReport("document", [doc_id], scrubbed, flagged), ["chunks_fts"], purge)


def forget_generation(db: Database) -> int:
    """A counter that grows whenever an accepted answer is forgotten (compare to retrain)."""
    (value,) = db.execute("SELECT coalesce(max(seq), 0) FROM forgotten_examples").fetchone()
    return int(value)


def forgotten_since(db: Database, since: str | None = None) -> list[dict[str, Any]]:
    """Forgotten examples (message_id, reason, forgotten_at) after an ISO time, oldest first."""
    sql = "SELECT message_id, reason, forgotten_at FROM forgotten_examples"
    params: list[Any] = []
    if since is not None:
        sql += " WHERE forgotten_at > ?"
        params.append(since)
    return list(db.query(sql + " ORDER BY seq", params))
