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
from typing import Any, BinaryIO

from sqlite_utils import Database

from agent.foundation import paths
from agent.foundation.ids import new_id, now_iso
from memory.db import write
from memory.errors import StoreError
from memory.import_schema import LOCAL_SETTINGS, RECORD_TYPES, BadRecord, RecordType, show, validate
from memory.records import from_json, to_json

FORMAT = "hearth-export"
VERSION = 1
MAX_LINE_BYTES = 16 * 2**20
"""The longest line an import reads (a message holds at most ~4 MB of text); a longer one
is reported and skipped without being read into memory, and export never writes one."""
# Surrogate keys are not exported (the importing store numbers its own rows).
SURROGATE = {"feedback": "id", "deletions": "id", "forgotten_examples": "seq",
             "experiment_decisions": "id"}
ORDER = {"system_prompts": "version"}


@dataclass
class ImportReport:
    added: dict[str, int] = field(default_factory=dict)
    skipped_existing: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        added = ", ".join(f"{n} {t}" for t, n in sorted(self.added.items())) or "nothing"
        return f"added {added}; {self.skipped_existing} already present; {len(self.errors)} errors"


@dataclass(frozen=True)
class Line:
    """One non-blank line of an import file: its text, or why it could not be read."""

    number: int
    text: str = ""
    error: str | None = None


def _private_tmp(dest: Path) -> Path:
    if not dest.parent.exists():
        paths.ensure_private_dir(dest.parent)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, paths.FILE_MODE))
    return tmp


def _rows(db: Database) -> Iterator[dict[str, Any]]:
    for spec in RECORD_TYPES:
        columns = ", ".join(f"[{c}]" for c in (*spec.columns, *spec.dropped))
        order = SURROGATE.get(spec.table) or ORDER.get(spec.table, "rowid")
        for row in db.query(f"SELECT {columns} FROM [{spec.table}] ORDER BY [{order}]"):
            if spec.table == "settings" and row["key"] in LOCAL_SETTINGS:
                continue
            for col in spec.json_columns:
                row[col] = from_json(row[col])
            yield {"type": spec.name, **row}


def export_target(dest: Path) -> Path:
    """Where an export to `dest` goes: the file itself, or a new dated file in a folder."""
    if dest.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return dest / f"hearth-export-{stamp}.jsonl"
    return dest


def export_jsonl(db: Database, dest: Path) -> int:
    """Write the export to `dest` (a file, or a folder to put a dated file in) atomically
    (0600). Returns the number of lines."""
    dest = export_target(dest)
    try:
        tmp = _private_tmp(dest)
    except OSError as exc:
        raise StoreError(f"Cannot write {dest} ({exc.strerror or exc}); choose another path.") from exc
    count = 1
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            header = {"type": FORMAT, "version": VERSION, "created_at": now_iso()}
            out.write(json.dumps(header) + "\n")
            for row in _rows(db):
                line = json.dumps(row, ensure_ascii=False) + "\n"
                if len(line.encode("utf-8")) > MAX_LINE_BYTES:
                    raise StoreError(
                        f"The {row['type']} {row.get('id', '')} is larger than an import reads "
                        f"({MAX_LINE_BYTES // 2**20} MB); forget or shorten it, then export again."
                    )
                out.write(line)
                count += 1
        os.replace(tmp, dest)
    except OSError as exc:
        raise StoreError(f"Cannot write {dest} ({exc.strerror or exc}); choose another path.") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _skip_rest(f: BinaryIO) -> None:
    """Read past the end of an over-long line, a megabyte at a time."""
    while (chunk := f.readline(2**20)) and not chunk.endswith(b"\n"):
        pass


def _read_lines(path: Path, limit: int | None = None) -> Iterator[Line]:
    """The non-blank lines of `path`, each read with a bounded buffer (MAX_LINE_BYTES)."""
    limit = MAX_LINE_BYTES if limit is None else limit
    try:
        with open(path, "rb") as f:
            number = 0
            while raw := f.readline(limit + 1):
                number += 1
                if len(raw) > limit and not raw.endswith(b"\n"):
                    _skip_rest(f)
                    yield Line(number, error=f"longer than {limit // 2**20} MB; skipped")
                    continue
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    yield Line(number, error="not valid UTF-8; skipped")
                    continue
                if text.strip():
                    yield Line(number, text)
    except OSError as exc:
        raise StoreError(
            f"Cannot read {path} ({exc.strerror or exc}); check the path and that it is a file."
        ) from exc


