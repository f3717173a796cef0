"""One message in the chat transcript.

A user message is plain text. An answer is Markdown that streams in token by token (through
Textual's `MarkdownStream`, which batches updates when tokens come faster than the screen
redraws), followed by its sources and one line of provenance: the adapter version that
produced it, its speed, and the user's feedback.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from agent.foundation.textsafe import terminal_safe
from tui.formatting import tokens_per_s
from tui.widgets.sources import Sources

FEEDBACK_MARK = {"accepted": "✓ accepted", "rejected": "✗ rejected", "edited": "✎ edited"}


class MessageBubble(Vertical):
    """A user message or an answer. Answers carry their message id once recorded."""

    def __init__(
        self,
        role: str,
        text: str = "",
        *,
        message_id: str | None = None,
        sources: list[tuple[str, str]] | None = None,
        adapter: str | None = None,
        speed: float | None = None,
        feedback: str | None = None,
        streaming: bool = False,
        note: str = "",
    ) -> None:
        super().__init__(classes=f"bubble -{role}")
        self.role = role
        self.text = text
        self.message_id = message_id
        self.sources = sources or []
        self.adapter = adapter
        self.speed = speed
        self.feedback = feedback
        self.note = note or ("thinking…" if streaming else "")
        self.arm: str | None = None
        """The A/B arm that served this answer (shown in the details line only)."""
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Label("You" if self.role == "user" else "Hearth", classes="who")
        if self.role == "user":
            yield Static(terminal_safe(self.text), markup=False, classes="body")
            return
        yield Markdown(terminal_safe(self.text), classes="body", open_links=False)  # offline: never a browser
        if self.sources:
            yield Sources(self.sources)
        yield Static(self.meta_line(), markup=False, classes="meta")

    def meta_line(self) -> str:
        """'adapter v3 · 12.3 tok/s · ✓ accepted' (or what is happening now)."""
        if self.note and self.message_id is None:
            return self.note
        parts = [f"adapter {self.adapter}" if self.adapter else "base model"]
        if self.arm:
            parts.append(f"A/B {self.arm}")
        if self.speed is not None:
            parts.append(tokens_per_s(self.speed))
        if not self.sources:
            parts.append("no sources")
        if self.note:
            parts.append(self.note)
        if self.feedback:
            parts.append(FEEDBACK_MARK.get(self.feedback, self.feedback))
        return " · ".join(parts)

    def set_note(self, note: str) -> None:
        """Say what is happening to this answer ('thinking…')."""
        self.note = note
        self._refresh_meta()

    def _refresh_meta(self) -> None:
        if self.role == "assistant":
            self.query_one(".meta", Static).update(self.meta_line())

    # streaming ---------------------------------------------------------------------------
    async def append(self, fragment: str) -> None:
        """Add streamed text to the answer."""
        if not fragment:
            return
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one(Markdown))
            self.note = "answering…"
            self._refresh_meta()
        self.text += fragment
        await self._stream.write(terminal_safe(fragment))  # no escapes reach the terminal

    async def finish(
        self,
        message_id: str | None,
        sources: list[tuple[str, str]],
        adapter: str | None,
        speed: float | None,
        stopped: bool | str = False,
    ) -> None:
        """The answer is complete (or was stopped: True, or a note saying why) and recorded
        as `message_id`."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.message_id, self.sources, self.adapter, self.speed = message_id, sources, adapter, speed
        self.note = stopped if isinstance(stopped, str) else ("stopped" if stopped else "")
        if not self.text:
            await self.query_one(Markdown).update("*(no answer)*")
        if sources:
            await self.mount(Sources(sources), before=self.query_one(".meta"))
        self._refresh_meta()

    async def fail(self, message: str) -> None:
        """Generation failed before anything was recorded."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.note = f"failed: {message}"
        self._refresh_meta()
        self.add_class("-failed")

    # feedback ----------------------------------------------------------------------------
    async def set_feedback(self, kind: str, edited_text: str | None = None) -> None:
        """Show the user's verdict; an edit replaces the shown text with the correction."""
        self.feedback = kind
        if kind == "edited" and edited_text is not None:
            self.text = edited_text
            await self.query_one(Markdown).update(edited_text)
        self._refresh_meta()
