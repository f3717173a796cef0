"""System prompts, settings and the adapter registry rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory.db import open_database
from memory.embed import HashEmbedder
from memory.errors import NotFoundError, StoreError
from memory.migrations import DEFAULT_SYSTEM_PROMPT, V1_SYSTEM_PROMPT, migrate
from memory.store import Store


def test_system_prompt_versions(store: Store) -> None:
    # a blank database: the first default is kept as history, the current one is active
    assert store.active_system_prompt() == (2, DEFAULT_SYSTEM_PROMPT)
    assert [(r["version"], r["text"], r["active"]) for r in store.system_prompts()] == [
        (1, V1_SYSTEM_PROMPT, False), (2, DEFAULT_SYSTEM_PROMPT, True)]
    assert store.add_system_prompt("Be terse.") == 3
    assert store.active_system_prompt() == (3, "Be terse.")
    store.activate_system_prompt(1)
    assert store.active_system_prompt() == (1, V1_SYSTEM_PROMPT)
    assert [r["active"] for r in store.system_prompts()] == [True, False, False]
    with pytest.raises(NotFoundError):
        store.activate_system_prompt(9)
    assert store.add_system_prompt("Be kind.") == 4  # adding makes the new one active
    assert store.active_system_prompt() == (4, "Be kind.")
    with pytest.raises(StoreError):
        store.add_system_prompt("  ")


def test_answers_are_counted_per_prompt_version(store: Store) -> None:
    conv = store.new_conversation()
    store.add_message(conv, "user", "hi")
    store.add_message(conv, "assistant", "hello", prompt_version=2)
    store.add_message(conv, "assistant", "hey", prompt_version=2)
    assert {r["version"]: r["answers"] for r in store.system_prompts()} == {1: 0, 2: 2}


def _old_database(path: Path, prompts: list[str]) -> None:
    """A database as Hearth wrote it before m006, with extra prompt versions added."""
    db = open_database(path)
    migrate(db, upto="m005_adapter_versions")
    for i, text in enumerate(prompts, 2):
        db.execute("INSERT INTO system_prompts VALUES (?, ?, '2026-01-01T00:00:00.000Z')", [i, text])
    db.conn.commit()
    db.close()


def test_upgrade_moves_the_old_default_to_the_new_one(tmp_path: Path) -> None:
    _old_database(tmp_path / "old.db", [])
    with Store.open(tmp_path / "old.db", embedder=HashEmbedder()) as s:
        assert [(r["version"], r["text"]) for r in s.system_prompts()] == [
            (1, V1_SYSTEM_PROMPT), (2, DEFAULT_SYSTEM_PROMPT)]
        assert s.active_system_prompt() == (2, DEFAULT_SYSTEM_PROMPT)
    with Store.open(tmp_path / "old.db", embedder=HashEmbedder()) as s:  # once only
        assert len(s.system_prompts()) == 2


def test_upgrade_keeps_a_prompt_the_user_wrote(tmp_path: Path) -> None:
    _old_database(tmp_path / "mine.db", ["Answer like a pirate."])
    with Store.open(tmp_path / "mine.db", embedder=HashEmbedder()) as s:
        assert s.active_system_prompt() == (2, "Answer like a pirate.")
        assert len(s.system_prompts()) == 2
    # the user went back to v1 text by writing it again as a newer version: also upgraded
    _old_database(tmp_path / "back.db", ["Answer like a pirate.", V1_SYSTEM_PROMPT])
    with Store.open(tmp_path / "back.db", embedder=HashEmbedder()) as s:
        assert s.active_system_prompt() == (4, DEFAULT_SYSTEM_PROMPT)


def test_settings_round_trip_json(store: Store) -> None:
    assert store.get_setting("x", default=7) == 7
    store.set_setting("x", {"a": [1, 2], "b": None})
    assert store.get_setting("x") == {"a": [1, 2], "b": None}
    store.set_setting("x", None)
    assert store.get_setting("x") is None


def test_adapter_versions_and_single_active(store: Store) -> None:
    a = store.add_adapter_version(base_model_id="smollm2", n_train=10, hyperparams={"lr": 1e-4})
    b = store.add_adapter_version(id="v2", metrics={"nll": 1.5}, status="candidate")
    assert b == "v2"
    assert store.get_adapter_version(a)["hyperparams"] == {"lr": 1e-4}
    assert store.active_adapter() is None
    store.set_active_adapter(a)
    assert store.active_adapter()["id"] == a  # type: ignore[index]
    store.set_active_adapter(b)
    rows = {r["id"]: r["status"] for r in store.list_adapter_versions()}
    assert rows == {a: "retired", b: "active"}
    store.set_active_adapter(None)
    assert store.active_adapter() is None
    assert store.get_adapter_version(b)["status"] == "retired"
    store.update_adapter_version(a, verdict="rejected", reason="worse NLL", status="rejected")
    assert store.get_adapter_version(a)["reason"] == "worse NLL"


def test_adapter_errors(store: Store) -> None:
    a = store.add_adapter_version()
    with pytest.raises(StoreError, match="set_active_adapter"):
        store.update_adapter_version(a, status="active")
    with pytest.raises(StoreError, match="Unknown adapter field"):
        store.add_adapter_version(colour="red")
    with pytest.raises(NotFoundError):
        store.set_active_adapter("nope")
    with pytest.raises(StoreError, match="already exists"):
        store.add_adapter_version(id=a)
    store.set_active_adapter(a)
    with pytest.raises(StoreError, match="is active"):
        store.update_adapter_version(a, status="retired")


def test_adapter_rows_are_frozen_records_that_read_as_mappings(store: Store) -> None:
    import dataclasses

    from memory.records import AdapterRecord

    a = store.add_adapter_version(base_model_id="m", hyperparams={"lr": 1e-4}, n_train=3)
    row = store.get_adapter_version(a)
    assert isinstance(row, AdapterRecord) and row.status == "candidate" and row.n_train == 3
    assert row["hyperparams"] == row.hyperparams == {"lr": 1e-4} and row.get("path") is None
    assert {**row}["id"] == a and "extra" not in row and len(row) == len(list(row))
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = "active"  # type: ignore[misc]
    later = AdapterRecord.from_row({"id": "v9", "created_at": "t", "updated_at": "t",
                                    "status": "rejected", "drift": 0.5})
    assert later["drift"] == 0.5 and later.extra == {"drift": 0.5}  # a later migration's column
