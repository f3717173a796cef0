"""Registry: lineage rows, atomic folders, activate / rollback / delete, binding, corruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapter_helpers import make_adapter, register

from adapters.training import files, registry
from adapters.training.errors import AdapterError
from adapters.training.evaluate import use_adapter


@pytest.fixture
def base(tiny_model_dir: Path) -> registry.Base:
    from agent.llm import models

    ref = models.resolve(str(tiny_model_dir))
    return registry.Base(ref.id, ref.path, ref.checksum)


def test_promotion_records_lineage_and_activates_last(store: Any, base: registry.Base,
                                                      tiny_model_dir: Path, tmp_path: Path) -> None:
    version = register(store, tiny_model_dir, base, tmp_path)
    row = store.get_adapter_version(version)
    assert version == "v1" and row["status"] == "active"
    assert row["base_checksum"] == base.checksum and row["dataset_snapshot"] == "snap1"
    assert row["hyperparams"] == {"rank": 8} and row["verdict"] == "promote"
    folder = Path(row["path"])
    assert folder == registry.root() / "v1"
    manifest = registry.verify(folder, base.checksum)
    assert set(manifest["files"]) == set(registry.ADAPTER_FILES)
    assert not list(registry.root().glob(".tmp-*"))
    assert registry.history(store) == ["v1"]
    assert registry.next_version(store) == "v2"


def test_a_failed_copy_leaves_no_folder(store: Any, base: registry.Base, tiny_model_dir: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_adapter(tmp_path / "src", tiny_model_dir)

    def boom(folder: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files, "fsync_tree", boom)
    with pytest.raises(OSError):
        registry.write_folder("v1", src, {})
    assert list(registry.root().iterdir()) == []


def test_rejected_candidates_are_kept_but_never_served(store: Any, base: registry.Base,
                                                       tiny_model_dir: Path, tmp_path: Path) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path)
    v2 = register(store, tiny_model_dir, base, tmp_path, promote=False, seed=2)
    assert store.get_adapter_version(v2)["status"] == "rejected"
    assert (registry.root() / v2 / "adapters.safetensors").is_file()  # kept for inspection
    with pytest.raises(AdapterError, match="never served"):
        registry.activate(store, v2, base.checksum)
    assert store.active_adapter()["id"] == v1


def test_an_adapter_is_refused_for_another_base(store: Any, base: registry.Base,
                                                tiny_model_dir: Path, tmp_path: Path) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path)
    store.set_active_adapter(None)
    with pytest.raises(AdapterError, match="another base"):
        registry.activate(store, v1, "0" * 64)
    assert registry.serving_path(store, "0" * 64)[0] is None
    with pytest.raises(AdapterError, match="trained for base model"):
        registry.verify(registry.root() / v1, "0" * 64)


def test_rollback_walks_back_through_activations_then_to_base(
    store: Any, base: registry.Base, tiny_model_dir: Path, tmp_path: Path
) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path, seed=1)
    v2 = register(store, tiny_model_dir, base, tmp_path, seed=2)
    v3 = register(store, tiny_model_dir, base, tmp_path, seed=3)
    registry.activate(store, v1, base.checksum)  # the user went back to v1 by hand
    assert registry.history(store) == [v2, v3, v1]
    assert registry.rollback(store, base.checksum) == v3
    assert "rolled back" in store.get_adapter_version(v1)["reason"]
    assert registry.rollback(store, base.checksum) == v2
    assert registry.rollback(store, base.checksum) is None
    assert store.active_adapter() is None
    with pytest.raises(AdapterError, match="nothing to roll back"):
        registry.rollback(store, base.checksum)


def test_corrupt_active_adapter_falls_back_to_the_previous_one(
    store: Any, base: registry.Base, tiny_model_dir: Path, tmp_path: Path, tiny: tuple[Any, Any]
) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path, seed=1)
    v2 = register(store, tiny_model_dir, base, tmp_path, seed=2)
    weights = registry.root() / v2 / "adapters.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    path, problems = registry.serving_path(store, base.checksum)
    assert path == registry.root() / v1 and "corrupt" in problems[0]
    model, _ = tiny
    with pytest.raises(AdapterError, match="cannot be loaded"):
        use_adapter(model, registry.root() / v2)
    use_adapter(model, path)  # the previous one serves


def test_delete_refuses_the_active_one_unless_forced(store: Any, base: registry.Base,
                                                     tiny_model_dir: Path, tmp_path: Path) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path, seed=1)
    v2 = register(store, tiny_model_dir, base, tmp_path, seed=2)
    with pytest.raises(AdapterError, match="active adapter"):
        registry.delete(store, v2)
    registry.delete(store, v1)
    assert not (registry.root() / v1).exists()
    assert store.get_adapter_version(v1)["path"] is None
    registry.delete(store, v2, force=True)
    assert store.active_adapter() is None and not (registry.root() / v2).exists()
    assert registry.history(store) == []


def test_recover_cleans_up_after_a_killed_refresh(store: Any, base: registry.Base,
                                                  tiny_model_dir: Path, tmp_path: Path) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path)
    stuck = registry.begin(store, base, "snapX", 8, 2, {})
    (registry.root() / stuck).mkdir()  # renamed into place, row never updated
    (registry.root() / ".tmp-v9-abc").mkdir()
    (registry.root() / "v7").mkdir()  # a folder no row knows
    notes = registry.recover(store)
    assert len(notes) == 3
    assert store.get_adapter_version(stuck)["status"] == "failed"
    assert sorted(p.name for p in registry.root().iterdir()) == [v1]
    assert store.active_adapter()["id"] == v1


def test_manifest_format_is_checked(store: Any, base: registry.Base, tiny_model_dir: Path,
                                    tmp_path: Path) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path)
    manifest = registry.root() / v1 / registry.MANIFEST
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(AdapterError, match="format 99"):
        registry.verify(registry.root() / v1)
