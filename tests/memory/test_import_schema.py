"""`hearth memory import` treats the file as hostile (issue 11, defects 1, 9, 11): every line
is checked against its record type's declared columns before SQL sees it, a bad line is
reported with its number while the rest imports, ids and adapter paths are never trusted,
over-long lines are skipped unread, and no input changes a row that was already stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory import export
from memory.embed import HashEmbedder
from memory.errors import StoreError
from memory.import_schema import RECORD_TYPES
from memory.store import Store

HEADER = {"type": "hearth-export", "version": 1}
INJECTION_KEY = (
    "pinned]) SELECT coalesce(id, ?), ?, ?, ?, ?, ? FROM memories WHERE 1 ON CONFLICT(id) "
    "DO UPDATE SET text='INJECTED', pinned=1 --"
)
T = "2026-01-01T00:00:00.000Z"


def write_lines(path: Path, *objs: Any) -> Path:
    path.write_text(
        "\n".join(o if isinstance(o, str) else json.dumps(o) for o in (HEADER, *objs)) + "\n"
    )
    return path


def memory_line(mid: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "memory", "id": mid, "text": text, "kind": "fact", "origin": "typed",
            "source_message_id": None, "created_at": T, "updated_at": T,
            "superseded_by": None, "pinned": 0, **extra}


def snapshot(store: Store) -> dict[tuple[str, int], tuple[Any, ...]]:
    """Every stored row of every exported table, by (table, rowid)."""
    rows = {}
    for spec in RECORD_TYPES:
        for row in store.db.execute(f"SELECT rowid, * FROM [{spec.table}]"):
            rows[(spec.table, row[0])] = tuple(row[1:])
    return rows


def test_sql_in_a_key_is_refused_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    """Defect 1: this line rewrote and pinned every memory on the old import."""
    keep = store.add_memory("I live in Lyon.")
    store.embed_pending()
    before = snapshot(store)
    line = {"type": "memory", "id": "x", "text": "x", "kind": "fact", "created_at": T,
            "updated_at": T, INJECTION_KEY: 1}  # 6 columns for the 6 values of the SELECT
    report = store.import_jsonl(write_lines(tmp_path / "evil.jsonl", line))
    assert report.added == {} and len(report.errors) == 1
    number, message = report.errors[0]
    assert number == 2 and message.startswith("unknown field") and "\n" not in message
    assert snapshot(store) == before
    assert store.get_memory(keep).text == "I live in Lyon." and not store.get_memory(keep).pinned


def test_bad_lines_are_reported_and_the_rest_imports(store: Store, tmp_path: Path) -> None:
    """Defect 9: `{"type":"memory"}` was "Database error near ')'" and discarded the file."""
    src = write_lines(
        tmp_path / "mixed.jsonl",
        {"type": "memory"},
        memory_line("01JGOOD0000000000000000001", "I like tea."),
        "not json at all",
        [1, 2],
        {"type": ["memory"]},
        memory_line("01JGOOD0000000000000000002", "x", pinned="yes"),
        memory_line("01JGOOD0000000000000000003", "x", kind="secret"),
        memory_line("../../etc", "x"),
        memory_line("01JGOOD0000000000000000004", "\ud800 lone surrogate"),
        memory_line("01JGOOD0000000000000000005", "I like coffee.", created_at=7),
        memory_line("01JGOOD0000000000000000006", "I like rain."),
    )
    report = store.import_jsonl(src)
    assert report.added == {"memory": 2}
    assert [n for n, _ in report.errors] == [2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert all("\n" not in m and "Database error" not in m for _, m in report.errors)
    assert sorted(m.text for m in store.list_memories()) == ["I like rain.", "I like tea."]


@pytest.mark.parametrize("version", ["abc", None, 1.5, True, [1], -1])
def test_header_version_must_be_a_format_number(
    store: Store, tmp_path: Path, version: Any
) -> None:
    """Defect 9: `"version": "abc"` or `null` crashed with a traceback."""
    src = tmp_path / "h.jsonl"
    src.write_text(json.dumps({"type": "hearth-export", "version": version}) + "\n")
    with pytest.raises(StoreError, match="not a format number"):
        store.import_jsonl(src)


def test_adapter_rows_never_bring_a_path_or_an_unsafe_id(store: Store, tmp_path: Path) -> None:
    """An adapter's folder is derived from its validated id, never taken from the file; a
    'training' row from another store cannot make recovery act on it here."""
    row = {"type": "adapter_version", "created_at": T, "updated_at": T, "base_model_id": None,
           "base_checksum": None, "dataset_snapshot": None, "n_train": None, "n_valid": None,
           "hyperparams": None, "metrics": None, "verdict": None, "reason": None}
    src = write_lines(
        tmp_path / "a.jsonl",
        {**row, "id": "v7", "path": str(tmp_path / "victim"), "status": "candidate"},
        {**row, "id": "../../../somewhere", "path": None, "status": "training"},
        {**row, "id": "v8", "path": None, "status": "training"},
    )
    report = store.import_jsonl(src)
    assert report.added == {"adapter_version": 2} and [n for n, _ in report.errors] == [3]
    assert store.get_adapter_version("v7")["path"] is None
    assert store.get_adapter_version("v8")["status"] == "failed"


def test_an_over_long_line_is_skipped_unread(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 11: one 200 MB line took 12 GB; lines are read with a bounded buffer."""
    monkeypatch.setattr(export, "MAX_LINE_BYTES", 64 * 1024, raising=False)
    src = write_lines(
        tmp_path / "long.jsonl",
        memory_line("01JLONG0000000000000000001", "x" * 200_000),
        memory_line("01JLONG0000000000000000002", "short one"),
    )
    report = store.import_jsonl(src)
    assert report.added == {"memory": 1}
    assert len(report.errors) == 1 and report.errors[0][0] == 2
    assert "longer than" in report.errors[0][1]


