"""The Experiments screen (F6): a trial started from it shows its arms and numbers; the chat's
details line names the arm that served an answer; stop ends the trial and the next turn is
served by the incumbent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Static

from adapters.training import experiments
from tests.tui.conftest import paste, register_adapter, settle
from tui.screens.experiments import ExperimentsScreen


async def test_start_watch_and_stop_a_trial(make_app: Any, tiny_runtime: Any, store: Any,
                                            tmp_path: Path) -> None:
    v1 = register_adapter(store, tiny_runtime, tmp_path, seed=1)
    v2 = register_adapter(store, tiny_runtime, tmp_path, seed=2)
    store.set_active_adapter(v1)  # v1 serves; v2 passed the gate and waits
    app = make_app(tiny_runtime)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        await pilot.press("n")
        await paste(pilot, v2)
        await pilot.press("enter")
        await settle(pilot)
        await settle(pilot)
        running = store.running_experiment()
        assert running is not None and running["candidate_adapter"] == v2
        table = screen.query_one("#trials", DataTable)
        assert table.row_count == 1
        text = str(screen.query_one("#trial-detail", Static).render())
        assert f"{v1} (incumbent) vs {v2} (candidate)" in text
        await pilot.press("s")
        await settle(pilot)
        await settle(pilot)
        assert store.get_experiment(running["id"])["status"] == "stopped"
        assert "stopped" in str(screen.query_one("#trial-detail", Static).render())


async def test_chat_details_show_the_arm(make_app: Any, tiny_runtime: Any, store: Any,
                                         tmp_path: Path) -> None:
    from tui.widgets.message_bubble import MessageBubble

    v1 = register_adapter(store, tiny_runtime, tmp_path, seed=1)
    v2 = register_adapter(store, tiny_runtime, tmp_path, seed=2)
    store.set_active_adapter(v1)
    experiments.start_adapter_trial(store, v2, tiny_runtime.ref.checksum)
    app = make_app(tiny_runtime)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await paste(pilot, "hello there")
        await pilot.press("enter")
        await settle(pilot)
        bubbles = [b for b in app.screen.query(MessageBubble) if b.role == "assistant"]
        assert bubbles and bubbles[-1].arm in ("incumbent", "candidate")
        arm = bubbles[-1].arm
        assert f"A/B {arm}" in bubbles[-1].meta_line()
        # reopened from history (as the History screen does), the answer still names its arm
        app.screen.load_conversation(app.chat.conversation_id)
        await settle(pilot)
        await settle(pilot)
        reloaded = [b for b in app.screen.query(MessageBubble) if b.role == "assistant"]
        assert len(reloaded) == 1 and reloaded[0] is not bubbles[-1]
        assert reloaded[0].arm == arm and f"A/B {arm}" in reloaded[0].meta_line()
