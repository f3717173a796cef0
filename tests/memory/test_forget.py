"""Forgetting is real: rows, FTS, embeddings, copies in later prompts, and the file bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from mem_helpers import db_files

import memory.db
from memory.errors import NotFoundError
from memory.store import Store

MARKER = "Qzxv7Marker91"


def disk_bytes(store: Store) -> bytes:
    return b"".join(p.read_bytes() for p in db_files(store.path))


def on_disk(store: Store, text: str) -> bool:
    blob = disk_bytes(store)
    return any(v.encode() in blob for v in (text, text.lower(), text.upper()))


def in_fts_vocab(store: Store, term: str) -> bool:
    found = False
    for table in ("memories_fts", "chunks_fts", "messages_fts"):
        store.db.execute(f"CREATE VIRTUAL TABLE temp.v_{table} USING fts5vocab(main, {table}, row)")
        row = store.db.execute(f"SELECT 1 FROM temp.v_{table} WHERE term = ?", [term.lower()])
        found = found or row.fetchone() is not None
        store.db.execute(f"DROP TABLE temp.v_{table}")
    return found


def used_in_later_answer(store: Store, hit_kind: str, text: str) -> str:
    """Record a turn whose prompt quoted `text` and whose hits name it, as agent/ does."""
    hits = store.search(text, k=3)
    assert any(h.kind == hit_kind for h in hits)
    cid = store.new_conversation()
    question = "what did I say?"
    store.add_message(cid, "user", question)
    quoted = "\n".join("> " + line for line in text.splitlines())
    prompt = [{"role": "user", "content": f"Notes:\n[1] src\n{quoted}\n\nMy question: {question}"}]
    aid = store.add_message(cid, "assistant", "You said so.", prompt_messages=prompt, hits=hits)
    store.add_feedback(aid, "accepted")
    return aid


@pytest.fixture(params=["vacuum", "no-vacuum"], autouse=True)
def vacuum_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test with VACUUM forced and with VACUUM never run: secure_delete, the FTS
    merge and the WAL truncation alone must already remove the bytes."""
    monkeypatch.setattr(
        memory.db, "VACUUM_FREE_FRACTION", -1.0 if request.param == "vacuum" else 2.0
    )
    return str(request.param)


def test_forget_memory_removes_every_byte(store: Store) -> None:
    keep = store.add_memory("My favourite colour is green.")
    old = store.add_memory(f"My locker code is {MARKER} 1.")
    mid = store.supersede_memory(old, f"My locker code is {MARKER} 2.\nIt opens on the left.")
    aid = used_in_later_answer(store, "memory", store.get_memory(mid).text)
    store.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    assert on_disk(store, MARKER) and in_fts_vocab(store, MARKER)
    generation = store.forget_generation()

    report = store.forget_memory(mid)

    assert set(report.ids) == {old, mid} and report.purged
    assert report.flagged_examples == [aid]
    assert not on_disk(store, MARKER)
    assert not in_fts_vocab(store, MARKER)
    assert store.search(MARKER) == []
    assert [m.id for m in store.list_memories(include_superseded=True)] == [keep]
    assert store.search("favourite colour", kinds=["memory"])[0].id == keep  # rowids intact
    answer = store.get_message(aid)
    assert MARKER not in str(answer.prompt_messages) and MARKER not in str(answer.hits)
    assert store.accepted_examples() == []
    assert [e.forgotten for e in store.accepted_examples(include_forgotten=True)] == [True]
    assert store.forget_generation() > generation
    assert [r["message_id"] for r in store.forgotten_since(None)] == [aid]
    (audit,) = store.db.execute("SELECT kind, ids FROM deletions").fetchall()
    assert audit[0] == "memory" and MARKER not in audit[1] and mid in audit[1]
    (n,) = store.db.execute(
        "SELECT count(*) FROM embeddings WHERE owner_id IN (?, ?)", [old, mid]
    ).fetchone()
    assert n == 0


def test_forget_message_scrubs_later_prompts(store: Store) -> None:
    cid = store.new_conversation()
    uid = store.add_message(cid, "user", f"My passport number is {MARKER}.")
    prompt1 = [{"role": "user", "content": f"My passport number is {MARKER}."}]
    a1 = store.add_message(cid, "assistant", "Noted.", prompt_messages=prompt1)
    store.add_feedback(a1, "accepted")
    u2 = store.add_message(cid, "user", "Thanks, and the weather?")
    prompt2 = [
        *prompt1,
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Thanks, and the weather?"},
    ]
    a2 = store.add_message(cid, "assistant", "Sunny.", prompt_messages=prompt2)
    store.search("passport")  # embeds it
    assert on_disk(store, MARKER)

    report = store.forget_message(uid)

    assert set(report.scrubbed_messages) == {a1, a2}
    assert report.flagged_examples == [a1]
    assert not on_disk(store, MARKER) and not in_fts_vocab(store, MARKER)
    assert [m.id for m in store.conversation_messages(cid)] == [a1, u2, a2]
    assert store.get_message(a2).prompt_messages[0]["content"] == "[forgotten]"
    assert store.accepted_examples() == []


def test_forget_accepted_answer_flags_it(store: Store) -> None:
    cid = store.new_conversation()
    store.add_message(cid, "user", "q")
    aid = store.add_message(cid, "assistant", f"The answer is {MARKER}.", prompt_messages=[])
    store.add_feedback(aid, "edited", f"Really {MARKER}!")
    store.forget_message(aid)
    assert not on_disk(store, MARKER)
    assert store.forgotten_since(None)[0]["message_id"] == aid
    assert store.forgotten_since(None)[0]["reason"] == "deleted"
    assert store.forgotten_since("2999-01-01") == []


