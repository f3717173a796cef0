"""Forgetting leaves no byte under HEARTH_HOME (issue 11, the forgetting class).

A unique marker per door is entered through the real chat and store, is used by a later
answer (so copies land in its recorded prompt and hits), is forgotten, and then every file
under HEARTH_HOME (the database, its -wal/-shm, logs, runs, adapters, caches: everything) is
scanned for the marker's bytes. Doors covered here: a memory (with a chat-template marker, so
its recorded copy is the defused form), a message, a conversation title (the start of the
first message), a document's content and a document's name.

To add a door (a crash, a training run, an adapter trained on it): give it a marker in
`MARKERS`, enter it, forget it, and `assert_nothing_left` covers it, since it scans every file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKERS = {
    "memory": "Zq7mem4x",
    "message": "Zq7msg4x",
    "title": "Zq7ttl4x",
    "document content": "Zq7doc4x",
    "document name": "Zq7nam4x",
}


def encodings(marker: str) -> list[bytes]:
    """The byte forms a marker can take in a file: UTF-8 as typed, lower- and upper-case
    (FTS stores lowercased terms), and UTF-16 (either byte order)."""
    forms = {marker, marker.lower(), marker.upper()}
    return sorted({f.encode(enc) for f in forms for enc in ("utf-8", "utf-16-le", "utf-16-be")})


def files_holding(home: Path, marker: str) -> list[Path]:
    """Every file under `home` (recursively, links not followed) holding any form of `marker`."""
    needles = encodings(marker)
    found = []
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(path)
    return found


def assert_nothing_left(home: Path, markers: dict[str, str]) -> None:
    left = {door: files_holding(home, m) for door, m in markers.items()}
    assert {door: files for door, files in left.items() if files} == {}


def test_a_marker_through_every_memory_door_leaves_no_byte_under_hearth_home(
    tiny_runtime: Any, hearth_home: Path, tmp_path: Path
) -> None:
    from agent.core.turn import Chat
    from agent.llm.runtime import SamplingOptions
    from memory.embed import HashEmbedder
    from memory.store import Store

    m = MARKERS
    docs = tmp_path / "docs"
    docs.mkdir()
    doc = docs / f"{m['document name']}-adoption-papers.md"
    doc.write_text(f"The adoption papers, reference {m['document content']}, are in the blue folder.\n")
    first = (f"Note {m['title']}: my PIN for the bank card is important to me, "
             f"it is {m['message']} and nobody else knows it.")
    assert m["title"] in first[:60] and m["message"] not in first[:60]

    with Store.open(embedder=HashEmbedder()) as store:
        memory_id = store.add_memory(f"My locker code is {m['memory']} <|im_end|> keep it quiet.")
        store.ingest(docs)
        chat = Chat(tiny_runtime, store, options=SamplingOptions(max_tokens=3, seed=0))
        chat.ask(first)
        first_id = store.conversation_messages(chat.conversation_id)[0].id
        chat.new_conversation()
        later = chat.ask("my locker code? the adoption papers? my PIN for the bank card?")
        chat.feedback("accepted")
        recorded = " ".join(p["content"] for p in store.get_message(later.message_id).prompt_messages)
        for door in ("message", "document content", "document name"):
            assert m[door] in recorded, door  # the later answer really carried each copy
        assert "\u2060" in recorded and m["memory"] in recorded  # the defused memory copy
        store.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        assert all(files_holding(hearth_home, marker) for marker in m.values())

        store.forget_memory(memory_id)
        store.forget_message(first_id)
        store.forget_document(str(doc.resolve()))

        assert_nothing_left(hearth_home, MARKERS)
        assert [c.title for c in store.list_conversations()].count("[forgotten]") == 1
    assert_nothing_left(hearth_home, MARKERS)  # and after closing


# -- the adapter and agent doors (issue 11b) --------------------------------------------------

ADAPTER_MARKERS = {
    "crash": "Zq7crs4x",
    "training run": "Zq7run4x",
    "adapter": "Zq7adp4x",
}


def test_a_marker_through_crash_training_run_and_adapter_leaves_no_byte(
    tiny_model_dir: Path, hearth_home: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """A crashing command that carried a marker, a failed refresh whose run folder holds the
    accepted answers, and a (retired) adapter trained on them: after the conversations are
    forgotten through the one forget path, no byte is left and the adapter's folder is gone."""
    import sys

    import pytest

    from adapters.jobs import refresh
    from adapters.training import registry
    from adapters.training.config import RefreshPolicy, TrainConfig
    from adapters.training.errors import AdapterError
    from agent.core.forgetting import forget
    from agent.foundation.crashlog import log_crash
    from memory.embed import HashEmbedder
    from memory.store import Store
    from tests.adapters.adapter_helpers import seed
    from tests.conftest import write_lora_adapter

    m = ADAPTER_MARKERS
    monkeypatch.setattr(sys, "argv", ["hearth", "ask", f"my code is {m['crash']} really"])
    log_crash(RuntimeError(f"choked on {m['crash']!r}"), "cli")  # what main() does on a crash
    with Store.open(embedder=HashEmbedder()) as store:
        ids = seed(store, [(f"question {i}", f"{m['training run']} {m['adapter']} answer {i}")
                           for i in range(4)])
        policy = RefreshPolicy(min_accepted=3, min_valid=1, skip_on_battery=False,
                               skip_if_active_minutes=0)
        with pytest.raises(AdapterError, match="cannot load the base model"):  # dies after the run dir
            refresh.refresh(store, registry.Base("gone", tmp_path / "none", "c0"), policy,
                            TrainConfig(iters=1), force=True)
        base = registry.Base("tiny", tiny_model_dir, "tiny-checksum")
        versions = []
        for n, trained_on in ((1, ids), (2, [])):  # v1 learned the answers, then v2 replaces it
            version = registry.begin(store, base, f"snap-{n}", 4, 1, {})
            src = write_lora_adapter(tiny_model_dir, tmp_path / f"src{n}", seed=n)
            folder = registry.write_folder(version, src, {"base_model_id": "tiny",
                                                          "message_ids": trained_on,
                                                          "base_checksum": "tiny-checksum"})
            registry.record(store, version, folder, True, "promote", "test", {})
            versions.append(version)
        learned = registry.root() / versions[0]
        assert store.get_adapter_version(versions[0])["status"] == "retired" and learned.is_dir()
        assert files_holding(hearth_home, m["training run"]) and files_holding(hearth_home, m["adapter"])
        crash_log = hearth_home / "data" / "logs" / "crash.log"
        assert "RuntimeError" in crash_log.read_text()  # the crash was logged, its text never was
        assert not files_holding(hearth_home, m["crash"])

        for mid in ids:
            forget(store, "conversation", store.get_message(mid).conversation_id)
        assert_nothing_left(hearth_home, ADAPTER_MARKERS)
        assert not learned.exists(), "a retired adapter kept weights trained on forgotten answers"
        assert (registry.root() / versions[1]).is_dir()
    assert_nothing_left(hearth_home, ADAPTER_MARKERS)
