"""Export, import and backup.

`export_jsonl` writes everything but the vectors (they are rebuilt) as JSON lines, one object
per row with a "type" field, after a header line carrying a format version that
`import_jsonl` checks. Import merges: rows whose key already exists are kept as they are, and
imported text is queued for embedding. `backup` copies the live database through SQLite's
online backup API into a single self-contained 0600 file.

`import_training_jsonl` brings past conversations from mlx-lm's data formats ({"messages"},
{"prompt", "completion"}, {"text"}); each line becomes a conversation whose answer has an
"accepted" feedback row, so it is a training example like any accepted answer.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from agent.foundation import paths
from agent.foundation.ids import new_id, now_iso
from memory.db import write
from memory.errors import StoreError
from memory.records import from_json, to_json

FORMAT = "hearth-export"
VERSION = 1
# (type, table, key columns used to detect an existing row, JSON columns, surrogate key)
TABLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], str | None], ...] = (
    ("conversation", "conversations", ("id",), (), None),
    ("message", "messages", ("id",), ("prompt_messages", "hits"), None),
    ("feedback", "feedback", ("message_id", "kind", "created_at"), (), "id"),
    ("memory", "memories", ("id",), (), None),
    ("system_prompt", "system_prompts", ("version",), (), None),
    ("setting", "settings", ("key",), ("value",), None),
    ("document", "documents", ("id",), (), None),
    ("chunk", "chunks", ("id",), (), None),
    ("adapter_version", "adapter_versions", ("id",), ("hyperparams", "metrics"), None),
    ("deletion", "deletions", ("kind", "ids", "created_at"), (), "id"),
    ("forgotten_example", "forgotten_examples", ("message_id",), (), "seq"),
)
BY_TYPE = {spec[0]: spec for spec in TABLES}
# Settings that describe this file's derived data (the vectors, which are not exported).
LOCAL_SETTINGS = ("embedding_model",)


@dataclass
class ImportReport:
    added: dict[str, int] = field(default_factory=dict)
    skipped_existing: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        added = ", ".join(f"{n} {t}" for t, n in sorted(self.added.items())) or "nothing"
        return f"added {added}; {self.skipped_existing} already present; {len(self.errors)} errors"


def _private_tmp(dest: Path) -> Path:
    if not dest.parent.exists():
        paths.ensure_private_dir(dest.parent)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, paths.FILE_MODE))
    return tmp


def _rows(db: Database) -> Iterator[dict[str, Any]]:
    for kind, table, _keys, json_cols, surrogate in TABLES:
        order = surrogate or ("version" if table == "system_prompts" else "rowid")
        for row in db.query(f"SELECT * FROM [{table}] ORDER BY {order}"):
            if surrogate:
                row.pop(surrogate)
            if table == "settings" and row["key"] in LOCAL_SETTINGS:
                continue
            for col in json_cols:
                row[col] = from_json(row[col])
            yield {"type": kind, **row}


def export_jsonl(db: Database, dest: Path) -> int:
    """Write the export to `dest` atomically (0600). Returns the number of lines."""
    tmp = _private_tmp(dest)
    count = 1
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            header = {"type": FORMAT, "version": VERSION, "created_at": now_iso()}
            out.write(json.dumps(header) + "\n")
            for row in _rows(db):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield number, line
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"Cannot read {path} ({exc}); check the path and that it is UTF-8."
        ) from exc


def _check_header(number: int, line: str) -> None:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("type") != FORMAT:
        raise StoreError(
            f"Line {number} is not a Hearth export header; was the file made by "
            "`hearth memory export`? (For mlx-lm data use import_training_jsonl.)"
        )
    if int(header.get("version", 0)) > VERSION:
        raise StoreError("This export was written by a newer Hearth; upgrade Hearth to import it.")


def _insert(db: Database, obj: dict[str, Any]) -> bool:
    """Insert one exported row unless its key exists. Returns True if inserted."""
    _kind, table, keys, json_cols, _surrogate = BY_TYPE[obj.pop("type")]
    row = {k: (to_json(v) if k in json_cols else v) for k, v in obj.items()}
    where = " AND ".join(f"[{k}] IS ?" for k in keys)
    if db.execute(f"SELECT 1 FROM [{table}] WHERE {where}", [row.get(k) for k in keys]).fetchone():
        if table == "system_prompts":  # the same seeded text: take the exported timestamp
            db.execute(
                "UPDATE system_prompts SET created_at = ? WHERE version = ? AND text = ?",
                [row.get("created_at"), row.get("version"), row.get("text")],
            )
        return False
    if (
        table == "adapter_versions"
        and row.get("status") == "active"
        and db.execute("SELECT 1 FROM adapter_versions WHERE status = 'active'").fetchone()
    ):
        row["status"] = "retired"
    columns = ", ".join(f"[{k}]" for k in row)
    db.execute(
        f"INSERT INTO [{table}] ({columns}) VALUES ({', '.join('?' for _ in row)})",
        list(row.values()),
    )
    return True


def import_jsonl(db: Database, source: Path) -> ImportReport:
    """Merge an export into the store in one transaction (foreign keys checked at commit)."""
    report = ImportReport()
    lines = _read_lines(source)
    first = next(lines, None)
    if first is None:
        raise StoreError(f"{source} is empty; nothing to import.")
    _check_header(*first)
    with write(db):
        db.execute("PRAGMA defer_foreign_keys = ON")
        for number, line in lines:
            try:
                obj = json.loads(line)
                kind = obj.get("type") if isinstance(obj, dict) else None
                if kind not in BY_TYPE:
                    raise ValueError(f"unknown type {kind!r}")
                if _insert(db, obj):
                    report.added[kind] = report.added.get(kind, 0) + 1
                else:
                    report.skipped_existing += 1
            except (ValueError, sqlite3.IntegrityError, sqlite3.InterfaceError) as exc:
                report.errors.append((number, str(exc)))
        problems = db.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise StoreError(
                f"The export refers to {len(problems)} row(s) it does not contain (first in "
                f"table {problems[0][0]}); it may be cut short. Nothing was imported."
            )
    return report


def backup(db: Database, dest: Path) -> Path:
    """Copy the live database to `dest` (or into folder `dest`) as one 0600 file."""
    if dest.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        dest = dest / f"hearth-backup-{stamp}.db"
    tmp = _private_tmp(dest)
    try:
        target = sqlite3.connect(str(tmp))
        try:
            db.conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")
            (status,) = target.execute("PRAGMA quick_check").fetchone()
        finally:
            target.close()
        if status != "ok":
            raise StoreError(
                f"The backup failed its check ({status}); try again, then run `hearth doctor`."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    paths.make_private(dest)
    return dest


# -- mlx-lm training data --------------------------------------------------------------------


def _parse_example(obj: Any) -> tuple[list[dict[str, str]], str]:
    """(prompt messages, target) from one mlx-lm data line."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise ValueError("'messages' must be a non-empty list")
        clean = []
        for m in msgs:
            if not (
                isinstance(m, dict)
                and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)
            ):
                raise ValueError("each message needs a role (system/user/assistant) and content")
            clean.append({"role": m["role"], "content": m["content"]})
        if clean[-1]["role"] != "assistant":
            raise ValueError("the last message must be the assistant's answer")
        return clean[:-1], clean[-1]["content"]
    if "prompt" in obj and "completion" in obj:
        if not (isinstance(obj["prompt"], str) and isinstance(obj["completion"], str)):
            raise ValueError("'prompt' and 'completion' must be strings")
        return [{"role": "user", "content": obj["prompt"]}], obj["completion"]
    if "text" in obj and isinstance(obj["text"], str):
        return [], obj["text"]
    raise ValueError("expected {'messages': [...]}, {'prompt', 'completion'} or {'text'}")