def test_forget_conversation(store: Store) -> None:
    cid = store.new_conversation(title="private")
    ids = [
        store.add_message(cid, "user", f"secret {MARKER}"),
        store.add_message(cid, "assistant", "ok"),
    ]
    other = store.new_conversation()
    store.add_message(other, "user", "unrelated")
    report = store.forget_conversation(cid)
    assert report.ids == [cid, *ids]
    assert not on_disk(store, MARKER)
    assert [c.id for c in store.list_conversations()] == [other]
    with pytest.raises(NotFoundError):
        store.conversation_messages(cid)


def test_forget_document(store: Store, tmp_path: Path) -> None:
    doc = tmp_path / "diary.md"
    doc.write_text(f"# Diary\n\nToday I hid the key: {MARKER}.\n\nOther notes here.\n")
    store.ingest(doc)
    chunk = store.document_chunks(str(doc.resolve()))[0]
    aid = used_in_later_answer(store, "document", chunk)
    assert on_disk(store, MARKER)
    (document,) = store.list_documents()

    report = store.forget_document(document.path)

    assert report.ids == [document.id] and report.flagged_examples == [aid]
    assert not on_disk(store, MARKER) and not in_fts_vocab(store, MARKER)
    assert store.list_documents() == []
    assert store.search("diary key", kinds=["document"]) == []


def test_short_texts_are_scrubbed_only_in_their_conversation(store: Store) -> None:
    c1, c2 = store.new_conversation(), store.new_conversation()
    yes = store.add_message(c1, "user", "yes")
    a1 = store.add_message(
        c1, "assistant", "ok", prompt_messages=[{"role": "user", "content": "yes"}]
    )
    a2 = store.add_message(
        c2, "assistant", "ok", prompt_messages=[{"role": "user", "content": "yes"}]
    )
    report = store.forget_message(yes)
    assert report.scrubbed_messages == [a1]
    assert store.get_message(a2).prompt_messages == [{"role": "user", "content": "yes"}]


def test_forget_unknown_ids(store: Store) -> None:
    for forget in (
        store.forget_memory,
        store.forget_message,
        store.forget_conversation,
        store.forget_document,
    ):
        with pytest.raises(NotFoundError):
            forget("nope")


def test_batch_forget_then_purge(store: Store) -> None:
    ids = [store.add_memory(f"note {i} {MARKER}") for i in range(3)]
    for mid in ids:
        assert store.forget_memory(mid, purge=False).purged
    assert store.purge()
    assert not on_disk(store, MARKER)


def test_vacuum_runs_only_when_much_is_free(store: Store, vacuum_mode: str) -> None:
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    store.forget_memory(store.add_memory("short lived"))
    assert ("VACUUM" in statements) == (vacuum_mode == "vacuum")


def answer_with_prompt(store: Store, question: str) -> str:
    """Record an answer whose prompt is built by the real prompt layer from a search."""
    from agent.llm.prompt import user_content

    hits = store.search(question, k=3)
    cid = store.new_conversation()
    store.add_message(cid, "user", question)
    prompt = [{"role": "user", "content": user_content(question, hits)}]
    return store.add_message(cid, "assistant", "ok", prompt_messages=prompt, hits=hits)


def test_forget_finds_the_defused_copy_in_later_prompts(store: Store) -> None:
    """Issue 11 defect 4a: text with `<|` is quoted defused; the scrub looked for the raw text."""
    mid = store.add_memory(f"My locker code is {MARKER} <|im_end|> keep it quiet.")
    aid = answer_with_prompt(store, "what is my locker code?")
    assert "\u2060" in store.get_message(aid).prompt_messages[0]["content"]  # it was defused
    store.forget_memory(mid)
    assert MARKER not in str(store.get_message(aid).prompt_messages)
    assert not on_disk(store, MARKER)


def test_forget_first_message_scrubs_the_title(store: Store) -> None:
    """Issue 11 defect 4b: the title (the first 60 characters of the first message, as
    `agent.core.turn` makes it) kept a forgotten first message."""
    text = f"My bank PIN is {MARKER} and my mother's maiden name is Quux, please note both."
    cid = store.new_conversation(title=text[:60])
    uid = store.add_message(cid, "user", text)
    other = store.new_conversation(title="weekend plans")
    store.forget_message(uid)
    titles = {c.id: c.title for c in store.list_conversations()}
    assert titles == {cid: "[forgotten]", other: "weekend plans"}
    assert not on_disk(store, MARKER)


def test_forget_document_scrubs_its_name_from_later_prompts(
    store: Store, tmp_path: Path
) -> None:
    """Issue 11 defect 4c: the `doc NAME #n` label stayed in later answers' prompts."""
    doc = tmp_path / f"{MARKER}-adoption-papers.md"
    doc.write_text("The adoption papers are in the blue folder on the shelf.\n")
    store.ingest(doc)
    aid = answer_with_prompt(store, "where are the adoption papers?")
    assert MARKER in str(store.get_message(aid).prompt_messages)  # the label named the file
    store.forget_document(str(doc.resolve()))
    answer = store.get_message(aid)
    assert MARKER not in str(answer.prompt_messages) and MARKER not in str(answer.hits)
    assert not on_disk(store, MARKER)
