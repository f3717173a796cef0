"""The adapters screen: activate and roll back real adapter folders; the cold-start gauge;
"train now" running the real refresh worker (which stops at the cold-start minimum)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Label, RichLog

from tests.tui.conftest import register_adapter, settle
from tui.screens.adapters import AdaptersScreen


async def open_adapters(pilot: Any) -> AdaptersScreen:
    await settle(pilot)
    await pilot.press("f4")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AdaptersScreen)
    return screen


def select(screen: AdaptersScreen, version: str) -> None:
    table = screen.query_one("#versions", DataTable)
    table.move_cursor(row=table.get_row_index(version))


async def test_activate_then_roll_back(
    make_app: Any, tiny_runtime: Any, store: Any, tmp_path: Path
) -> None:
    v1 = register_adapter(store, tiny_runtime, tmp_path, seed=1)
    v2 = register_adapter(store, tiny_runtime, tmp_path, seed=2)
    assert store.active_adapter()["id"] == v2  # promoted last
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_adapters(pilot)
        assert tiny_runtime.adapter_path.name == v2  # served from the start
        assert app.status.adapter == v2
        select(screen, v1)
        await pilot.press("a")
        await settle(pilot)
        assert store.active_adapter()["id"] == v1
        assert tiny_runtime.adapter_path.name == v1 and app.status.adapter == v1
        await pilot.press("b")
        await settle(pilot)
        assert store.active_adapter()["id"] == v2
        assert tiny_runtime.adapter_path.name == v2
        await pilot.press("b")
        await settle(pilot)
        assert store.active_adapter() is None
        assert tiny_runtime.adapter_path is None and app.status.adapter is None
        await pilot.press("b")  # nothing left to roll back: a notification, not a crash
        await settle(pilot)
        assert "nothing to roll back" in list(app._notifications)[-1].message


async def test_a_rejected_candidate_cannot_be_activated(
    make_app: Any, tiny_runtime: Any, store: Any, tmp_path: Path
) -> None:
    rejected = register_adapter(store, tiny_runtime, tmp_path, seed=3, promote=False)
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_adapters(pilot)
        select(screen, rejected)
        await pilot.press("a")
        await settle(pilot)
        assert store.active_adapter() is None
        note = list(app._notifications)[-1]
        assert note.severity == "error" and "never served" in note.message


async def test_cold_start_gauge_and_train_now(make_app: Any, tiny_runtime: Any, store: Any) -> None:
    app = make_app(tiny_runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_adapters(pilot)
        label = str(screen.query_one("#cold-label", Label).render())
        assert "Accepted answers 0/20: 20 more" in label
        await pilot.press("t")
        await settle(pilot)  # the worker follows the refresh process to its end
        log = "\n".join(strip.text for strip in screen.query_one("#train-log", RichLog).lines)
        assert "result: cold_start" in log
        assert store.list_adapter_versions() == []
        assert app.status.activity is None
