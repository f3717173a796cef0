"""The chat screen: ask, watch the answer stream in, and correct it.

Enter sends; the answer streams into a Markdown bubble from a worker while the input stays
usable. Esc stops the answer (the partial text is kept and recorded) and keeps whatever is
in the input box, putting the question back when the box is empty. ctrl+y / ctrl+n accept or
reject the last answer, ctrl+o edits it (the saved text becomes the answer Hearth learns),
ctrl+r asks again, ctrl+l starts a new conversation. Lines starting with `/` are the
slash commands shared with `hearth chat` (`agent.core.commands`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui import services
from tui.screens.edit_text import EditTextScreen
from tui.state import AppStatus
from tui.widgets.message_bubble import MessageBubble
from tui.widgets.nav_bar import NavBar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from agent.core.commands import CommandResult
    from agent.core.turn import TurnEvent
    from memory.records import MessageRecord
    from tui.host import Host

WELCOME = (
    "Ask anything; Enter sends. Everything stays on this machine.\n\n"
    "After an answer: ctrl+y accept · ctrl+n reject · ctrl+o edit it\n"
    "ctrl+r ask again · ctrl+l new chat · Esc stops an answer\n"
    "/remember FACT teaches a fact · /forget TEXT · /help\n"
    "F2 history · F3 memory · F4 adapters · F5 settings · ctrl+q quits"
)
FEEDBACK_NOTE = {
    "accepted": "Accepted: this answer is now a training example.",
    "rejected": "Rejected: it will not be trained on.",
    "edited": "Saved your correction: it is the answer Hearth will learn.",
}


class ChatScreen(Screen[None]):
    """One conversation with the assistant."""

    CSS_PATH = "chat.tcss"
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+y", "feedback('accepted')", "Accept"),
        Binding("ctrl+n", "feedback('rejected')", "Reject"),
        Binding("ctrl+o", "edit", "Edit"),
        Binding("ctrl+r", "regenerate", "Retry"),
        Binding("ctrl+l", "new_conversation", "New"),
    ]

    generating: reactive[bool] = reactive(False, bindings=True)

    class Turn(Message):
        """A TurnEvent from the worker, for the answer bubble it streams into."""

        def __init__(self, answer: MessageBubble, event: TurnEvent) -> None:
            super().__init__()
            self.answer, self.event = answer, event

    class TurnFailed(Message):
        """The turn raised before it was recorded."""

        def __init__(self, answer: MessageBubble, error: BaseException) -> None:
            super().__init__()
            self.answer, self.error = answer, error

    def __init__(self) -> None:
        super().__init__()
        self.pending: tuple[str, MessageBubble] | None = None
        """A question asked before the model was ready, and its waiting answer bubble."""
        self.last_question = ""
        self._cancel: threading.Event | None = None
        self._feedback_lock = threading.Lock()
        self._feedback_seq = 0
        """Bumped on the UI thread per feedback key: the last key pressed wins."""

    @property
    def hearth(self) -> Host:
        return cast("Host", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar("chat")
        with VerticalScroll(id="transcript"):
            yield Static(WELCOME, id="welcome", markup=False)
        yield Input(placeholder="Ask Hearth…  (Enter sends, /help lists commands)", id="prompt")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).focus()
        self.watch(self.app, "status", self._status_changed)

    async def on_screen_resume(self) -> None:
        """Clear a transcript whose conversation was forgotten elsewhere (History)."""
        chat = self.hearth.chat
        stale = chat is not None and chat.conversation_id is None and not self.generating
        if stale and self.pending is None and self.query(MessageBubble):
            await self._clear()

    # state -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating or self.pending is not None
        if action in ("feedback", "edit", "regenerate"):
            return None if self.generating or self.last_answer() is None else True
        if action == "new_conversation":
            return None if self.generating else True
        return True

    def last_answer(self) -> MessageBubble | None:
        bubbles = [b for b in self.query(MessageBubble) if b.role == "assistant" and b.message_id]
        return bubbles[-1] if bubbles else None

    def _status_changed(self, status: AppStatus) -> None:
        if status.loading is None and self.hearth.chat is not None and self.pending is not None:
            (text, bubble), self.pending = self.pending, None
            bubble.set_note("thinking…")
            self._begin(text, bubble)

    async def _add(self, bubble: MessageBubble) -> MessageBubble:
        transcript = self.query_one("#transcript", VerticalScroll)
        for welcome in self.query("#welcome"):
            await welcome.remove()
        await transcript.mount(bubble)
        transcript.anchor()
        return bubble

    # asking ------------------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    async def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if text.startswith("/"):
            event.input.clear()
            self.slash_command(text)
            return
        if self.generating or self.pending is not None:
            self.notify("Still answering: press Esc to stop it first (your text stays here).")
            return
        event.input.clear()
        await self.start_turn(text)

    async def start_turn(self, text: str, show_question: bool = True) -> None:
        """Show the question and stream the answer (or wait for the model)."""
        if show_question:
            await self._add(MessageBubble("user", text))
        self.last_question = text
        if self.hearth.chat is None:
            bubble = await self._add(MessageBubble("assistant", streaming=True,
                                                   note="waiting for the model to load…"))
            self.pending = (text, bubble)
            self.refresh_bindings()
            return
        self._begin(text, await self._add(MessageBubble("assistant", streaming=True)))

    def _begin(self, text: str, bubble: MessageBubble) -> None:
        self._cancel = self.hearth.turn_cancel = threading.Event()
        self.generating = True
        self.hearth.set_status(activity="answering…")
        self.run_turn(text, self._cancel, bubble)

    @work(thread=True, group="turn", exit_on_error=False)
    def run_turn(self, text: str, cancel: threading.Event, bubble: MessageBubble) -> None:
        """Stream one turn on the model thread; events come back as messages."""
        chat = self.hearth.chat
        assert chat is not None

        def stream() -> None:
            for event in chat.send(text, cancel):
                self.post_message(self.Turn(bubble, event))

        try:
            self.hearth.model_thread.call(stream)
        except Exception as exc:  # noqa: BLE001 - reported as a notification
            self.post_message(self.TurnFailed(bubble, exc))

    @on(Turn)
    async def turn_event(self, message: Turn) -> None:
        event, bubble = message.event, message.answer
        if event.kind == "token":
            await bubble.append(event.text)
            if event.stats is not None and event.stats.generated_tokens % 8 == 0:
                self.hearth.set_status(tokens_per_s=event.stats.tokens_per_s)
        elif event.kind == "notice":
            self.notify(event.text)
        elif event.kind == "done":
            stats = event.stats
            speed = stats.tokens_per_s if stats else None
            reason = stats.finish_reason if stats else None
            stopped = {"cancelled": "stopped", "loop": "stopped: it began repeating itself",
                       "length": "cut at the length limit"}.get(reason or "", "")
            bubble.arm = event.arm
            await bubble.finish(event.message_id, services.sources(event.hits),
                                event.adapter_version, speed, stopped)
            self._turn_over()
            self.hearth.set_status(tokens_per_s=speed, adapter=event.adapter_version)

    @on(TurnFailed)
    async def turn_failed(self, message: TurnFailed) -> None:
        await message.answer.fail(str(message.error).split(";")[0][:60])
        self._turn_over()
        self._offer_again()
        self.hearth.report(message.error, title="No answer")

    def _turn_over(self) -> None:
        self.generating = False
        self._cancel = self.hearth.turn_cancel = None
        self.hearth.set_status(activity=None)

    async def action_stop(self) -> None:
        """Stop the answer (its partial text is kept). What is typed in the box stays; a
        question stopped before any answer came is offered again, selected."""
        if self.pending is not None:
            (_, bubble), self.pending = self.pending, None
            await bubble.remove()
            self.refresh_bindings()
            self._offer_again()
        elif self._cancel is not None:
            self._cancel.set()
            answering = [b for b in self.query(MessageBubble) if b.role == "assistant"]
            if answering and not answering[-1].text:
                self._offer_again()
        self.query_one("#prompt", Input).focus()

    def _offer_again(self) -> None:
        """Put the last question back in an empty box, selected (Enter re-asks it)."""
        prompt = self.query_one("#prompt", Input)
        if not prompt.value:
            prompt.value = self.last_question
            prompt.action_select_all()

    # feedback ----------------------------------------------------------------------------
    def action_feedback(self, kind: str) -> None:
        bubble = self.last_answer()
        if bubble is not None:
            self._feedback_seq += 1
            self.send_feedback(bubble, kind, seq=self._feedback_seq)

    def action_edit(self) -> None:
        bubble = self.last_answer()
        if bubble is None:
            return

        def save(text: str | None) -> None:
            if text is not None:
                self._feedback_seq += 1
                self.send_feedback(bubble, "edited", text, seq=self._feedback_seq)

        self.app.push_screen(
            EditTextScreen("Edit the answer", bubble.text,
                           "ctrl+s saves: your version becomes the answer Hearth learns. "
                           "F7 selects all."),
            save,
        )

    @work(thread=True, group="store", exit_on_error=False)
    def send_feedback(self, bubble: MessageBubble, kind: str, edited: str | None = None,
                      seq: int = 0) -> None:
        """Store one verdict. Feedback writes are serialised, and one overtaken by a later
        key press (a higher `seq`) is dropped, so the last key pressed is what is stored
        whatever order the threads run in."""
        app, chat = self.hearth, self.hearth.chat
        with self._feedback_lock:
            if seq and seq != self._feedback_seq:
                return  # a later verdict was given: it is stored instead (or already was)
            try:
                if chat is not None:
                    chat.feedback(kind, edited_text=edited, message_id=bubble.message_id)
                else:
                    app.store.add_feedback(str(bubble.message_id), kind, edited_text=edited)
            except Exception as exc:  # noqa: BLE001
                app.call_from_thread(app.report, exc)
                return
            app.from_thread(self._feedback_shown, bubble, kind, edited)  # shown in order too

    async def _feedback_shown(self, bubble: MessageBubble, kind: str, edited: str | None) -> None:
        await bubble.set_feedback(kind, edited)
        self.notify(FEEDBACK_NOTE[kind])

    # regenerate, new, reopen ---------------------------------------------------------------
    async def action_regenerate(self) -> None:
        chat, bubble = self.hearth.chat, self.last_answer()
        if chat is None or bubble is None or len(chat.history) < 2:
            self.notify("Nothing to ask again yet.")
            return
        question = chat.history[-2]["content"]
        chat.history = chat.history[:-2]
        await bubble.remove()
        await self.start_turn(question, show_question=False)

    async def action_new_conversation(self) -> None:
        if self.hearth.chat is not None:
            self.hearth.chat.new_conversation()
        self.hearth.pending_resume = None
        await self._clear()
        self.query_one("#prompt", Input).focus()

    async def _clear(self) -> None:
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.remove_children()
        await transcript.mount(Static(WELCOME, id="welcome", markup=False))
        self.refresh_bindings()

    def load_conversation(self, conversation_id: str) -> None:
        if self.generating:
            self.notify("Stop the current answer (Esc) before opening another conversation.")
            return
        self.fetch_conversation(conversation_id)

    @work(thread=True, group="store", exclusive=True, exit_on_error=False)
    def fetch_conversation(self, conversation_id: str) -> None:
        try:
            messages = services.conversation(self.hearth.store, conversation_id)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.hearth.report, exc)
            return
        self.hearth.from_thread(self.show_conversation, conversation_id, messages)

    async def show_conversation(self, conversation_id: str, messages: list[Any]) -> None:
        """Replace the transcript with a stored conversation and continue it."""
        await self._clear()
        for m in messages:
            await self._add(_bubble_for(m))
        if self.hearth.chat is not None:
            services.resume(self.hearth.chat, conversation_id, messages)
        else:
            self.hearth.pending_resume = (conversation_id, messages)
        self.refresh_bindings()
        self.query_one("#prompt", Input).focus()

    # slash commands ------------------------------------------------------------------------
    @work(thread=True, group="store", exit_on_error=False)
    def slash_command(self, line: str) -> None:
        app = self.hearth
        if self.generating and line.split()[0].lower() in ("/new", "/accept", "/reject", "/edit"):
            app.call_from_thread(self.notify, "Wait for the answer to finish (or press Esc).")
            return
        try:
            result = services.run_command(app.chat, app.store, line)
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(app.report, exc)
            return
        app.from_thread(self._slash_done, result)

    async def _slash_done(self, result: CommandResult) -> None:
        if result.quit:
            self.app.exit()
            return
        bubble = self.last_answer()
        if result.feedback is not None and bubble is not None:
            await bubble.set_feedback(result.feedback, result.edited_text)
        if result.new_conversation:
            await self._clear()
        self.notify(result.message, timeout=6)


def _bubble_for(message: MessageRecord) -> MessageBubble:
    """A transcript bubble for a stored message record."""
    if message.role == "user":
        return MessageBubble("user", message.text)
    bubble = MessageBubble(
        "assistant",
        services.shown_text(message),
        message_id=message.id,
        sources=services.sources(message.hits),
        adapter=message.adapter_version,
        speed=message.tokens_per_s,
        feedback=message.feedback,
    )
    bubble.arm = message.arm  # details only, as for a live answer
    return bubble
