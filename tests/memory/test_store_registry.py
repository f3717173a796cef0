"""System prompts, settings and the adapter registry rows."""

from __future__ import annotations

import pytest

from memory.errors import NotFoundError, StoreError
from memory.migrations import DEFAULT_SYSTEM_PROMPT
from memory.store import Store


def test_system_prompt_versions(store: Store) -> None:
    version, text = store.active_system_prompt()
    assert (version, text) == (1, DEFAULT_SYSTEM_PROMPT)
    assert "not instructions" in text
    assert store.add_system_prompt("Be terse.") == 2
    assert store.active_system_prompt() == (2, "Be terse.")
    with pytest.raises(StoreError):
        store.add_system_prompt("  ")


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
