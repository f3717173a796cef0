"""History (reopen and continue, forget) and Settings (new prompt version, sampling)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, TextArea

from tests.tui.conftest import settle
from tui.screens.chat import ChatScreen
from tui.screens.history import HistoryScreen
from tui.screens.settings import SettingsScreen
from tui.widgets.message_bubble import MessageBubble


def stored_conversation(store: Any, title: str, question: str, answer: str) -> str:
    cid = store.new_conversation(title=title)
    store.add_message(cid, "user", question)
    store.add_message(cid, "assistant", answer,
                      prompt_messages=[{"role": "user", "content": question}])
    return cid


async def test_reopen_a_conversation_and_continue_it(
    make_app: Any, tiny_runtime: Any, store: Any
) -> None:
    old = stored_conversation(store, "Bikes", "Where is the bike lock code?", "In the drawer.")
    stored_conversation(store, "Garden", "When do tomatoes go out?", "After the frosts.")
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        await pilot.press("slash", *"bike", "enter")
        await settle(pilot)
        assert table.row_count == 1
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        texts = [b.text for b in app.screen.query(MessageBubble)]
        assert texts == ["Where is the bike lock code?", "In the drawer."]
        assert app.chat.conversation_id == old
        await pilot.press(*"And the key?", "enter")
        await settle(pilot)
        messages = store.conversation_messages(old)
        assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
        prompt = [m["content"] for m in messages[-1].prompt_messages]
        assert "In the drawer." in prompt  # the continued turn saw the old answer


async def test_forget_a_conversation(make_app: Any, store: Any) -> None:
    gone = stored_conversation(store, "Secret", "My PIN is 1234", "Noted.")
    kept = stored_conversation(store, "Other", "Hello", "Hi.")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(gone))
        await pilot.press("d", "y")
        await settle(pilot)
        assert [c.id for c in store.list_conversations()] == [kept]
        assert table.row_count == 1


async def test_settings_save_a_prompt_version_and_sampling(
    make_app: Any, tiny_runtime: Any, store: Any
) -> None:
    version, _ = store.active_system_prompt()
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        editor = screen.query_one("#system-prompt", TextArea)
        editor.focus()
        await pilot.press("f7", *"Answer like a pirate.")
        screen.query_one("#max_tokens", Input).value = "7"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert store.active_system_prompt() == (version + 1, "Answer like a pirate.")
        assert store.get_setting("sampling")["max_tokens"] == 7
        assert app.chat.options.max_tokens == 7
        await pilot.press("f1", *"Hi", "enter")
        await settle(pilot)
        (conversation,) = store.list_conversations()
        answer = store.conversation_messages(conversation.id)[-1]
        assert answer.prompt_version == version + 1
        assert answer.tokens_completion <= 7


async def test_settings_refuse_bad_numbers(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        app.screen.query_one("#top_p", Input).value = "3"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Top p" in list(app._notifications)[-1].message
        assert store.get_setting("sampling") is None
