"""End to end on the real bundled SmolLM2 and the real embedder: ask, accept, find it stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.llm.runtime import SamplingOptions
from tests.tui.conftest import settle
from tui.app import HearthApp
from tui.widgets.message_bubble import MessageBubble


@pytest.mark.slow
async def test_ask_accept_and_find_the_answer_in_the_store(
    bundled_model_dir: Path, hearth_home: Path
) -> None:
    from agent.llm.convert import BUNDLED_ID, read_manifest
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime
    from memory.store import Store

    checksum = (read_manifest(bundled_model_dir) or {}).get("source_sha256", "")
    ref = ModelRef(BUNDLED_ID, bundled_model_dir, checksum, bundled=True)
    store = Store.open()
    app = HearthApp(runtime_factory=lambda: Runtime.load(ref), store=store,
                    options=SamplingOptions(temperature=0.0, max_tokens=24))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.status.model == BUNDLED_ID
            await pilot.press(*"What is the capital of France?", "enter")
            await settle(pilot)
            answer: Any = [b for b in app.screen.query(MessageBubble) if b.role == "assistant"][-1]
            assert "Paris" in answer.text
            await pilot.press("ctrl+y")
            await settle(pilot)
        (example,) = store.accepted_examples()
        assert example.message_id == answer.message_id
        assert "Paris" in example.target
        assert example.prompt_messages[-1]["content"].endswith("What is the capital of France?")
    finally:
        store.close()
