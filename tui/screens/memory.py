"""Memories and documents: list, search, add, edit and forget them; ingest a folder.

Memories are facts and preferences the assistant may quote; documents are ingested files,
split into chunks. Editing a memory stores a new version that replaces the old one;
forgetting deletes for good (after a confirmation). Ingesting runs in a worker with a
progress bar. All store calls happen in workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, ProgressBar

from tui import formatting
from tui.screens.ask_text import AskTextScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.edit_text import EditTextScreen
from tui.widgets.nav_bar import NavBar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from memory.store import Store
    from tui.host import Host


class MemoryScreen(Screen[None]):
    """Two tables (memories, documents) under one search box."""

    CSS_PATH = "memory.tcss"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("n", "new", "New"),
        Binding("e", "edit", "Edit"),
        Binding("d,delete", "forget", "Forget"),
        Binding("i", "ingest", "Ingest"),
        Binding("escape", "clear_search", "All", show=False),
    ]

    @property
    def hearth(self) -> Host:
        return cast("Host", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar("memory")
        yield Input(placeholder="Search memories and documents (Enter)", id="search")
        yield Label("Memories", classes="section-title", id="memories-title")
        yield DataTable(id="memories", cursor_type="row", zebra_stripes=True)
        yield Label("Documents", classes="section-title", id="documents-title")
        yield DataTable(id="documents", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="ingest"):
            yield Label("", id="ingest-label", markup=False)
            yield ProgressBar(total=1, show_eta=False, id="ingest-bar")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        memories = self.query_one("#memories", DataTable)
        memories.add_column("Kind", key="kind")
        memories.add_column("Memory", key="text")
        memories.add_column("Added", key="when")
        documents = self.query_one("#documents", DataTable)
        documents.add_column("Document", key="path")
        documents.add_column("Chunks", key="n")
        documents.add_column("Updated", key="when")
        memories.focus()

    def on_screen_resume(self) -> None:
        self.load(self.query_one("#search", Input).value)

    # loading -----------------------------------------------------------------------------
    @work(thread=True, group="memory", exclusive=True, exit_on_error=False)
    def load(self, query: str = "") -> None:
        store = self.hearth.store
        try:
            memories, documents = store.list_memories(), store.list_documents()
            if query.strip():
                memories, documents = _matching(store, memories, documents, query.strip())
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.hearth.report, exc)
            return
        self.app.call_from_thread(self._show, memories, documents)

    def _show(self, memories: list[Any], documents: list[Any]) -> None:
        table = self.query_one("#memories", DataTable)
        table.clear()
        for m in memories:
            kind = f"{m.kind}*" if m.pinned else m.kind
            table.add_row(*formatting.cells(kind, formatting.clip(m.text, 52),
                                            formatting.short_date(m.created_at)[:10]), key=m.id)
        self.query_one("#memories-title", Label).update(f"Memories ({len(memories)})")
        table = self.query_one("#documents", DataTable)
        table.clear()
        for d in documents:
            table.add_row(*formatting.cells(formatting.short_path(d.path), str(d.n_chunks),
                                            formatting.short_date(d.updated_at)[:10]), key=d.id)
        self.query_one("#documents-title", Label).update(f"Documents ({len(documents)})")

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _focused_table(self) -> str:
        focused = self.focused
        return "documents" if focused is not None and focused.id == "documents" else "memories"

    # search ------------------------------------------------------------------------------
    @on(Input.Submitted, "#search")
    def searched(self, event: Input.Submitted) -> None:
        self.load(event.value)
        self.query_one("#memories", DataTable).focus()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
            self.load()
        self.query_one("#memories", DataTable).focus()

    # editing -----------------------------------------------------------------------------
    def action_new(self) -> None:
        def save(text: str | None) -> None:
            if text:
                self.write(lambda store: store.add_memory(text), "Remembered.")

        self.app.push_screen(
            EditTextScreen("A new memory", hint="A fact or preference, e.g. 'My cat is called "
                           "Miso'. ctrl+s saves."), save)

    def action_edit(self) -> None:
        memory_id = self._selected("memories")
        if memory_id is None or self._focused_table() != "memories":
            self.notify("Select a memory to edit (documents are re-ingested, not edited).")
            return
        table = self.query_one("#memories", DataTable)
        self.edit_memory(memory_id, table.cursor_row)

    @work(thread=True, group="memory-read", exit_on_error=False)
    def edit_memory(self, memory_id: str, row: int) -> None:
        try:
            text = self.hearth.store.get_memory(memory_id).text
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.hearth.report, exc)
            return

        def save(new_text: str | None) -> None:
            if new_text and new_text != text:
                self.write(lambda store: store.supersede_memory(memory_id, new_text),
                           "Updated: the new version replaces the old one.")

        self.app.call_from_thread(
            self.app.push_screen, EditTextScreen("Edit the memory", text, "ctrl+s saves."), save)

    def action_forget(self) -> None:
        which = self._focused_table()
        item = self._selected(which)
        if item is None:
            return
        table = self.query_one(f"#{which}", DataTable)
        label = str(table.get_row(item)[1 if which == "memories" else 0])
        if which == "memories":
            question = f"Forget “{label}”?"
            detail = "The memory and the versions it replaced are deleted for good."
            op, note = (lambda store: store.forget_memory(item)), "Forgot the memory."
        else:
            question = f"Forget the document {label}?"
            detail = "Its chunks are deleted from Hearth; the file itself is untouched."
            op, note = (lambda store: store.forget_document(item)), "Forgot the document."

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(op, note)

        self.app.push_screen(ConfirmScreen(question, detail), answered)

    @work(thread=True, group="memory-write", exit_on_error=False)
    def write(self, op: Any, note: str) -> None:
        """Run one store change, then reload the tables."""
        try:
            op(self.hearth.store)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.hearth.report, exc)
            return
        self.app.call_from_thread(self._written, note)

    def _written(self, note: str) -> None:
        self.notify(note)
        self.load(self.query_one("#search", Input).value)

    # ingest ------------------------------------------------------------------------------
    def action_ingest(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.ingest(path)

        self.app.push_screen(
            AskTextScreen("Ingest which folder or file? (text, Markdown, code)",
                          placeholder=str(Path.home() / "notes")), chosen)

    @work(thread=True, group="ingest", exclusive=True, exit_on_error=False)
    def ingest(self, path: str) -> None:
        app = self.hearth
        app.call_from_thread(self._ingest_progress, "reading files", 0, 0)

        def progress(update: Any) -> None:
            what = "embedding" if update.phase == "embedding" else "reading files"
            app.call_from_thread(self._ingest_progress, what, update.done, update.total)

        try:
            report = app.store.ingest(Path(path).expanduser(), progress=progress)
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(self._ingest_progress, None, 0, 0)
            app.call_from_thread(app.report, exc, "Ingest failed")
            return
        app.call_from_thread(self._ingest_progress, None, 0, 0)
        app.call_from_thread(self._written, f"Ingested {path}: {report.summary()}")

    def _ingest_progress(self, what: str | None, done: int, total: int) -> None:
        box = self.query_one("#ingest")
        box.display = what is not None
        if what is None:
            self.hearth.set_status(activity=None)
            return
        self.query_one("#ingest-label", Label).update(f"Ingest: {what} ")
        self.query_one("#ingest-bar", ProgressBar).update(total=max(total, 1), progress=done)
        self.hearth.set_status(activity=f"ingesting {done}/{total}" if total else "ingesting…")


def _matching(store: Store, memories: list[Any], documents: list[Any], query: str) -> tuple[list[Any], list[Any]]:
    """Memories and documents matching `query`: by words in them, then by hybrid search."""
    needle = query.lower()
    mem_ids = [m.id for m in memories if needle in m.text.lower()]
    for hit in store.search(query, k=20, kinds=["memory"]):
        if hit.id not in mem_ids:
            mem_ids.append(hit.id)
    doc_names = {h.document for h in store.search(query, k=20, kinds=["document"])}
    by_id = {m.id: m for m in memories}
    docs = [d for d in documents if needle in d.path.lower() or Path(d.path).name in doc_names]
    return [by_id[i] for i in mem_ids if i in by_id], docs
