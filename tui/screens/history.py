"""Past conversations: list and search them, reopen one to continue it, or forget it.

Search matches titles and, through the store's hybrid search, what was said. Everything is
read in workers, so the screen works while the model is still loading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from tui import formatting
from tui.screens.confirm import ConfirmScreen
from tui.widgets.nav_bar import NavBar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from memory.store import Store
    from tui.host import Host


class HistoryScreen(Screen[None]):
    """The list of conversations, most recent first."""

    CSS_PATH = "history.tcss"
    BINDINGS = [
        Binding("o", "open", "Open", key_display="⏎"),
        Binding("slash", "search", "Search"),
        Binding("d,delete", "forget", "Forget"),
        Binding("escape", "clear_search", "All", show=False),
    ]

    @property
    def hearth(self) -> Host:
        return cast("Host", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar("history")
        yield Input(placeholder="Search conversations (Enter)", id="search")
        yield DataTable(id="conversations", cursor_type="row", zebra_stripes=True)
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Conversation", key="title")
        table.add_column("Msgs", key="n")
        table.add_column("Last message", key="when")
        table.focus()

    def on_screen_resume(self) -> None:
        self.load(self.query_one("#search", Input).value)

    @work(thread=True, group="history", exclusive=True, exit_on_error=False)
    def load(self, query: str = "") -> None:
        store = self.hearth.store
        try:
            rows = store.list_conversations()
            if query.strip():
                rows = _matching(store, rows, query.strip())
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.hearth.report, exc)
            return
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[Any]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            table.add_row(
                *formatting.cells(formatting.clip(row.title or "(untitled)", 48),
                                  str(row.n_messages), formatting.short_date(row.updated_at)),
                key=row.id,
            )
        if not rows:
            query = self.query_one("#search", Input).value
            self.notify("No conversation matches." if query else "No conversations yet: ask something in Chat (F1).")

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(Input.Submitted, "#search")
    def searched(self, event: Input.Submitted) -> None:
        self.load(event.value)
        self.query_one(DataTable).focus()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
            self.load()
        self.query_one(DataTable).focus()

    @on(DataTable.RowSelected)
    async def row_selected(self) -> None:
        await self.action_open()

    async def action_open(self) -> None:
        conversation_id = self._selected()
        if conversation_id is not None:
            await self.hearth.open_conversation(conversation_id)

    def action_forget(self) -> None:
        conversation_id = self._selected()
        if conversation_id is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.forget(conversation_id)

        title = str(self.query_one(DataTable).get_row(conversation_id)[0])
        self.app.push_screen(
            ConfirmScreen(f"Forget the conversation “{title}”?",
                          "Its messages, feedback and training examples are deleted for good."),
            answered,
        )

    @work(thread=True, group="history-write", exit_on_error=False)
    def forget(self, conversation_id: str) -> None:
        app = self.hearth
        try:
            app.store.forget_conversation(conversation_id)
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(app.report, exc)
            return
        app.call_from_thread(self._forgotten, conversation_id)

    def _forgotten(self, conversation_id: str) -> None:
        chat = self.hearth.chat
        if chat is not None and chat.conversation_id == conversation_id:
            chat.new_conversation()
        self.notify("Forgot the conversation.")
        self.load(self.query_one("#search", Input).value)


def _matching(store: Store, rows: list[Any], query: str) -> list[Any]:
    """Conversations whose title matches, then those where something said matches."""
    needle = query.lower()
    by_id = {row.id: row for row in rows}
    found = [row.id for row in rows if needle in (row.title or "").lower()]
    for hit in store.search(query, k=20, kinds=["history"]):
        try:
            conversation_id = store.get_message(hit.id).conversation_id
        except Exception:  # noqa: BLE001 - forgotten meanwhile
            continue
        if conversation_id in by_id and conversation_id not in found:
            found.append(conversation_id)
    return [by_id[i] for i in found]
