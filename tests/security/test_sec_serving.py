"""Issue 11 §14 and §4f: nothing is served that was not verified when it is loaded, a failed
check falls back for real, `doctor` says what actually serves, and no adapter trained on a
forgotten answer is served again (retired ones are deleted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.training import registry
from adapters.training.errors import AdapterError
from agent.core.turn import Chat
from agent.llm.runtime import Runtime, SamplingOptions
from memory.embed import HashEmbedder
from memory.store import Store
from tests.conftest import write_lora_adapter


@pytest.fixture
def store(hearth_home: Path):  # type: ignore[no-untyped-def]
    s = Store.open(embedder=HashEmbedder())
    yield s
    s.close()


@pytest.fixture
def chat(tiny_runtime: Runtime, store: Store) -> Chat:
    return Chat(tiny_runtime, store, options=SamplingOptions(temperature=0.0, max_tokens=3))


def promote(chat: Chat, store: Store, tmp: Path, seed: int, message_ids: list[str] | None = None,
            checksum: Any = "same", base_checksum: str | None = None) -> str:
    base = registry.Base("tiny", chat.runtime.ref.path, base_checksum or chat.runtime.ref.checksum)
    version = registry.begin(store, base, f"snap{seed}", 8, 2, {})
    src = write_lora_adapter(chat.runtime.ref.path, tmp / f"src{seed}", seed=seed)
    folder = registry.write_folder(version, src, {
        "base_model_id": base.id, "message_ids": message_ids or [],
        "base_checksum": base.checksum if checksum == "same" else checksum})
    registry.record(store, version, folder, True, "promote", "test", {})
    return version


def folder(version: str) -> Path:
    """A version's folder, where the registry writes it (spelled out: the test runs on old
    code too, to show the defect)."""
    return registry.root() / version


def served(chat: Chat) -> str | None:
    list(chat.send("hello"))
    return chat.adapter_version()


def test_weights_swapped_after_activation_are_not_served(chat: Chat, store: Store,
                                                         tmp_path: Path) -> None:
    v1 = promote(chat, store, tmp_path, 1)
    assert served(chat) == v1
    v2 = promote(chat, store, tmp_path, 2)
    other = write_lora_adapter(chat.runtime.ref.path, tmp_path / "evil", seed=9)
    (folder(v2) / "adapters.safetensors").write_bytes(
        (other / "adapters.safetensors").read_bytes())  # well-formed, but not what was judged
    events = list(chat.send("hi"))
    assert chat.adapter_version() == v1  # the previous verified one, for real
    assert any("corrupt" in e.text for e in events if e.kind == "notice")


def test_a_folder_without_manifest_is_not_served(chat: Chat, store: Store, tmp_path: Path) -> None:
    v1 = promote(chat, store, tmp_path, 1)
    (folder(v1) / registry.MANIFEST).unlink()
    assert served(chat) is None and chat.runtime.adapter_path is None


def test_a_null_base_checksum_fails_instead_of_skipping(chat: Chat, store: Store,
                                                        tmp_path: Path) -> None:
    v1 = promote(chat, store, tmp_path, 1, checksum=None)
    assert served(chat) is None
    with pytest.raises(AdapterError, match="trained for base model"):
        registry.verify(folder(v1), chat.runtime.ref.checksum)
    store.add_adapter_version(id="v9", path="x", status="candidate", base_checksum=None)
    with pytest.raises(AdapterError, match="another base"):
        registry.activate(store, "v9", chat.runtime.ref.checksum)


def test_a_load_failure_falls_back_to_the_previous_verified(chat: Chat, store: Store,
                                                            tmp_path: Path) -> None:
    v1 = promote(chat, store, tmp_path, 1)
    assert served(chat) == v1
    v2 = promote(chat, store, tmp_path, 2)
    target = folder(v2)
    config = target / "adapter_config.json"  # consistent hashes, unloadable content
    config.write_text(json.dumps({"fine_tune_type": "lora", "num_layers": 1,  # weights: 2 layers
                                  "lora_parameters": {"rank": 4, "scale": 1.0, "dropout": 0.0}}))
    manifest = json.loads((target / registry.MANIFEST).read_text())
    manifest["files"]["adapter_config.json"] = registry.files.sha256_file(config)
    (target / registry.MANIFEST).write_text(json.dumps(manifest))
    list(chat.send("hi"))
    assert chat.adapter_version() == v1


def test_doctor_names_what_really_serves(chat: Chat, store: Store, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli.main import main
    from agent.llm import models

    real = models.folder_checksum(chat.runtime.ref.path)  # what doctor computes for --model
    v1 = promote(chat, store, tmp_path, 1, base_checksum=real)
    v2 = promote(chat, store, tmp_path, 2, base_checksum=real)
    (folder(v2) / registry.MANIFEST).unlink()
    (folder(v1) / "adapters.safetensors").write_bytes(b"garbage")
    main(["--model", str(chat.runtime.ref.path), "doctor"])
    line = next(x for x in capsys.readouterr().out.splitlines() if " adapter:" in x)
    assert line.startswith("FAIL") and "no readable manifest" in line
    assert "serves the base model instead" in line, line


def test_adapters_trained_on_forgotten_answers_are_refused_and_deleted(
        chat: Chat, store: Store, tmp_path: Path) -> None:
    conv = store.new_conversation()
    store.add_message(conv, "user", "my locker code?")
    secret = store.add_message(conv, "assistant", "It is 9911.", prompt_messages=[
        {"role": "user", "content": "my locker code?"}])
    store.add_feedback(secret, "accepted")
    v1 = promote(chat, store, tmp_path, 1, message_ids=[secret])
    v2 = promote(chat, store, tmp_path, 2)  # v1 is retired now, still on disk
    assert folder(v1).is_dir()
    store.forget_message(secret)
    with pytest.raises(AdapterError, match="forgotten"):
        registry.activate(store, v1, chat.runtime.ref.checksum)
    done = registry.purge_forgotten(store)
    assert f"deleted {v1} (trained on forgotten answers)" in done
    assert not folder(v1).exists() and folder(v2).is_dir()
    assert registry.rollback(store, chat.runtime.ref.checksum) is None  # v1 is not brought back


def test_an_active_adapter_trained_on_a_forgotten_answer_stops_serving(
        chat: Chat, store: Store, tmp_path: Path) -> None:
    conv = store.new_conversation()
    store.add_message(conv, "user", "q")
    secret = store.add_message(conv, "assistant", "a secret", prompt_messages=[
        {"role": "user", "content": "q"}])
    store.add_feedback(secret, "accepted")
    v1 = promote(chat, store, tmp_path, 1, message_ids=[secret])
    assert served(chat) == v1
    store.forget_message(secret)
    assert served(chat) is None
