"""The app's pure helpers: their docstring examples, and the glue's edge cases."""

from __future__ import annotations

import doctest
import threading
from typing import Any

import pytest

from tui import errors, formatting, refresh_runner, services
from tui.model_thread import ModelThread, ModelThreadClosed


@pytest.mark.parametrize("module", [formatting, services, refresh_runner, errors])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


def test_internal_errors_go_to_the_crash_log_not_the_screen(hearth_home: object) -> None:
    from agent.foundation import paths

    message = errors.describe(KeyError("boom"))
    assert "Internal error (KeyError" in message and "crash.log" in message
    assert "KeyError: 'boom'" in (paths.logs_dir() / "crash.log").read_text()
    assert errors.describe(services.HearthError("do this next")) == "do this next"


def test_model_thread_runs_everything_on_one_thread() -> None:
    thread = ModelThread()
    seen: list[str] = []

    def worker() -> None:
        seen.append(thread.call(lambda: threading.current_thread().name))

    workers = [threading.Thread(target=worker) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert seen == ["hearth-mlx"] * 3
    with pytest.raises(RuntimeError, match="block the UI"):
        thread.call(lambda: None)  # from the main thread
    thread.shutdown()
    box: list[BaseException] = []
    t = threading.Thread(target=lambda: _catch(box, lambda: thread.call(lambda: 1)))
    t.start()
    t.join()
    assert isinstance(box[0], ModelThreadClosed)


def _catch(box: list[BaseException], fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:  # noqa: BLE001
        box.append(exc)


def test_refresh_events_read_as_progress() -> None:
    text, progress = refresh_runner.refresh_event('{"event": "val", "step": 20, "total": 40, "val_loss": 1.5}')
    assert (text, progress) == ("step 20/40  validation loss 1.500", (20, 40))
    assert refresh_runner.refresh_event('{"event": "verdict", "promote": true, "reason": "-8%"}')[0] == \
        "verdict: promote (-8%)"
    assert refresh_runner.refresh_event("{not json")[0] == "{not json"


async def test_notifications_are_plain_text(make_app: object) -> None:
    app = make_app()  # type: ignore[operator]
    async with app.run_test() as pilot:
        app.screen.notify("could not read [/tmp/x] [/b]")
        await pilot.pause()
        (note,) = app._notifications
        assert note.message == "could not read [/tmp/x] [/b]" and not note.markup


def test_shown_resumed_and_trained_text_agree(store: Any, tiny_runtime: Any) -> None:
    """One rule for an answer's final text: the bubble, a resumed chat and training agree."""
    from agent.core.turn import Chat

    cid = store.new_conversation("t")
    prompt = [{"role": "user", "content": "What is 2+3?"}]
    store.add_message(cid, "user", "What is 2+3?")
    aid = store.add_message(cid, "assistant", "5", prompt_messages=prompt)
    store.add_feedback(aid, "edited", "It is 5.")
    store.add_feedback(aid, "accepted")  # a verdict after the edit keeps the edit
    messages = services.conversation(store, cid)
    shown = services.shown_text(messages[-1])
    resumed = Chat(tiny_runtime, store)
    services.resume(resumed, cid, messages)
    reopened = Chat(tiny_runtime, store, conversation_id=cid)
    assert shown == "It is 5."
    assert resumed.history[-1]["content"] == reopened.history[-1]["content"] == shown
    assert store.accepted_examples()[-1].target == shown
