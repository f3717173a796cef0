"""The memory screen: add, edit, forget memories; ingest and forget documents (real keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from tests.tui.conftest import settle
from tui.screens.memory import MemoryScreen


async def open_memory(pilot: Any) -> MemoryScreen:
    await pilot.press("f3")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, MemoryScreen)
    return screen


def rows(screen: MemoryScreen, table: str) -> list[str]:
    data = screen.query_one(f"#{table}", DataTable)
    return [str(data.get_row_at(i)[1 if table == "memories" else 0]) for i in range(data.row_count)]


async def test_forget_a_memory_after_confirming(make_app: Any, store: Any) -> None:
    store.add_memory("My cat is called Miso")
    keep = store.add_memory("I live in Lyon")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_memory(pilot)
        assert sorted(rows(screen, "memories")) == ["I live in Lyon", "My cat is called Miso"]
        table = screen.query_one("#memories", DataTable)
        target = [i for i in range(table.row_count) if "Miso" in str(table.get_row_at(i)[1])][0]
        table.move_cursor(row=target)
        await pilot.press("d", "n")  # asked, declined
        await settle(pilot)
        assert len(store.list_memories()) == 2
        await pilot.press("d", "y")
        await settle(pilot)
        assert [m.id for m in store.list_memories()] == [keep]
        assert rows(screen, "memories") == ["I live in Lyon"]


async def test_new_and_edited_memories(make_app: Any, store: Any) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_memory(pilot)
        await pilot.press("n", *"I like tea", "ctrl+s")
        await settle(pilot)
        (memory,) = store.list_memories()
        assert memory.text == "I like tea" and memory.origin == "typed"
        await pilot.press("e", *" with milk", "ctrl+s")
        await settle(pilot)
        (edited,) = store.list_memories()
        assert edited.text == "I like tea with milk" and edited.id != memory.id
        assert [m.text for m in store.memory_history(edited.id)][0] == "I like tea"


async def test_search_filters_memories(make_app: Any, store: Any) -> None:
    store.add_memory("My cat is called Miso")
    store.add_memory("I live in Lyon")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_memory(pilot)
        await pilot.press("slash", *"lyon", "enter")
        await settle(pilot)
        assert rows(screen, "memories")[0] == "I live in Lyon"
        assert "Miso" not in " ".join(rows(screen, "memories")[:1])
        await pilot.press("escape")
        await settle(pilot)
        assert len(rows(screen, "memories")) == 2


async def test_ingest_a_folder_then_forget_the_document(
    make_app: Any, store: Any, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "garden.md").write_text("# Garden\n\nThe tomatoes go in the south bed.\n")
    (notes / "bike.txt").write_text("The bike lock code is in the drawer.\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_memory(pilot)
        await pilot.press("i")
        app.screen.query_one("#answer").value = str(notes)  # a path is pasted, not typed
        await pilot.press("enter")
        await settle(pilot)
        assert sorted(Path(d.path).name for d in store.list_documents()) == ["bike.txt", "garden.md"]
        assert not screen.query_one("#ingest").display  # the progress line is gone again
        await pilot.press("tab")  # from the memories table to the documents table
        assert app.focused is not None and app.focused.id == "documents"
        await pilot.press("d", "y")
        await settle(pilot)
        assert len(store.list_documents()) == 1


async def test_text_that_looks_like_markup_is_shown_as_is(make_app: Any, store: Any) -> None:
    store.add_memory("Use [x] for done and [/b] is not a tag")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_memory(pilot)
        assert rows(screen, "memories") == ["Use [x] for done and [/b] is not a tag"]
        await pilot.press("d")  # the confirmation quotes it literally too
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert store.list_memories() == []
