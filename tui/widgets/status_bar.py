"""The one-line status bar: model, backend, adapter version, speed, and the offline mark."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from tui.formatting import tokens_per_s
from tui.state import AppStatus


def describe(status: AppStatus) -> Content:
    """The left part of the bar for `status`."""
    parts: list[Content] = []
    if status.loading:
        parts.append(Content.from_markup("[$warning]◌ $what[/]", what=status.loading))
    else:
        parts.append(Content.from_markup("[$success]●[/] [b]$model[/]", model=status.model))
    if status.backend:
        parts.append(Content(status.backend))
    if not status.loading:
        parts.append(Content(f"adapter {status.adapter}" if status.adapter else "base model"))
        parts.append(Content(tokens_per_s(status.tokens_per_s)))
    if status.stale:
        parts.append(Content.from_markup("[$warning]adapter stale: retrains at next refresh[/]"))
    if status.activity:
        parts.append(Content.from_markup("[$accent]$what[/]", what=status.activity))
    return Content(" │ ").join(parts)


class StatusBar(Horizontal):
    """Shows the app's `status`; it watches the app, so every screen's bar stays current."""

    def compose(self) -> ComposeResult:
        yield Static(id="status-left")
        yield Static(id="status-right")

    def on_mount(self) -> None:
        self.watch(self.app, "status", self.show, init=True)

    def show(self, status: AppStatus) -> None:
        self.query_one("#status-left", Static).update(describe(status))
        right = "⏻ offline" if status.offline else "⚠ online"
        self.query_one("#status-right", Static).update(right)
        self.set_class(not status.offline, "-online")
