"""The chat screen, driven by real keys against a real temporary store and the tiny model."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import Input, TextArea

from tests.tui.conftest import GatedRuntime, paste
from tui.screens.chat import ChatScreen
from tui.widgets.message_bubble import MessageBubble


async def ready(pilot: Any) -> None:
    """Let the model load and every worker finish."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def ask(pilot: Any, text: str) -> None:
    """Paste a question (or command) into the prompt and press Enter."""
    await paste(pilot, text)
    await pilot.press("enter")
    await ready(pilot)


def answers(app: Any) -> list[MessageBubble]:
    return [b for b in app.screen.query(MessageBubble) if b.role == "assistant"]


def only_conversation(store: Any) -> list[Any]:
    (conversation,) = store.list_conversations()
    return store.conversation_messages(conversation.id)


async def test_answer_streams_and_is_recorded(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.status.model == "tiny" and app.status.loading is None
        await ask(pilot, "Say hello")
        (bubble,) = answers(app)
        user, answer = only_conversation(store)
        assert (user.role, user.text) == ("user", "Say hello")
        assert answer.role == "assistant" and answer.text == bubble.text and answer.text
        assert bubble.message_id == answer.id
        assert app.query_one("#prompt", Input).value == ""
        assert app.status.tokens_per_s is not None


async def test_accept_with_ctrl_y(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "What is my cat called?")
        await pilot.press("ctrl+y")
        await ready(pilot)
        (example,) = store.accepted_examples()
        (bubble,) = answers(app)
        assert example.message_id == bubble.message_id and example.target == bubble.text
        assert bubble.feedback == "accepted" and "accepted" in bubble.meta_line()


async def test_reject_with_ctrl_n(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "Tell me a joke")
        await pilot.press("ctrl+y", "ctrl+n")
        await ready(pilot)
        assert store.accepted_examples() == []
        _, answer = only_conversation(store)
        assert answer.feedback == "rejected"


async def test_edit_with_ctrl_o_becomes_the_accepted_target(
    make_app: Any, tiny_runtime: Any, store: Any
) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "What is the capital of France?")
        original = answers(app)[0].text
        await pilot.press("ctrl+o")
        editor = app.screen.query_one(TextArea)
        assert editor.text == original  # prefilled with the answer
        await pilot.press("f7", *"Paris is the capital.", "ctrl+s")
        await ready(pilot)
        assert isinstance(app.screen, ChatScreen)
        (example,) = store.accepted_examples()
        assert example.target == "Paris is the capital."
        _, answer = only_conversation(store)
        assert answer.feedback == "edited" and answer.text == original
        assert answers(app)[0].text == "Paris is the capital."
        # the correction is what the conversation continues from
        assert app.chat.history[-1] == {"role": "assistant", "content": "Paris is the capital."}


async def test_escape_in_the_editor_saves_nothing(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "Hi")
        await pilot.press("ctrl+o", "f7", *"nope", "escape")
        await ready(pilot)
        assert store.accepted_examples() == []
        assert only_conversation(store)[1].feedback is None


async def test_escape_stops_the_answer_and_keeps_the_typed_text(
    make_app: Any, tiny_runtime: Any, store: Any
) -> None:
    gated = GatedRuntime(tiny_runtime)
    app = make_app(gated)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"Story", "enter")
        assert await asyncio.to_thread(gated.waiting.wait, 10)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChatScreen) and screen.generating
        await pilot.press(*"next question")  # the input stays usable mid-answer
        await pilot.press("escape")
        await ready(pilot)
        assert not screen.generating
        assert app.query_one("#prompt", Input).value == "next question"
        _, answer = only_conversation(store)
        (bubble,) = answers(app)
        assert answer.text == bubble.text and answer.text  # the partial answer is kept
        assert answer.tokens_completion == 1
        assert "stopped" in bubble.meta_line()
        await pilot.press("ctrl+u", *"Go on", "enter")  # and the chat carries on
        await pilot.press("escape")
        await ready(pilot)
        assert app.query_one("#prompt", Input).value == ""  # an answer had begun: box stays empty
        assert len(only_conversation(store)) == 4


async def test_escape_before_any_answer_offers_the_question_again(
    make_app: Any, tiny_runtime: Any
) -> None:
    gated = GatedRuntime(tiny_runtime, before_first=True)
    app = make_app(gated)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"Write a poem", "enter")
        assert await asyncio.to_thread(gated.waiting.wait, 10)
        await pilot.press("escape")
        await ready(pilot)
        prompt = app.query_one("#prompt", Input)
        assert prompt.value == "Write a poem" and prompt.selected_text == "Write a poem"
        await pilot.press(*"Haiku")  # typing replaces the offered question
        assert prompt.value == "Haiku"


async def test_regenerate_and_new_conversation(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "Name a colour")
        first = answers(app)[0].message_id
        await pilot.press("ctrl+r")
        await ready(pilot)
        (bubble,) = answers(app)
        assert bubble.message_id != first
        assert len(app.chat.history) == 2  # the retried turn replaced the first
        await pilot.press("ctrl+l")
        await ready(pilot)
        assert answers(app) == [] and app.chat.conversation_id is None
        await ask(pilot, "Another topic")
        assert len(store.list_conversations()) == 2


async def test_slash_commands_remember_and_forget(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "/remember My cat is called Miso")
        assert [m.text for m in store.list_memories()] == ["My cat is called Miso"]
        await ask(pilot, "What is my cat called?")
        (bubble,) = answers(app)
        assert any("Miso" in text for _, text in bubble.sources)  # the memory was used
        await ask(pilot, "/accept")
        assert len(store.accepted_examples()) == 1 and bubble.feedback == "accepted"
        await ask(pilot, "/forget Miso")  # lists it; nothing is forgotten without a yes
        assert len(store.list_memories()) == 1
        await ask(pilot, "/forget yes")
        assert store.list_memories() == []


async def test_question_asked_while_loading_is_answered_when_ready(
    make_app: Any, tiny_runtime: Any, store: Any
) -> None:
    import threading

    gate = threading.Event()

    def slow_factory() -> Any:
        gate.wait(10)
        return tiny_runtime

    app = make_app(factory=slow_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.status.loading  # the indicator is up, the input usable
        await pilot.press(*"Are you there?", "enter")
        await pilot.pause()
        assert store.list_conversations() == []
        (waiting,) = answers(app)
        assert waiting.meta_line() == "waiting for the model to load…"
        gate.set()
        await ready(pilot)
        await ready(pilot)  # the queued question's turn
        user, answer = only_conversation(store)
        assert user.text == "Are you there?" and answer.role == "assistant"


async def test_a_model_that_fails_to_load_is_a_notification(make_app: Any, store: Any) -> None:
    from agent.foundation.errors import ModelError

    def broken() -> Any:
        raise ModelError("could not load the model at /nowhere; run `hearth models convert --force`")

    app = make_app(factory=broken)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        (note,) = app._notifications
        assert "hearth models convert" in note.message and note.severity == "error"
        assert app.status.loading == "no model loaded (see Settings)"
        await ask(pilot, "/remember Memory works without a model")
        assert len(store.list_memories()) == 1


async def test_escape_while_waiting_for_the_model_drops_the_question(make_app: Any, store: Any) -> None:
    app = make_app()  # the model never finishes loading
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"Hello?", "enter")
        await pilot.pause()
        assert len(answers(app)) == 1
        await pilot.press("escape")
        await pilot.pause()
        assert answers(app) == []
        assert app.query_one("#prompt", Input).value == "Hello?"
        assert store.list_conversations() == []
