"""Snapshots of the main screens at 80x24, cursor blink off, content made deterministic:
fixed dates, backend and offline mark, stored (not generated) answers, paths under a fake home.

Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`
and look at the report before committing the new SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, TextArea

from tests.tui.conftest import register_adapter, settle
from tui import formatting, services
from tui.widgets.sources import Sources

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(formatting, "short_date", lambda iso: "2026-11-23 09:30" if iso else "")
    monkeypatch.setattr(services, "backend_label", lambda: "CPU")
    monkeypatch.setattr(services, "offline", lambda: True)
    monkeypatch.setenv("HOME", str(tmp_path))


async def steady(pilot: Any) -> None:
    """Workers done, no toasts, cursors not blinking."""
    await settle(pilot)
    pilot.app.clear_notifications()
    for widget in pilot.app.screen.query("Input, TextArea"):
        assert isinstance(widget, Input | TextArea)
        widget.cursor_blink = False
    await pilot.pause()


def conversation(store: Any) -> str:
    cid = store.new_conversation(title="What is my cat called?")
    store.add_message(cid, "user", "What is my cat called?")
    hit = {"kind": "memory", "id": "m1", "text": "My cat is called Miso", "score": 0.03,
           "source": "memory (typed by you, 2026-11-23)", "created_at": "2026-11-23"}
    answer = store.add_message(cid, "assistant", "Your cat is called **Miso** (note 1).",
                               hits=[hit], adapter_version="v2", tokens_per_s=12.3,
                               prompt_messages=[{"role": "user", "content": "What is my cat called?"}])
    store.add_feedback(answer, "accepted")
    return cid


def test_chat_screen(snap_compare: Any, make_app: Any, tiny_runtime: Any, store: Any) -> None:
    cid = conversation(store)
    app = make_app(tiny_runtime)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await app.open_conversation(cid)
        await settle(pilot)
        app.screen.query_one(Sources).collapsed = False
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_chat_screen_while_the_model_loads(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=steady)


def test_history_screen(snap_compare: Any, make_app: Any, store: Any) -> None:
    for title in ("Garden plans", "Bike lock code", "What is my cat called?"):
        cid = store.new_conversation(title=title)
        store.add_message(cid, "user", title)

    async def run_before(pilot: Any) -> None:
        await pilot.press("f2")
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_memory_screen(snap_compare: Any, make_app: Any, store: Any, tmp_path: Path) -> None:
    store.add_memory("My cat is called Miso")
    store.add_memory("I prefer short answers", kind="preference", pinned=True)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "garden.md").write_text("# Garden\n\nTomatoes go in the south bed.\n")
    store.ingest(notes)

    async def run_before(pilot: Any) -> None:
        await pilot.press("f3")
        await steady(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_adapters_screen(
    snap_compare: Any, make_app: Any, tiny_runtime: Any, store: Any, tmp_path: Path
) -> None:
    register_adapter(store, tiny_runtime, tmp_path, seed=1)
    register_adapter(store, tiny_runtime, tmp_path, seed=2, promote=False)

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("f4")
        await steady(pilot)

    assert snap_compare(make_app(tiny_runtime), terminal_size=SIZE, run_before=run_before)


def test_settings_screen(snap_compare: Any, make_app: Any, tiny_runtime: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("f5")
        await steady(pilot)

    assert snap_compare(make_app(tiny_runtime), terminal_size=SIZE, run_before=run_before)
