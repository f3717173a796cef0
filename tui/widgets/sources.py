"""A collapsed list of the sources an answer used: memories, documents, past answers."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Collapsible, Static

from tui.formatting import clip


class Sources(Collapsible):
    """`Sources (n)`; expands to one line per source: its provenance label and a snippet."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        lines = [
            Static(Content.from_markup("[b]$label[/]: $text", label=label, text=clip(text, 160)),
                   classes="source")
            for label, text in rows
        ]
        super().__init__(*lines, title=f"Sources ({len(rows)})", collapsed=True)
