"""The top line: the app's name and its five screens, the current one highlighted.

Each entry is clickable and names its key, so the screens can be found without the docs.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

SCREENS = (
    ("chat", "F1", "Chat"),
    ("history", "F2", "History"),
    ("memory", "F3", "Memory"),
    ("adapters", "F4", "Adapters"),
    ("settings", "F5", "Settings"),
)


def nav_content(current: str) -> Content:
    """The bar's text with `current` highlighted."""
    items = [Content.from_markup("[b $accent]Hearth[/]")]
    for mode, key, label in SCREENS:
        style = "reverse" if mode == current else ""
        items.append(Content.from_markup(
            f"[@click=app.goto('{mode}')][dim]{key}[/dim] [{style}]$label[/][/]"
            if style else f"[@click=app.goto('{mode}')][dim]{key}[/dim] $label[/]",
            label=label,
        ))
    return Content("  ").join(items)


class NavBar(Static):
    """Names the screens; `current` is the mode this bar's screen belongs to."""

    def __init__(self, current: str) -> None:
        super().__init__(nav_content(current))
        self.current = current
