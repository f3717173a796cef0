"""Corruption (issue 7 §5): a truncated or garbled adapter file or database gives a clear
one-line error, the previous adapter (or the base) serves, `hearth doctor` says how to
recover, and restoring a `hearth backup` works. (A damaged converted-model cache is rebuilt
by `Runtime.open`; tests/agent/test_runtime.py covers it.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main
from agent.foundation import paths
from tests.conftest import write_lora_adapter

ROOT = Path(__file__).resolve().parents[2]


def promote(store: Any, model_dir: Path, version: str, seed: int) -> Path:
    """An adapter promoted the way refresh does it: registry folder with manifest, active row."""
    from adapters.training import registry

    src = write_lora_adapter(model_dir, paths.data_dir() / f"src-{version}", seed)
    store.add_adapter_version(id=version, base_model_id="tiny", base_checksum="tiny-checksum",
                              dataset_snapshot="s", n_train=1, n_valid=1, hyperparams={},
                              status="training")
    folder = registry.write_folder(version, src, {"base_checksum": "tiny-checksum"})
    shutil.rmtree(src)
    registry.record(store, version, folder, True, "promote", "test", {})
    return folder


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(data[:8] + os.urandom(len(data) - 8))


@pytest.mark.parametrize("how", ["truncate", "garble"])
def test_a_damaged_adapter_keeps_the_previous_one_serving(
    how: str, tiny_runtime: Any, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.core.turn import Chat
    from agent.llm.runtime import SamplingOptions
    from memory.embed import HashEmbedder
    from memory.store import Store

    store = Store.open(embedder=HashEmbedder())
    v1 = promote(store, tiny_model_dir, "v1", seed=1)
    chat = Chat(tiny_runtime, store, options=SamplingOptions(max_tokens=3))
    first = list(chat.send("hello"))
    assert any(e.kind == "notice" and "now using adapter v1" in e.text for e in first)
    assert tiny_runtime.adapter_path == v1

    v2 = promote(store, tiny_model_dir, "v2", seed=2)
    damage(v2 / "adapters.safetensors", how)
    events = list(chat.send("are you still there?"))
    notices = [e.text for e in events if e.kind == "notice"]
    assert len(notices) == 1 and "\n" not in notices[0], notices
    assert "still serving the previous one" in notices[0]
    assert events[-1].kind == "done" and events[-1].message_id  # the answer still comes
    assert tiny_runtime.adapter_path == v1 and chat.adapter_version() == "v1"
    store.close()

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL adapter: v2" in out and "corrupt" in out
    assert "hearth adapters rollback" in out and "hearth backup" in out
    # the fix doctor names moves off v2 (--model: no conversion of the bundled model here)
    assert main(["--model", str(tiny_model_dir), "adapters", "rollback"]) == 0
    with Store.open(embedder=HashEmbedder()) as store:
        assert (store.active_adapter() or {}).get("id") != "v2"


def test_a_damaged_first_adapter_leaves_the_base_serving(tiny_runtime: Any, tiny_model_dir: Path) -> None:
    from agent.core.turn import Chat
    from agent.llm.runtime import SamplingOptions
    from memory.embed import HashEmbedder
    from memory.store import Store

    with Store.open(embedder=HashEmbedder()) as store:
        v1 = promote(store, tiny_model_dir, "v1", seed=1)
        damage(v1 / "adapters.safetensors", "truncate")
        chat = Chat(tiny_runtime, store, options=SamplingOptions(max_tokens=3))
        events = list(chat.send("hello"))
        assert any(e.kind == "notice" and "still serving" in e.text for e in events)
        assert events[-1].kind == "done" and tiny_runtime.adapter_path is None


def hearth(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEARTH_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "agent.cli.main", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("how", ["truncate", "garble"])
def test_a_damaged_database_is_one_line_and_a_backup_restores_it(
    how: str, hearth_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from memory.embed import HashEmbedder
    from memory.store import Store

    with Store.open(embedder=HashEmbedder()) as store:
        for i in range(200):
            store.add_message(store.new_conversation(), "user", f"message {i} " + "x" * 500)
        backup = store.backup(tmp_path / "backup.db")
    db = paths.db_path()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    damage(db, how)

    proc = hearth(hearth_home, "history", "list")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hearth: "), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "backup" in lines[0]

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL database" in out and "hearth backup" in out

    shutil.copyfile(backup, db)  # the recovery doctor describes
    proc = hearth(hearth_home, "history", "list")
    assert proc.returncode == 0, proc.stderr
    with Store.open(embedder=HashEmbedder()) as store:
        assert store.integrity_check() == "ok"
        assert len(store.list_conversations()) == 200


def test_export_import_restores_into_a_fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from memory.embed import HashEmbedder
    from memory.store import Store

    with Store.open(embedder=HashEmbedder()) as store:
        mid = store.add_message(store.new_conversation(), "assistant", "the answer",
                                prompt_messages=[{"role": "user", "content": "the question"}])
        store.add_feedback(mid, "accepted")
        store.add_memory("I prefer tea")
        store.export_jsonl(tmp_path / "all.jsonl")
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "new-home"))
    with Store.open(embedder=HashEmbedder()) as store:
        store.import_jsonl(tmp_path / "all.jsonl")
        assert [a.message_id for a in store.accepted_examples()] == [mid]
        assert [m.text for m in store.list_memories()] == ["I prefer tea"]
    assert json.loads((tmp_path / "all.jsonl").read_text().splitlines()[0])
