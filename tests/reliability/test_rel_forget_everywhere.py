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
