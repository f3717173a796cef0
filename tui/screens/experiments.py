"""Experiments: live A/B trials of a candidate adapter or prompt, their per-arm acceptance
with intervals, the stopping rule's looks, and stop / start.

Reads through `tui.services` (never SQL); the numbers come from `adapters.training.experiments`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui import formatting, services
from tui.screens.ask_text import AskTextScreen
from tui.widgets.nav_bar import NavBar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tui.host import Host


def detail(s: Any) -> str:
    """The selected trial in a few lines (plain text)."""
    d = s.decision
    c = d.counts

    def arm(label: str, n: int, acc: int, ci: tuple[float, float]) -> str:
        rate = f"{acc / n:.0%}" if n else "–"
        return f"{label:<10} {acc}/{n} accepted ({rate}, 95% {ci[0]:.2f}–{ci[1]:.2f})"

    lines = [f"{s.kind} trial {s.id}: {s.status}",
             f"{s.incumbent} (incumbent) vs {s.candidate} (candidate)",
             arm("incumbent", c.n_a, c.acc_a, d.interval_a),
             arm("candidate", c.n_b, c.acc_b, d.interval_b),
             f"P(candidate better) {d.p_better:.3f} · P(no difference) {d.p_same:.3f}",
             f"now: {s.reason if s.status != 'running' else d.reason}"]
    lines += [f"look {x['look']}: {x['action']} ({x['acc_a']}/{x['n_a']} vs {x['acc_b']}/"
              f"{x['n_b']})" for x in s.looks[-4:]]
    return "\n".join(lines)


class ExperimentsScreen(Screen[None]):
    """The trials table and the selected trial's numbers."""

    CSS_PATH = "experiments.tcss"
    BINDINGS = [
        Binding("n", "start", "New adapter trial"),
        Binding("s", "stop", "Stop trial"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: dict[str, Any] = {}

    @property
    def hearth(self) -> Host:
        return cast("Host", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar("experiments")
        yield DataTable(id="trials", cursor_type="row", zebra_stripes=True)
        yield Static("No trials yet. n puts a gated candidate adapter on trial.",
                     id="trial-detail", markup=False)
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#trials", DataTable)
        for key, label in (("id", "Trial"), ("kind", "Kind"), ("status", "Status"),
                           ("arms", "Incumbent → candidate"), ("a", "Incumbent"),
                           ("b", "Candidate"), ("started", "Started")):
            table.add_column(label, key=key)
        table.focus()
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, group="experiments", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        try:
            rows = services.experiment_summaries(self.hearth.store)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.hearth.report, exc)
            return
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[Any]) -> None:
        self.summaries = {s.id: s for s in rows}
        table = self.query_one("#trials", DataTable)
        table.clear()
        for s in rows:
            c = s.decision.counts
            table.add_row(*formatting.cells(
                formatting.clip(s.id, 12), s.kind, ("● " if s.status == "running" else "") + s.status,
                formatting.clip(f"{s.incumbent} → {s.candidate}", 28), f"{c.acc_a}/{c.n_a}",
                f"{c.acc_b}/{c.n_b}", formatting.short_date(s.started_at)), key=s.id)
        if rows:
            self.query_one("#trial-detail", Static).update(detail(rows[0]))

    @on(DataTable.RowHighlighted, "#trials")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        s = self.summaries.get(str(event.row_key.value))
        if s is not None:
            self.query_one("#trial-detail", Static).update(detail(s))

    def action_stop(self) -> None:
        self.change(services.stop_experiment, "Trial stopped; the incumbent serves from the next turn.")

    def action_start(self) -> None:
        def chosen(version: str | None) -> None:
            if version:
                checksum = self.hearth.runtime.ref.checksum if self.hearth.runtime else None
                self.change(lambda store: services.start_adapter_trial(store, version, checksum),
                            f"{version} is on trial; new conversations get an arm.")

        self.app.push_screen(AskTextScreen("Candidate adapter version to put on trial",
                                           placeholder="v2"), chosen)

    @work(thread=True, group="experiments-change", exit_on_error=False)
    def change(self, action: Any, done: str) -> None:
        try:
            action(self.hearth.store)
        except Exception as exc:  # noqa: BLE001 - shown as a notification
            self.app.call_from_thread(self.hearth.report, exc)
            return
        self.app.call_from_thread(self.notify, done)
        self.load()
