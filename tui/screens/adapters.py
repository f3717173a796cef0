"""Personal adapters: versions with their metrics and gate verdicts, activate, roll back,
train now, and how close the user is to the cold-start threshold.

"Train now" runs the same refresh as `hearth refresh` in a child process (so training never
slows the UI), streams its output into a log and its progress into a bar, and when it ends
the chat swaps the new adapter in without reloading the base model.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, ProgressBar, RichLog, Static
from textual.worker import get_current_worker

from tui import formatting, refresh_runner, services
from tui.widgets.nav_bar import NavBar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from memory.records import AdapterRecord
    from memory.store import Store
    from tui.host import Host



class AdaptersScreen(Screen[None]):
    """The adapter registry, the cold-start gauge and the training panel."""

    CSS_PATH = "adapters.tcss"
    BINDINGS = [
        Binding("a", "activate", "Activate"),
        Binding("b", "rollback", "Roll back"),
        Binding("t", "train", "Train now"),
        Binding("x", "stop_training", "Stop training"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.process: subprocess.Popen[bytes] | None = None
        self.rows: dict[str, AdapterRecord] = {}

    @property
    def hearth(self) -> Host:
        return cast("Host", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar("adapters")
        with Horizontal(id="cold-start"):
            yield Label("", id="cold-label", markup=False)
            yield ProgressBar(total=1, show_eta=False, show_percentage=False, id="cold-bar")
        yield DataTable(id="versions", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail", markup=False)
        with Horizontal(id="train-row"):
            yield Label("Training: idle (t starts a refresh)", id="train-label", markup=False)
            yield ProgressBar(total=1, show_eta=False, id="train-bar")
        yield RichLog(id="train-log", max_lines=500, wrap=True, min_width=20)
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#versions", DataTable)
        for key, label in (("id", "Version"), ("status", "Status"), ("n", "Examples"),
                           ("personal", "Personal NLL"), ("probe", "Probe NLL"),
                           ("verdict", "Verdict")):
            table.add_column(label, key=key)
        table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_training":
            return self.process is not None
        if action == "train":
            return None if self.process is not None else True
        return True

    def on_screen_resume(self) -> None:
        self.load()

    # the registry --------------------------------------------------------------------------
    @work(thread=True, group="adapters", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        store = self.hearth.store
        try:
            rows, gauge = services.adapter_versions(store), services.cold_start(store)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.hearth.report, exc)
            return
        self.app.call_from_thread(self._show, rows, gauge)

    def _show(self, rows: list[AdapterRecord], gauge: services.ColdStart) -> None:
        self.rows = {row["id"]: row for row in rows}
        table = self.query_one("#versions", DataTable)
        table.clear()
        for row in rows:
            metrics = row.get("metrics") or {}
            n = (row.get("n_train") or 0) + (row.get("n_valid") or 0)
            cells = formatting.cells(
                formatting.clip(str(row["id"]), 16),
                ("● " if row.get("status") == "active" else "") + str(row.get("status") or ""),
                str(n or "–"),
                formatting.nll_change(metrics, "personal_nll"),
                formatting.nll_change(metrics, "probe_nll"),
                formatting.clip(str(row.get("verdict") or "–"), 12),
            )
            table.add_row(*cells, key=row["id"])
        if not rows:
            self.query_one("#detail", Static).update(
                "No adapters yet. Accept or edit answers in Chat; past the threshold, "
                "t trains the first one.")
        self.query_one("#cold-label", Label).update(services.cold_start_summary(gauge) + "  ")
        self.query_one("#cold-bar", ProgressBar).update(
            total=max(gauge.needed, 1), progress=min(gauge.count, gauge.needed))

    @on(DataTable.RowHighlighted, "#versions")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.rows.get(str(event.row_key.value))
        if row is not None:
            self.query_one("#detail", Static).update(_detail(row))

    def _selected(self) -> str | None:
        table = self.query_one("#versions", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_activate(self) -> None:
        version = self._selected()
        if version is None:
            self.notify("No adapter to activate yet.")
            return
        checksum = self._base_checksum()
        self.change(lambda store: services.activate_adapter(store, version, checksum),
                    f"Activated {version}.")

    def action_rollback(self) -> None:
        checksum = self._base_checksum()

        def rollback(store: Store) -> str:
            now = services.rollback_adapter(store, checksum)
            return f"Rolled back: now serving {now}." if now else "Rolled back to the base model."

        self.change(rollback, "")

    def _base_checksum(self) -> str | None:
        runtime = self.hearth.runtime
        return runtime.ref.checksum if runtime is not None else None

    @work(thread=True, group="adapters-write", exit_on_error=False)
    def change(self, op: Any, note: str) -> None:
        """Change the registry, then have the chat serve the new active adapter."""
        app = self.hearth
        try:
            result = op(app.store)
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(app.report, exc)
            return
        app.call_from_thread(self.notify, note or str(result))
        app.call_from_thread(self.load)
        self.sync_chat()

    def sync_chat(self) -> None:
        """Swap the active adapter into the running chat (worker thread)."""
        app = self.hearth
        chat = app.chat
        if chat is None:
            return
        try:
            notice = app.model_thread.call(services.sync_adapter, chat)
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(app.report, exc)
            return
        app.call_from_thread(app.set_status, adapter=chat.adapter_version())
        if notice:
            app.call_from_thread(app.notify, notice)

    # training ------------------------------------------------------------------------------
    def action_train(self) -> None:
        if self.process is not None:
            self.notify("A refresh is already running.")
            return
        self.query_one("#train-log", RichLog).clear()
        self.train()

    @work(thread=True, group="train", exclusive=True, exit_on_error=False)
    def train(self) -> None:
        """Run the refresh in a child process, streaming its output."""
        app = self.hearth
        try:
            process, log = refresh_runner.start_refresh(refresh_runner.refresh_model(app.runtime))
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(app.report, exc, "Could not start training")
            return
        self.process = process
        app.call_from_thread(self._training, "starting…", None)
        worker = get_current_worker()
        code = refresh_runner.follow(process, log, lambda line: app.call_from_thread(self._train_line, line),
                               stopped=lambda: worker.is_cancelled)
        self.process = None
        if code is None:
            return
        app.call_from_thread(self._trained, code)
        self.sync_chat()

    def _training(self, what: str, progress: tuple[int, int] | None) -> None:
        self.query_one("#train-label", Label).update(f"Training: {what} ")
        bar = self.query_one("#train-bar", ProgressBar)
        bar.display = True
        if progress is not None:
            bar.update(total=max(progress[1], 1), progress=progress[0])
            self.hearth.set_status(activity=f"training {progress[0]}/{progress[1]}")
        else:
            self.hearth.set_status(activity="training…")
        self.refresh_bindings()

    def _train_line(self, line: str) -> None:
        text, progress = refresh_runner.refresh_event(line)
        self.query_one("#train-log", RichLog).write(text)
        if progress is not None:
            self._training(f"step {progress[0]}/{progress[1]}", progress)
        elif text.startswith(("evaluating", "verdict", "result")):
            self._training(text.split(" (")[0], None)
        if text.startswith(("training ", "result:")):
            self.load()  # a new version row appeared, or its verdict

    def _trained(self, code: int) -> None:
        self.hearth.set_status(activity=None)
        self.refresh_bindings()
        if code == 0:
            self.query_one("#train-label", Label).update("Training: done ")
            self.notify("Refresh finished; see the verdict in the table.")
        else:
            self.query_one("#train-label", Label).update(f"Training: stopped (exit {code}) ")
            self.notify("The refresh did not finish; its log is above. Press t to resume it.",
                        severity="warning")
        self.load()

    def action_stop_training(self) -> None:
        process = self.process
        if process is not None:
            refresh_runner.stop_refresh(process)
            self.notify("Stopping the refresh (it resumes from its checkpoint next time).")


def _detail(row: AdapterRecord) -> str:
    """The selected version in one or two lines: verdict, reason, metrics."""
    metrics = row.get("metrics") or {}
    train = metrics.get("train") or {}
    shown = ", ".join(f"{k} {formatting.number(v)}" for k, v in train.items()
                      if isinstance(v, int | float) and not isinstance(v, bool))
    reason = row.get("reason") or ""
    parts = [f"{row['id']}: {row.get('verdict') or row.get('status')}", reason, shown]
    return " · ".join(p for p in parts if p)
