"""The temporary memory and the prompts: retrieval as the chat does it, and no leaks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.eval import context, data
from agent.llm.prompt import NOTES_HEADER, PRIMER
from memory.embed import HashEmbedder


def _split() -> data.Split:
    return data.split_items(data.demo_items())


def test_training_part_becomes_accepted_answers(tmp_path: Path) -> None:
    split = _split()
    store = context.open_memory(tmp_path, split.train, "Be Tam's assistant.", HashEmbedder())
    try:
        accepted = store.accepted_examples()
        assert len(accepted) == len(split.train)
        assert {a.target for a in accepted} == {it.reference for it in split.train}
        assert store.active_system_prompt()[1] == "Be Tam's assistant."
    finally:
        store.close()
    assert {"eval.db", "memory.jsonl"} <= {p.name for p in tmp_path.iterdir()}


def test_prompts_retrieve_training_pairs_and_never_held_out_ones(tmp_path: Path) -> None:
    split = _split()
    held = split.heldout[:6]
    store = context.open_memory(tmp_path, split.train, embedder=HashEmbedder())
    try:
        prompts = context.build_prompts(held, store, lambda s: len(s) // 4 + 1, context.Budget())
    finally:
        store.close()
    train_answers = {it.reference for it in split.train}
    for item, plain, rich, used in zip(held, prompts.plain, prompts.retrieved,
                                       prompts.examples_used, strict=True):
        primer = [m["role"] for m in PRIMER]
        assert [m["role"] for m in plain] == ["system", *primer, "user"]
        assert plain[-1]["content"] == item.question  # no notes without retrieval
        assert rich[-1]["content"].startswith(NOTES_HEADER) and item.question in rich[-1]["content"]
        example_answer = rich[1 + len(PRIMER) + 1]["content"]  # after the fixed primer
        assert used == 1 and example_answer in train_answers  # a few-shot training pair
        assert all(item.reference not in m["content"] for m in rich)  # the answer never leaks


def test_rag_prompt_is_exactly_what_the_chat_builds(tmp_path: Path, tiny_runtime: Any) -> None:
    from agent.core.turn import Chat
    from agent.llm.runtime import SamplingOptions

    split = _split()
    store = context.open_memory(tmp_path, split.train, embedder=HashEmbedder())
    try:
        item = split.heldout[0]
        budget = context.Budget(context_tokens=min(4096, tiny_runtime.context_window),
                                answer_tokens=8)
        ours = context.build_prompts([item], store, tiny_runtime.count_tokens, budget)
        chat = Chat(tiny_runtime, store, options=SamplingOptions(temperature=0, max_tokens=8))
        done = chat.ask(item.question)
        assert done.message_id is not None
        served = store.get_message(done.message_id).prompt_messages
    finally:
        store.close()
    assert served == ours.retrieved[0]


def test_file_pairs_train_on_the_served_prompt() -> None:
    item = data.item_from_messages([{"role": "user", "content": "Cat?"},
                                    {"role": "assistant", "content": "Pickle."}])
    msgs = context.train_messages(item, "System text.", lambda s: 1, context.Budget())
    assert msgs == [{"role": "system", "content": "System text."},
                    *[dict(m) for m in PRIMER],  # the served prompt's fixed worked examples
                    {"role": "user", "content": "Cat?"},
                    {"role": "assistant", "content": "Pickle."}]
    own = data.Item("Cat?", "Pickle.", "h", train_messages=({"role": "user", "content": "x"},))
    assert context.train_messages(own, "System text.", lambda s: 1, context.Budget()) == [
        {"role": "user", "content": "x"}]
