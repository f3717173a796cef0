"""Memories: add, supersede with history, pinning, and the rule-based suggester."""

from __future__ import annotations

import pytest

from memory.errors import NotFoundError, StoreError
from memory.memories import suggest_memories
from memory.store import Store


def test_add_list_get(store: Store) -> None:
    a = store.add_memory("  I prefer   tea. ", kind="preference")
    b = store.add_memory("My sister is Ann.", pinned=True)
    assert store.add_memory("I prefer tea.") == a  # same current text: no duplicate
    listed = store.list_memories()
    assert [m.id for m in listed] == [b, a]  # pinned first
    got = store.get_memory(a)
    assert (got.text, got.kind, got.origin, got.source_message_id) == (
        "I prefer tea.",
        "preference",
        "typed",
        None,
    )
    assert got.created_at.endswith("Z") and got.superseded_by is None and not got.pinned
    store.set_pinned(a, True)
    assert store.get_memory(a).pinned


def test_memory_from_a_message_keeps_provenance(store: Store) -> None:
    cid = store.new_conversation()
    mid = store.add_message(cid, "user", "Call me Sam.")
    memory = store.get_memory(store.add_memory("Call me Sam.", "preference", source_message_id=mid))
    assert (memory.origin, memory.source_message_id) == ("conversation", mid)
    hit = store.search("Sam", kinds=["memory"])[0]
    assert hit.source.startswith("memory (from a conversation, ")
    store.forget_message(mid)
    memory = store.get_memory(memory.id)
    assert (memory.origin, memory.source_message_id) == ("conversation", None)


def test_supersede_keeps_history(store: Store) -> None:
    v1 = store.add_memory("I live in Paris.", pinned=True)
    v2 = store.supersede_memory(v1, "I live in Lyon.")
    v3 = store.supersede_memory(v2, "I live in Nantes.")
    assert [m.id for m in store.list_memories()] == [v3]
    assert store.get_memory(v3).pinned  # carried over
    assert [m.text for m in store.memory_history(v3)] == [
        "I live in Paris.",
        "I live in Lyon.",
        "I live in Nantes.",
    ]
    assert store.get_memory(v1).superseded_by == v2
    assert len(store.list_memories(include_superseded=True)) == 3
    with pytest.raises(StoreError, match="already replaced"):
        store.supersede_memory(v1, "I live in Rome.")


def test_memory_validation(store: Store) -> None:
    with pytest.raises(StoreError, match="empty"):
        store.add_memory("   ")
    with pytest.raises(StoreError, match="kind"):
        store.add_memory("x", kind="opinion")
    with pytest.raises(NotFoundError):
        store.add_memory("x", source_message_id="missing")
    with pytest.raises(NotFoundError):
        store.supersede_memory("missing", "x")
    with pytest.raises(NotFoundError):
        store.memory_history("missing")


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("my name is Sam", [("My name is Sam.", "fact", "name")]),
        ("Please call me Sammy, thanks!", [("Call me Sammy.", "preference", "call_me")]),
        (
            "I live in Lyon and I like jazz.",
            [("I live in Lyon.", "fact", "lives_in"), ("I like jazz.", "preference", "likes")],
        ),
        ("I'm allergic to peanuts.", [("I'm allergic to peanuts.", "fact", "allergy")]),
        (
            "I prefer short answers, with examples.",
            [("I prefer short answers, with examples.", "preference", "prefers")],
        ),
        (
            "Remember that my sister's birthday is May 3.",
            [("My sister's birthday is May 3.", "fact", "remember")],
        ),
        ("remember that I prefer tea", [("I prefer tea.", "preference", "prefers")]),
        ("What is my name?", []),
        ("Do you remember that I live in Lyon?", []),
        ("The weather is nice.", []),
    ],
)
def test_suggestions(said: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(s.text, s.kind, s.rule) for s in suggest_memories(said)] == expected


def test_suggestion_supersedes_single_valued_fact(store: Store) -> None:
    old = store.add_memory("I live in Paris.")
    store.add_memory("I like jazz.", "preference")
    (move,) = store.suggest_memories("Big news: I now live in Lyon.")
    assert move.text == "I now live in Lyon." and move.supersedes == old
    (like,) = store.suggest_memories("I like blues")
    assert like.supersedes is None  # likes accumulate
    assert store.suggest_memories("I like jazz.") == []  # already known