def _add_example(db: Database, title: str, prompt: list[dict[str, str]], target: str) -> bool:
    prompt_json = to_json(prompt)
    if db.execute(
        "SELECT 1 FROM messages WHERE role = 'assistant' AND model_id = 'import' AND text = ? "
        "AND prompt_messages = ?",
        [target, prompt_json],
    ).fetchone():
        return False
    now = now_iso()
    cid = new_id()
    db.execute(
        "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
        [cid, title, now, now],
    )
    for m in prompt:
        db.execute(
            "INSERT INTO messages (id, conversation_id, role, text, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [new_id(), cid, m["role"], m["content"], now],
        )
    answer = new_id()
    db.execute(
        "INSERT INTO messages (id, conversation_id, role, text, created_at, model_id, "
        "prompt_messages) VALUES (?, ?, 'assistant', ?, ?, 'import', ?)",
        [answer, cid, target, now, prompt_json],
    )
    db.execute(
        "INSERT INTO feedback (message_id, kind, created_at) VALUES (?, 'accepted', ?)",
        [answer, now],
    )
    return True


def import_training_jsonl(db: Database, source: Path) -> ImportReport:
    """Import mlx-lm JSONL examples as accepted answers (bad lines reported, duplicates skipped)."""
    report = ImportReport()
    with write(db):
        for number, line in _read_lines(source):
            try:
                prompt, target = _parse_example(json.loads(line))
                if not target.strip():
                    raise ValueError("the answer is empty")
            except ValueError as exc:
                report.errors.append((number, str(exc)))
                continue
            if _add_example(db, f"imported from {source.name}", prompt, target):
                report.added["example"] = report.added.get("example", 0) + 1
            else:
                report.skipped_existing += 1
    return report
