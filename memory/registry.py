"""System-prompt versions, settings (JSON values) and adapter-version rows.

The adapter lifecycle's *logic* (train, evaluate, promote) lives in `adapters/`; this module is
only its SQL. `set_active_adapter` is one transaction: the previous active row becomes
'retired' and the new one 'active'; a partial unique index guarantees at most one active row.
Adapter rows come back as `memory.records.AdapterRecord` (hyperparams and metrics decoded).
"""

from __future__ import annotations

from typing import Any, get_args

from sqlite_utils import Database

from agent.foundation.ids import new_id, now_iso
from memory.db import write
from memory.errors import NotFoundError, StoreError
from memory.records import AdapterRecord, AdapterStatus, from_json, to_json

ADAPTER_FIELDS = (
    "base_model_id",
    "base_checksum",
    "path",
    "dataset_snapshot",
    "n_train",
    "n_valid",
    "hyperparams",
    "metrics",
    "verdict",
    "reason",
    "status",
)
ADAPTER_JSON = ("hyperparams", "metrics")
ADAPTER_STATUSES: tuple[AdapterStatus, ...] = get_args(AdapterStatus)


# -- system prompts -------------------------------------------------------------------------


ACTIVE_PROMPT_KEY = "active_prompt_version"
"""Setting naming the active system-prompt version; absent = the newest version."""
_UNPROMOTED_TRIAL_PROMPTS = (
    "SELECT candidate_prompt FROM experiments WHERE candidate_prompt IS NOT NULL "
    "AND status != 'promoted'"
)


def active_system_prompt(db: Database) -> tuple[int, str]:
    """The active system-prompt version and its text: the one activated (`hearth prompts
    activate`), else the newest, leaving out candidate prompts of A/B trials that are running
    or were not promoted (m007): they serve only their trial arm."""
    chosen = get_setting(db, ACTIVE_PROMPT_KEY)
    if chosen is not None:
        found = db.execute("SELECT version, text FROM system_prompts WHERE version = ?", [chosen]).fetchone()
        if found is not None:
            return int(found[0]), str(found[1])
    row = db.execute(
        f"SELECT version, text FROM system_prompts WHERE version NOT IN "
        f"({_UNPROMOTED_TRIAL_PROMPTS}) ORDER BY version DESC LIMIT 1"
    )
    version, text = row.fetchone()
    return int(version), str(text)


def get_system_prompt(db: Database, version: int) -> str:
    row = db.execute("SELECT text FROM system_prompts WHERE version = ?", [version]).fetchone()
    if row is None:
        raise NotFoundError(f"No system prompt version {version}.")
    return str(row[0])


def add_system_prompt(db: Database, text: str) -> int:
    """Store `text` as the next version (which becomes the active one). Returns the version."""
    if not text.strip():
        raise StoreError("A system prompt cannot be empty; give its text.")
    with write(db):
        (latest,) = db.execute("SELECT coalesce(max(version), 0) FROM system_prompts").fetchone()
        version = int(latest) + 1
        db.execute(
            "INSERT INTO system_prompts (version, text, created_at) VALUES (?, ?, ?)",
            [version, text, now_iso()],
        )
        db.execute("DELETE FROM settings WHERE key = ?", [ACTIVE_PROMPT_KEY])
    return version


def activate_system_prompt(db: Database, version: int) -> None:
    """Make an existing version the active one (the history is kept as it is)."""
    with write(db):
        if db.execute("SELECT 1 FROM system_prompts WHERE version = ?", [version]).fetchone() is None:
            raise NotFoundError(f"No system-prompt version {version}; see `hearth prompts list`.")
        set_setting(db, ACTIVE_PROMPT_KEY, version)


def system_prompts(db: Database) -> list[dict[str, Any]]:
    """Every version, oldest first, each with `active` (bool) and `answers` (how many answers
    it produced)."""
    active, _ = active_system_prompt(db)
    rows = db.query(
        "SELECT p.version, p.text, p.created_at, "
        "(SELECT count(*) FROM messages m WHERE m.prompt_version = p.version "
        "AND m.role = 'assistant') AS answers FROM system_prompts p ORDER BY p.version"
    )
    return [{**row, "active": int(row["version"]) == active} for row in rows]


# -- settings -------------------------------------------------------------------------------


