"""Issue 11 §13: ctrl+y then ctrl+n pressed quickly store the last verdict, whatever order
the worker threads run in. The first write is held back (a slow disk) so that, unsynchronised,
the earlier verdict would land last."""

from __future__ import annotations

import time
from typing import Any

from tests.tui.test_chat import ask, only_conversation, ready


async def test_the_last_feedback_key_wins(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    real = store.add_feedback

    def slow_accept(message_id: str, kind: str, **kw: Any) -> Any:
        if kind == "accepted":
            time.sleep(0.5)  # the accept is still being written when ctrl+n arrives
        return real(message_id, kind, **kw)

    store.add_feedback = slow_accept
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "Tell me a joke")
        await pilot.press("ctrl+y")
        await pilot.press("ctrl+n")
        await ready(pilot)
        await app.workers.wait_for_complete()
        _, answer = only_conversation(store)
        assert answer.feedback == "rejected"
        assert store.accepted_examples() == []
