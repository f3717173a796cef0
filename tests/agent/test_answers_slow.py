"""On the bundled SmolLM2-135M through `Chat.send` with Hearth's defaults (prompt layer,
sampling, loop guard): everyday questions get answers that are not degenerate, and a
remembered fact comes back. Marked slow: the real model (the full measurement is
scripts/bench_answers.py; these are two of its cases kept as a regression guard)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core import answer_metrics as am
from agent.core.turn import Chat
from agent.llm import prompt
from agent.llm.models import ModelRef
from agent.llm.runtime import Runtime, SamplingOptions
from memory.embed import HashEmbedder
from memory.store import Store

pytestmark = pytest.mark.slow

EVERYDAY = [
    ("How do I make a cup of tea?", ["tea", "water", "boil", "cup", "kettle"]),
    ("What should I plant in my garden for the bees?", ["flower", "plant", "bee", "lavender"]),
    ("Why does it rain?", ["water", "cloud", "vapor", "vapour", "droplet"]),
]


@pytest.fixture(scope="module")
def runtime(bundled_model_dir: Path) -> Runtime:
    return Runtime.load(ModelRef("SmolLM2-135M-Instruct", bundled_model_dir, "bundled"))


def test_everyday_questions_get_usable_answers(runtime: Runtime, tmp_path: Path) -> None:
    """None degenerate; most on topic (a 135M model is sometimes simply wrong: the benchmark
    measures the rate, this guards against the prompt layer breaking it)."""
    on_topic = []
    for i, (question, keywords) in enumerate(EVERYDAY):
        with Store.open(tmp_path / f"h{i}.db", embedder=HashEmbedder()) as store:
            system = store.active_system_prompt()[1]
            chat = Chat(runtime, store, options=SamplingOptions(seed=0, max_tokens=160))
            done = chat.ask(question)
            reasons = am.degenerate_reasons(
                done.text, done.stats.finish_reason if done.stats else None,
                [system, *prompt.prompt_layer_texts()])
            assert reasons == [], (question, reasons, done.text)
            on_topic.append(am.on_topic(done.text, keywords))
    assert sum(on_topic) >= len(EVERYDAY) - 1, on_topic


def test_a_remembered_fact_comes_back(runtime: Runtime, tmp_path: Path) -> None:
    with Store.open(tmp_path / "h.db", embedder=HashEmbedder()) as store:
        store.add_memory("My name is Ada and I live in Lisbon.")
        store.add_memory("I keep three beehives on my roof.")
        chat = Chat(runtime, store, options=SamplingOptions(seed=0, max_tokens=64))
        done = chat.ask("How many beehives do I keep?")
        assert any("beehives" in h.text for h in done.hits)
        assert am.recalls(done.text, ["three", "3"]), done.text
