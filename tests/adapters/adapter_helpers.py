"""Helpers shared by the adapter tests: accepted answers teaching a fact, seeded into a Store."""

from __future__ import annotations

from typing import Any

SYSTEM = {"role": "system", "content": "You are Hearth."}


def pairs(n: int, start: int = 0, fact: str = "Orla keeps the lighthouse.") -> list[tuple[str, str]]:
    """`n` distinct question/answer pairs teaching one fact in one style."""
    return [(f"Question {i}: who keeps the lighthouse?", f"Ahoy! {fact} ({i})")
            for i in range(start, start + n)]


def seed(store: Any, qa: list[tuple[str, str]], system: dict[str, str] = SYSTEM) -> list[str]:
    """Record each pair as a conversation whose answer the user accepted; returns answer ids."""
    ids = []
    for question, answer in qa:
        conv = store.new_conversation()
        store.add_message(conv, "user", question)
        prompt = [system, {"role": "user", "content": question}]
        mid = store.add_message(conv, "assistant", answer, prompt_messages=prompt)
        store.add_feedback(mid, "accepted")
        ids.append(mid)
    return ids
