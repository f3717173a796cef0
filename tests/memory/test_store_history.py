"""Conversations, messages, feedback and accepted examples."""

from __future__ import annotations

import pytest

from memory.errors import NotFoundError, StoreError
from memory.retrieval import Hit
from memory.store import Store

PROMPT = [{"role": "system", "content": "sys"}, {"role": "user", "content": "What is 2+2?"}]


def answer(store: Store, text: str = "4", question: str = "What is 2+2?") -> tuple[str, str]:
    cid = store.new_conversation("maths")
    store.add_message(cid, "user", question)
    prompt = [{"role": "system", "content": "sys"}, {"role": "user", "content": question}]
    return cid, store.add_message(cid, "assistant", text, prompt_messages=prompt)


def test_messages_keep_everything_needed_to_reproduce(store: Store) -> None:
    cid = store.new_conversation("first")
    hit = Hit("memory", "M1", "I like tea", 0.03, "memory (typed by you, 2026-01-01)", "2026-01-01")
    mid = store.add_message(
        cid,
        "assistant",
        "Hello",
        model_id="smollm2",
        adapter_version="A1",
        prompt_version=1,
        prompt_messages=PROMPT,
        hits=[hit],
        tokens_prompt=12,
        tokens_completion=3,
        latency_ms=50.5,
        tokens_per_s=30.0,
    )
    msg = store.get_message(mid)
    assert (msg.conversation_id, msg.role, msg.text) == (cid, "assistant", "Hello")
    assert (msg.model_id, msg.adapter_version, msg.prompt_version) == ("smollm2", "A1", 1)
    assert msg.prompt_messages == PROMPT
    assert msg.hits == [hit.to_dict()]
    assert (msg.tokens_prompt, msg.tokens_completion) == (12, 3)
    assert (msg.latency_ms, msg.tokens_per_s) == (50.5, 30.0)
    assert msg.feedback is None


def test_conversation_listing_and_order(store: Store) -> None:
    a = store.new_conversation("a")
    b = store.new_conversation()
    ids = [store.add_message(a, role, f"m{i}") for i, role in enumerate(["user", "assistant"] * 3)]
    store.add_message(b, "user", "in b")
    assert [m.id for m in store.conversation_messages(a)] == ids
    convs = store.list_conversations()
    assert [c.id for c in convs] == [b, a]
    assert [c.n_messages for c in convs] == [1, 6]
    store.set_conversation_title(b, "renamed")
    assert store.list_conversations(limit=1)[0].title == "renamed"


def test_bad_message_arguments(store: Store) -> None:
    cid = store.new_conversation()
    with pytest.raises(NotFoundError, match="new_conversation"):
        store.add_message("nope", "user", "x")
    with pytest.raises(StoreError, match="role"):
        store.add_message(cid, "robot", "x")
    with pytest.raises(StoreError, match="Unknown message field"):
        store.add_message(cid, "user", "x", temperature=0.1)
    with pytest.raises(NotFoundError):
        store.get_message("missing")
    with pytest.raises(NotFoundError):
        store.conversation_messages("missing")


def test_feedback_latest_wins_and_edit_is_target(store: Store) -> None:
    _, a1 = answer(store, "four")
    _, a2 = answer(store, "5", "What is 2+3?")
    _, a3 = answer(store, "no idea", "What is 3+3?")
    store.add_feedback(a1, "accepted")
    store.add_feedback(a2, "edited", "It is 5.")
    store.add_feedback(a3, "accepted")
    store.add_feedback(a3, "rejected")
    examples = store.accepted_examples()
    assert [e.message_id for e in examples] == [a1, a2]
    assert [e.target for e in examples] == ["four", "It is 5."]
    assert examples[1].prompt_messages[-1] == {"role": "user", "content": "What is 2+3?"}
    assert not any(e.forgotten for e in examples)
    assert store.get_message(a3).feedback == "rejected"
    assert store.get_message(a2).edited_text == "It is 5."
    store.add_feedback(a2, "accepted")  # accepting after an edit keeps the edit as target
    assert store.accepted_examples()[-1].target == "It is 5."


def test_feedback_validation(store: Store) -> None:
    cid, aid = answer(store)
    uid = store.conversation_messages(cid)[0].id
    with pytest.raises(StoreError, match="assistant"):
        store.add_feedback(uid, "accepted")
    with pytest.raises(StoreError, match="edited_text"):
        store.add_feedback(aid, "edited")
    with pytest.raises(StoreError, match="not one of"):
        store.add_feedback(aid, "loved")
    with pytest.raises(NotFoundError):
        store.add_feedback("missing", "accepted")


def test_answers_without_prompt_are_not_examples(store: Store) -> None:
    cid = store.new_conversation()
    aid = store.add_message(cid, "assistant", "bare")
    store.add_feedback(aid, "accepted")
    assert store.accepted_examples() == []


def test_final_text_latest_edit_wins_whatever_follows(store: Store) -> None:
    _, plain = answer(store, "four")
    _, accepted = answer(store, "5", "What is 2+3?")
    _, rejected = answer(store, "7", "What is 3+3?")
    _, twice = answer(store, "9", "What is 4+4?")
    store.add_feedback(plain, "accepted")
    store.add_feedback(accepted, "edited", "It is 5.")
    store.add_feedback(accepted, "accepted")
    store.add_feedback(rejected, "edited", "It is 6.")
    store.add_feedback(rejected, "rejected")
    store.add_feedback(twice, "edited", "It is 7.")
    store.add_feedback(twice, "edited", "It is 8.")
    texts = {m: store.get_message(m).final_text for m in (plain, accepted, rejected, twice)}
    assert texts == {plain: "four", accepted: "It is 5.", rejected: "It is 6.", twice: "It is 8."}
    assert store.get_message(accepted).feedback == "accepted"  # the verdict is kept apart
    targets = {e.message_id: e.target for e in store.accepted_examples()}
    assert targets == {plain: "four", accepted: "It is 5.", twice: "It is 8."}  # rejected: none