def _parse(line: Line) -> Any:
    if line.error is not None:
        raise BadRecord(line.error)
    try:
        return json.loads(line.text)
    except json.JSONDecodeError as exc:
        raise BadRecord(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise BadRecord("JSON nested too deeply") from None


def _check_header(line: Line) -> None:
    try:
        header = _parse(line)
    except BadRecord:
        header = None
    if not isinstance(header, dict) or header.get("type") != FORMAT:
        raise StoreError(
            f"Line {line.number} is not a Hearth export header; was the file made by "
            "`hearth memory export`? (For mlx-lm data use import_training_jsonl.)"
        )
    version = header.get("version")
    if type(version) is not int or version < 1:
        raise StoreError(
            f"The export header's version is {show(version)}, not a format number; "
            "was the file edited? Export it again with `hearth memory export`."
        )
    if version > VERSION:
        raise StoreError("This export was written by a newer Hearth; upgrade Hearth to import it.")


def _insert(db: Database, spec: RecordType, row: dict[str, Any]) -> int | None:
    """Insert one validated row unless its key exists. Returns its rowid, None if present.

    Column names come from the declared record type, never from the file."""
    where = " AND ".join(f"[{k}] IS ?" for k in spec.keys)
    if db.execute(
        f"SELECT 1 FROM [{spec.table}] WHERE {where}", [row[k] for k in spec.keys]
    ).fetchone():
        if spec.table == "system_prompts":  # the same seeded text: take the exported timestamp
            db.execute(
                "UPDATE system_prompts SET created_at = ? WHERE version = ? AND text = ?",
                [row["created_at"], row["version"], row["text"]],
            )
        return None
    if (
        spec.table == "adapter_versions"
        and row["status"] == "active"
        and db.execute("SELECT 1 FROM adapter_versions WHERE status = 'active'").fetchone()
    ):
        row = {**row, "status": "retired"}
    columns = ", ".join(f"[{k}]" for k in row)
    cur = db.execute(
        f"INSERT INTO [{spec.table}] ({columns}) VALUES ({', '.join('?' for _ in row)})",
        list(row.values()),
    )
    return int(cur.lastrowid or 0)


def _import_line(db: Database, line: Line) -> tuple[RecordType, int | None]:
    """Validate and insert one line inside a savepoint (undone alone if SQLite refuses it)."""
    spec, row = validate(_parse(line))
    db.execute("SAVEPOINT import_line")
    try:
        rowid = _insert(db, spec, row)
    except sqlite3.Error as exc:
        db.execute("ROLLBACK TO import_line")
        db.execute("RELEASE import_line")
        raise BadRecord(f"conflicts with a row already stored ({exc}); skipped") from None
    db.execute("RELEASE import_line")
    return spec, rowid


def _drop_orphans(db: Database, inserted: dict[tuple[str, int], tuple[int, str]],
                  report: ImportReport) -> None:
    """Remove imported rows that refer to a row neither the store nor the file holds (and
    rows that then lose theirs), reporting each by line; rows already stored are never
    touched (the check only finds rows this import added)."""
    while problems := db.execute("PRAGMA foreign_key_check").fetchall():
        for table, rowid, parent, _fk in problems:
            number, kind = inserted.pop((table, rowid), (0, table))
            if number == 0:
                raise StoreError(
                    f"The store already has a row in {table} that refers to a missing {parent} "
                    "row; run `hearth doctor` before importing."
                )
            db.execute(f"DELETE FROM [{table}] WHERE rowid = ?", [rowid])
            report.added[kind] -= 1
            report.errors.append((number, f"refers to a {parent} row the file does not contain"))
    report.added = {k: n for k, n in report.added.items() if n}
    report.errors.sort()


def import_jsonl(db: Database, source: Path) -> ImportReport:
    """Merge an export into the store in one transaction. Each line is validated against
    its record type (`memory.import_schema`); a bad line is reported with its number and
    the rest imports. Existing rows are never changed."""
    report = ImportReport()
    lines = _read_lines(source)
    first = next(lines, None)
    if first is None:
        raise StoreError(f"{source} is empty; nothing to import.")
    _check_header(first)
    inserted: dict[tuple[str, int], tuple[int, str]] = {}
    with write(db):
        db.execute("PRAGMA defer_foreign_keys = ON")
        for line in lines:
            try:
                spec, rowid = _import_line(db, line)
            except BadRecord as exc:
                report.errors.append((line.number, str(exc)))
                continue
            if rowid is None:
                report.skipped_existing += 1
            else:
                inserted[(spec.table, rowid)] = (line.number, spec.name)
                report.added[spec.name] = report.added.get(spec.name, 0) + 1
        _drop_orphans(db, inserted, report)
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
        for line in _read_lines(source):
            try:
                prompt, target = _parse_example(_parse(line))
                if not target.strip():
                    raise ValueError("the answer is empty")
                for text in (target, *(m["content"] for m in prompt)):
                    text.encode("utf-8")
            except UnicodeEncodeError:
                report.errors.append((line.number, "not valid UTF-8 text"))
                continue
            except ValueError as exc:
                report.errors.append((line.number, str(exc)))
                continue
            if _add_example(db, f"imported from {source.name}", prompt, target):
                report.added["example"] = report.added.get("example", 0) + 1
            else:
                report.skipped_existing += 1
    return report
