"""Questions about the user with nothing in memory start "I don't know" (agent.core.personal),
through the runtime's answer prefix, on the tiny model and a real Store."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core import personal
from agent.core.turn import Chat
from agent.llm.runtime import Runtime, SamplingOptions
from memory.embed import HashEmbedder
from memory.store import Store


@pytest.mark.parametrize("question", [
    "What is my dog called?", "What's my name?", "Which city do I live in?", "What car do I drive?",
    "When is my birthday?", "What is my partner's name?", "Where does my brother live?",
    "How many beehives do I keep?", "How old am I?", "What do I do for a living?",
    "and what is my favourite hobby?",
])
def test_questions_about_the_user(question: str) -> None:
    assert personal.asks_about_user(question)


@pytest.mark.parametrize("question", [
    "How do I make a cup of tea?", "What should I plant in my garden for the bees?",
    "What is a good gift for my mum?", "What do I need to bake bread?", "How much do I tip in New York?",
    "Write a birthday message for my sister.", "My name is Ada and I live in Lisbon.",
    "What is the capital of France?", "Where should I eat in Paris?", "Can you help me plan my week?",
])
def test_advice_and_statements_are_not(question: str) -> None:
    assert not personal.asks_about_user(question)


def test_prefix_only_without_notes_or_an_earlier_mention() -> None:
    q = "What is my dog called?"
    assert personal.answer_prefix(q, False, []) == personal.UNKNOWN_PREFIX
    assert personal.answer_prefix(q, True, []) == ""
    told = [{"role": "user", "content": "My dog Rex loves the beach."},
            {"role": "assistant", "content": "Lovely."}]
    assert personal.answer_prefix(q, False, told) == ""
    other = [{"role": "user", "content": "I like tea."}, {"role": "assistant", "content": "Nice."}]
    assert personal.answer_prefix(q, False, other) == personal.UNKNOWN_PREFIX
    named = [{"role": "user", "content": "My name is Ada and I live in Lisbon."}]
    assert personal.answer_prefix("What is my name?", False, named) == ""
    assert personal.answer_prefix("What's my partner's name?", False, other) == personal.UNKNOWN_PREFIX


def test_runtime_prefix_starts_the_answer_and_arrives_with_the_first_token(tiny_runtime: Runtime) -> None:
    msgs = [{"role": "user", "content": "hello"}]
    opts = SamplingOptions(temperature=0.0, max_tokens=5)
    plain = list(tiny_runtime.stream(msgs, opts))
    tiny_runtime.reset_cache()
    primed = list(tiny_runtime.stream(msgs, opts, prefix="I don't know"))
    text = "".join(e.text for e in primed)
    assert text.startswith("I don't know")
    assert primed[0].token is not None  # not an event of its own before the model ran
    head = tiny_runtime.tokenizer.encode("I don't know", add_special_tokens=False)
    assert primed[-1].prompt_tokens == plain[-1].prompt_tokens + len(head)
    # the continuation reads as the tokenizer decodes prefix + tokens (spacing kept)
    ids = [e.token for e in primed[:-1] if e.token is not None]
    assert text == tiny_runtime.tokenizer.decode(head + ids)


def test_chat_primes_unknown_personal_questions_only(tiny_runtime: Runtime, tmp_path: Path) -> None:
    opts = SamplingOptions(temperature=0.0, max_tokens=4)
    with Store.open(tmp_path / "a.db", embedder=HashEmbedder()) as store:
        chat = Chat(tiny_runtime, store, options=opts)
        events = list(chat.send("What is my dog called?"))
        done = events[-1]
        assert done.text.startswith("I don't know")
        assert any(e.kind == "notice" and "/remember" in e.text for e in events)  # how to teach it
        stored = store.conversation_messages(chat.conversation_id or "")[-1]
        assert stored.final_text.startswith("I don't know")  # recorded as shown
        assert not Chat(tiny_runtime, store, options=opts).ask("How do I boil an egg?").text.startswith(
            "I don't know")
    with Store.open(tmp_path / "b.db", embedder=HashEmbedder()) as store:
        store.add_memory("My dog is called Rex.")
        store.embed_pending()
        done = Chat(tiny_runtime, store, options=opts).ask("What is my dog called?")
        assert done.hits and not done.text.startswith("I don't know")

