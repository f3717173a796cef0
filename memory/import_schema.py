"""The declared shape of every record type in a Hearth export, and the check applied to each
imported line before any of it reaches SQL.

`validate(obj)` turns one parsed JSON line into `(record type, row)` or raises `BadRecord`
with a one-line reason. A row holds only the declared columns of that type (unknown keys are
refused, never used as column names), every value has its declared type (text is valid
UTF-8, integers fit SQLite, reals are finite, choices are one of the allowed values) and
every id is a plain token (letters, digits, `-` and `_`: no path separators, no dots), so an
id can safely name a folder. Fields that are this machine's business are dropped, never
imported: an adapter version's `path` (its folder is always derived from its validated id
under the adapters root) and settings that name local files or derived data. A/B trials,
their arms and decisions travel too, but a trial that was running arrives stopped (it cannot
run here: its adapters arrive without their folders).

It does not touch the database: `memory.export` inserts what passes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["text", "int", "real", "bool", "json", "id"]
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
INT_RANGE = (-(2**63), 2**63 - 1)
# Settings that describe this machine, never imported (and not exported): the embedding
# model of the derived vectors, and the model file chosen in the app.
LOCAL_SETTINGS = ("embedding_model", "model")


class BadRecord(ValueError):
    """One line does not match its record type; the message says which field and why."""


@dataclass(frozen=True)
class Col:
    """One column: its kind, whether it may be null, and the values allowed (if a choice)."""

    kind: Kind
    nullable: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordType:
    """One record type: its table, columns, and the key that detects an existing row."""

    name: str
    table: str
    columns: dict[str, Col]
    keys: tuple[str, ...]
    dropped: tuple[str, ...] = ()  # accepted in the file but never imported

    @property
    def json_columns(self) -> tuple[str, ...]:
        return tuple(c for c, col in self.columns.items() if col.kind == "json")


TEXT, ID, TIME = Col("text"), Col("id"), Col("text")
MAYBE_TEXT, MAYBE_ID, MAYBE_INT, MAYBE_REAL = (
    Col("text", True),
    Col("id", True),
    Col("int", True),
    Col("real", True),
)

RECORD_TYPES: tuple[RecordType, ...] = (
    RecordType(
        "conversation",
        "conversations",
        {"id": ID, "title": MAYBE_TEXT, "created_at": TIME, "updated_at": TIME},
        ("id",),
    ),
    RecordType(
        "message",
        "messages",
        {
            "id": ID,
            "conversation_id": ID,
            "role": Col("text", choices=("system", "user", "assistant")),
            "text": TEXT,
            "created_at": TIME,
            "model_id": MAYBE_TEXT,
            "adapter_version": MAYBE_TEXT,
            "prompt_version": MAYBE_INT,
            "prompt_messages": Col("json", True),
            "hits": Col("json", True),
            "tokens_prompt": MAYBE_INT,
            "tokens_completion": MAYBE_INT,
            "latency_ms": MAYBE_REAL,
            "tokens_per_s": MAYBE_REAL,
        },
        ("id",),
    ),
    RecordType(
        "feedback",
        "feedback",
        {
            "message_id": ID,
            "kind": Col("text", choices=("accepted", "rejected", "edited")),
            "edited_text": MAYBE_TEXT,
            "created_at": TIME,
        },
        ("message_id", "kind", "created_at"),
    ),
    RecordType(
        "memory",
        "memories",
        {
            "id": ID,
            "text": TEXT,
            "kind": Col("text", choices=("fact", "preference")),
            "origin": Col("text", choices=("typed", "conversation", "import")),
            "source_message_id": MAYBE_ID,
            "created_at": TIME,
            "updated_at": TIME,
            "superseded_by": MAYBE_ID,
            "pinned": Col("bool"),
        },
        ("id",),
    ),
    RecordType(
        "system_prompt",
        "system_prompts",
        {"version": Col("int"), "text": TEXT, "created_at": TIME},
        ("version",),
    ),
    RecordType(
        "setting",
        "settings",
        {"key": TEXT, "value": Col("json"), "updated_at": TIME},
        ("key",),
    ),
    RecordType(
        "document",
        "documents",
        {
            "id": ID,
            "path": TEXT,  # a label and the re-ingest key; never opened or deleted from here
            "content_hash": TEXT,
            "mtime": Col("real"),
            "size": Col("int"),
            "created_at": TIME,
            "updated_at": TIME,
        },
        ("id",),
    ),
    RecordType(
        "chunk",
        "chunks",
        {"id": ID, "document_id": ID, "ordinal": Col("int"), "text": TEXT},
        ("id",),
    ),
    RecordType(
        "adapter_version",
        "adapter_versions",
        {
            "id": ID,
            "created_at": TIME,
            "updated_at": TIME,
            "base_model_id": MAYBE_TEXT,
            "base_checksum": MAYBE_TEXT,
            "dataset_snapshot": MAYBE_TEXT,
            "n_train": MAYBE_INT,
            "n_valid": MAYBE_INT,
            "hyperparams": Col("json", True),
            "metrics": Col("json", True),
            "verdict": MAYBE_TEXT,
            "reason": MAYBE_TEXT,
            "status": Col(
                "text",
                choices=("training", "candidate", "rejected", "active", "retired", "failed"),
            ),
        },
        ("id",),
        dropped=("path",),
    ),
    RecordType(
        "experiment",
        "experiments",
        {
            "id": ID,
            "kind": Col("text", choices=("adapter", "prompt")),
            "status": Col("text", choices=("running", "promoted", "kept", "stopped")),
            "incumbent_adapter": MAYBE_TEXT,
            "candidate_adapter": MAYBE_ID,
            "incumbent_prompt": MAYBE_INT,
            "candidate_prompt": MAYBE_INT,
            "split": Col("real"),
            "rule": Col("json", True),
            "note": MAYBE_TEXT,
            "started_at": TIME,
            "ended_at": MAYBE_TEXT,
            "reason": MAYBE_TEXT,
        },
        ("id",),
    ),
    RecordType(
        "experiment_arm",
        "experiment_arms",
        {
            "conversation_id": ID,
            "experiment_id": ID,
            "arm": Col("text", choices=("incumbent", "candidate")),
            "assigned_at": TIME,
        },
        ("conversation_id",),
    ),
    RecordType(
        "experiment_decision",
        "experiment_decisions",
        {
            "experiment_id": ID,
            "created_at": TIME,
            "action": Col("text", choices=("continue", "promote", "keep", "stop")),
            "look": MAYBE_INT,
            "n_a": Col("int"),
            "acc_a": Col("int"),
            "n_b": Col("int"),
            "acc_b": Col("int"),
            "p_better": MAYBE_REAL,
            "p_same": MAYBE_REAL,
            "numbers": Col("json", True),
            "reason": TEXT,
        },
        ("experiment_id", "created_at", "action", "look"),
    ),
    RecordType(
        "deletion",
        "deletions",
        {"kind": TEXT, "ids": TEXT, "created_at": TIME},
        ("kind", "ids", "created_at"),
    ),
    RecordType(
        "forgotten_example",
        "forgotten_examples",
        {
            "message_id": ID,
            "reason": Col("text", choices=("deleted", "scrubbed")),
            "forgotten_at": TIME,
        },
        ("message_id",),
    ),
)
BY_NAME = {t.name: t for t in RECORD_TYPES}


def show(value: Any, width: int = 40) -> str:
    """A short, printable rendering of untrusted input for an error message.

    >>> show("a\\x1b[2J" + "x" * 50)[:12]
    "'a\\\\x1b[2Jxxx"
    """
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _utf8(text: str, name: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRecord(f"{name} is not valid UTF-8 text") from None
    return text


def check_value(name: str, col: Col, value: Any) -> Any:
    """The value to store for one column, or BadRecord."""
    if value is None:
        if col.nullable:
            return None
        raise BadRecord(f"{name} is required")
    if col.kind in ("text", "id"):
        if not isinstance(value, str):
            raise BadRecord(f"{name} must be text, not {type(value).__name__}")
        if col.kind == "id" and not SAFE_ID.fullmatch(value):
            raise BadRecord(f"{name} {show(value)} is not an id (letters, digits, - and _)")
        if col.choices and value not in col.choices:
            raise BadRecord(f"{name} {show(value)} is not one of {', '.join(col.choices)}")
        return _utf8(value, name)
    if col.kind == "bool":
        if isinstance(value, bool) or (type(value) is int and value in (0, 1)):
            return int(value)
        raise BadRecord(f"{name} must be true/false or 0/1")
    if col.kind == "int":
        if type(value) is not int or not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise BadRecord(f"{name} must be a whole number")
        return value
    if col.kind == "real":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRecord(f"{name} must be a number")
        if not math.isfinite(value) or (type(value) is int and abs(value) > 2**53):
            raise BadRecord(f"{name} must be a finite number")
        return float(value)
    try:  # json: any JSON value, stored as compact UTF-8 text
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, RecursionError):
        raise BadRecord(f"{name} is not storable JSON") from None
    return _utf8(text, name)


def validate(obj: Any) -> tuple[RecordType, dict[str, Any]]:
    """Check one parsed line; returns its record type and the row to insert."""
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in BY_NAME:
        raise BadRecord(f"unknown record type {show(kind)}")
    spec = BY_NAME[kind]
    unknown = [k for k in obj if k != "type" and k not in spec.columns and k not in spec.dropped]
    if unknown:
        raise BadRecord(f"unknown field {show(unknown[0])} for a {kind} record")
    row = {name: check_value(name, col, obj.get(name)) for name, col in spec.columns.items()}
    if kind == "setting" and row["key"] in LOCAL_SETTINGS:
        raise BadRecord(f"setting {show(row['key'])} belongs to the machine that wrote it")
    if kind == "chunk" and row["ordinal"] < 0:
        raise BadRecord("ordinal must not be negative")
    if kind == "adapter_version" and row["status"] == "training":
        row["status"] = "failed"  # a training run of another store never finishes here
    if kind == "experiment" and row["status"] == "running":
        # a trial of another store does not run on here: its arms' adapters arrive without
        # their folders, and this store may be running its own
        row["status"] = "stopped"
        row["ended_at"] = row["ended_at"] or row["started_at"]
        row["reason"] = "imported while it was running in the exported store"
    if kind == "experiment" and not 0 < row["split"] < 1:
        raise BadRecord("split must lie strictly between 0 and 1")
    return spec, row