def get_setting(db: Database, key: str, default: Any = None) -> Any:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return default if row is None else from_json(row[0])


def set_setting(db: Database, key: str, value: Any) -> None:
    """Store a JSON-serialisable value (None deletes the key)."""
    with write(db):
        if value is None:
            db.execute("DELETE FROM settings WHERE key = ?", [key])
            return
        db.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [key, to_json(value), now_iso()],
        )


# -- adapter versions -----------------------------------------------------------------------


def _adapter_row(row: dict[str, Any]) -> AdapterRecord:
    return AdapterRecord.from_row(row)


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(ADAPTER_FIELDS))
    if unknown:
        raise StoreError(
            f"Unknown adapter field(s) {', '.join(unknown)}; use {', '.join(ADAPTER_FIELDS)}."
        )
    status = fields.get("status")
    if status is not None and status not in ADAPTER_STATUSES:
        raise StoreError(f"Adapter status {status!r} is not one of {', '.join(ADAPTER_STATUSES)}.")
    if status == "active":
        raise StoreError("Activate an adapter with set_active_adapter(id), not a status update.")


def add_adapter_version(db: Database, id: str | None = None, **fields: Any) -> str:
    """Insert a registry row (status defaults to 'candidate'). Returns its id."""
    _check_fields(fields)
    aid = id or new_id()
    now = now_iso()
    row: dict[str, Any] = {"id": aid, "created_at": now, "updated_at": now}
    for key, value in fields.items():
        row[key] = to_json(value) if key in ADAPTER_JSON else value
    with write(db):
        if db.execute("SELECT 1 FROM adapter_versions WHERE id = ?", [aid]).fetchone():
            raise StoreError(f"Adapter version {aid} already exists; pick another id.")
        columns = ", ".join(row)
        db.execute(
            f"INSERT INTO adapter_versions ({columns}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )
    return aid


def update_adapter_version(db: Database, id: str, **fields: Any) -> None:
    _check_fields(fields)
    if not fields:
        return
    sets = ", ".join(f"{key} = ?" for key in fields)
    values = [to_json(v) if k in ADAPTER_JSON else v for k, v in fields.items()]
    with write(db):
        current = db.execute("SELECT status FROM adapter_versions WHERE id = ?", [id]).fetchone()
        if current is None:
            raise NotFoundError(f"No adapter version {id}; list them with `hearth adapters list`.")
        if current[0] == "active" and "status" in fields:
            raise StoreError(
                f"Adapter {id} is active; call set_active_adapter(other or None) before "
                "changing its status."
            )
        db.execute(
            f"UPDATE adapter_versions SET {sets}, updated_at = ? WHERE id = ?",
            [*values, now_iso(), id],
        )


def get_adapter_version(db: Database, id: str) -> AdapterRecord:
    rows = list(db.query("SELECT * FROM adapter_versions WHERE id = ?", [id]))
    if not rows:
        raise NotFoundError(f"No adapter version {id}; list them with `hearth adapters list`.")
    return _adapter_row(rows[0])


def list_adapter_versions(db: Database) -> list[AdapterRecord]:
    """Oldest first."""
    sql = "SELECT * FROM adapter_versions ORDER BY created_at, id"
    return [_adapter_row(row) for row in db.query(sql)]


def active_adapter(db: Database) -> AdapterRecord | None:
    rows = list(db.query("SELECT * FROM adapter_versions WHERE status = 'active'"))
    return _adapter_row(rows[0]) if rows else None


def set_active_adapter(db: Database, id: str | None) -> None:
    """Make `id` the one active adapter (None: none). The previous one becomes 'retired'.
    One transaction: a reader sees the old state or the new, never both or neither."""
    with write(db):
        if (
            id is not None
            and not db.execute("SELECT 1 FROM adapter_versions WHERE id = ?", [id]).fetchone()
        ):
            raise NotFoundError(f"No adapter version {id}; list them with `hearth adapters list`.")
        now = now_iso()
        db.execute(
            "UPDATE adapter_versions SET status = 'retired', updated_at = ? "
            "WHERE status = 'active' AND id IS NOT ?",
            [now, id],
        )
        if id is not None:
            db.execute(
                "UPDATE adapter_versions SET status = 'active', updated_at = ? WHERE id = ?",
                [now, id],
            )