def test_export_into_an_existing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 9: `memory export <existing dir>` crashed; it now writes a dated file there."""
    from agent.cli.main import main
    from memory import embed
    from memory import store as store_module

    monkeypatch.setattr(store_module, "Embedder", embed.HashEmbedder)
    assert main(["memory", "add", "I like tea."]) == 0
    folder = tmp_path / "exports"
    folder.mkdir()
    assert main(["memory", "export", str(folder)]) == 0
    (written,) = folder.iterdir()
    assert written.name.startswith("hearth-export-") and str(written) in capsys.readouterr().out
    assert main(["memory", "import", str(written)]) == 0
    (tmp_path / "a-file").write_text("")
    assert main(["memory", "export", str(tmp_path / "a-file" / "x.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hearth: Cannot write") and "internal error" not in err


def test_every_stored_column_is_declared(store: Store) -> None:
    """A migration that adds a column to an exported table must declare it, or its values
    would be lost by export and refused by import."""
    for spec in RECORD_TYPES:
        live = {row[1] for row in store.db.execute(f"PRAGMA table_info([{spec.table}])")}
        surrogate = export.SURROGATE.get(spec.table)
        assert live - {surrogate} == set(spec.columns) | set(spec.dropped), spec.name


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
COLUMNS = sorted({c for t in RECORD_TYPES for c in (*t.columns, *t.dropped)})
KEYS = st.sampled_from([*COLUMNS, INJECTION_KEY, "rowid", "seq", "id] --", "[text]"]) | st.text(
    max_size=20
)
EXISTING = ["01JEXIST000000000000000001", "01JEXIST000000000000000002"]
IDS = st.sampled_from(EXISTING) | st.text(max_size=30)


@st.composite
def records(draw: st.DrawFn) -> Any:
    """Anything: raw text, any JSON, or a record of a real type with some fields mangled."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.text(max_size=40))
    if choice == 1:
        return draw(VALUES)
    spec = draw(st.sampled_from(RECORD_TYPES))
    obj: dict[str, Any] = {"type": spec.name}
    for name, col in spec.columns.items():
        good = {"text": st.text(max_size=10), "id": IDS, "int": st.integers(-3, 3),
                "real": st.floats(), "bool": st.booleans(), "json": VALUES}[col.kind]
        if col.choices:
            good = st.sampled_from(col.choices)
        roll = draw(st.integers(0, 19))  # mostly well-formed, so lines also reach SQLite
        if roll:
            obj[name] = draw(VALUES if roll == 1 else good)
    obj.update(draw(st.dictionaries(KEYS, VALUES, max_size=2 if choice == 2 else 0)))
    return obj


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(records(), min_size=1, max_size=6))
def test_any_json_imports_or_fails_in_one_line(lines: list[Any], tmp_path: Path) -> None:
    """The class: arbitrary JSON structures and keys give an import or one-line errors, never
    an SQL error or a traceback, and never change a row that was stored before."""
    with Store.open(tmp_path / "p.db", embedder=HashEmbedder()) as store:
        if not store.list_memories():
            cid = store.new_conversation("kept")
            store.add_message(cid, "user", "kept message")
            for mid in EXISTING:
                store.db.execute(
                    "INSERT INTO memories (id, text, kind, created_at, updated_at) "
                    "VALUES (?, 'kept memory', 'fact', ?, ?)", [mid, T, T])
        before = snapshot(store)
        src = tmp_path / "p.jsonl"
        src.write_text("\n".join(
            [json.dumps(HEADER)]
            + [o.replace("\n", " ") if isinstance(o, str) else json.dumps(o) for o in lines]
        ) + "\n", encoding="utf-8", errors="surrogatepass")
        try:
            report = store.import_jsonl(src)
        except StoreError as exc:
            assert "\n" not in str(exc)
            assert not isinstance(exc.__cause__, sqlite3.Error), exc
        else:
            assert all("\n" not in m and "Database error" not in m for _, m in report.errors)
            assert report.skipped_existing + sum(report.added.values()) + len(report.errors) \
                == sum(1 for o in lines if not (isinstance(o, str) and not o.strip()))
        after = snapshot(store)
        assert {k: v for k, v in after.items() if k in before} == before
        assert store.integrity_check() == "ok"
