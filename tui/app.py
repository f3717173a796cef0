"""`HearthApp`: the Textual app behind `hearth`, and `run_app()` which opens it.

The app owns the long-lived things: the store, the model runtime (loaded in a worker on the
model thread while the screens are already usable), the current `Chat`, and the status shown
by every screen's status bar. Screens are Textual modes (F1–F5); they reach these through
`self.app`. Tests build `HearthApp(runtime_factory=..., store=...)` to inject a tiny model
and a temporary store.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen

from tui import services
from tui.errors import describe
from tui.model_thread import ModelThread, ModelThreadClosed
from tui.screens.adapters import AdaptersScreen
from tui.screens.chat import ChatScreen
from tui.screens.experiments import ExperimentsScreen
from tui.screens.history import HistoryScreen
from tui.screens.memory import MemoryScreen
from tui.screens.settings import SettingsScreen
from tui.state import AppStatus
from tui.widgets.nav_bar import SCREENS

if TYPE_CHECKING:
    from agent.core.turn import Chat
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.store import Store

RuntimeFactory = Callable[[], "Runtime"]


class HearthApp(App[int]):
    """Chat, history, memory, adapters and settings over one store and one model."""

    TITLE = "Hearth"
    CSS_PATH = ["app.tcss", "widgets/widgets.tcss"]
    MODES = {
        "chat": ChatScreen,
        "history": HistoryScreen,
        "memory": MemoryScreen,
        "adapters": AdaptersScreen,
        "settings": SettingsScreen,
        "experiments": ExperimentsScreen,
    }
    DEFAULT_MODE = "chat"
    BINDINGS = [
        Binding("f1", "goto('chat')", "Chat", show=False),
        Binding("f2", "goto('history')", "History", show=False),
        Binding("f3", "goto('memory')", "Memory", show=False),
        Binding("f4", "goto('adapters')", "Adapters", show=False),
        Binding("f5", "goto('settings')", "Settings", show=False),
        Binding("f6", "goto('experiments')", "Experiments", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    status: reactive[AppStatus] = reactive(AppStatus)

    def __init__(
        self,
        *,
        runtime_factory: RuntimeFactory | None = None,
        store: Store | None = None,
        model: str | None = None,
        allow_download: bool = False,
        options: SamplingOptions | None = None,
        warm_up: bool = True,
    ) -> None:
        super().__init__()
        self.store: Store = store if store is not None else services.open_store()
        self._owns_store = store is None
        self.runtime_factory = runtime_factory
        self.model_spec = model
        self.allow_download = allow_download
        self.options = options
        self.warm_up = warm_up
        self.model_thread = ModelThread()
        self.runtime: Runtime | None = None
        self.chat: Chat | None = None
        self.turn_cancel: threading.Event | None = None
        """Set by the chat screen while a turn runs, so quitting can stop it."""
        self.pending_resume: tuple[str, list[Any]] | None = None
        """A conversation opened before the model was ready: (id, messages)."""
        self._previous_chat: Chat | None = None

    # lifecycle ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.status = AppStatus(offline=services.offline())
        self.load_model()
        if self.warm_up:
            self.warm_up_embedder()

    def on_unmount(self) -> None:
        self.workers.cancel_all()
        if self.turn_cancel is not None:
            self.turn_cancel.set()
        self.model_thread.shutdown()
        if self._owns_store:
            self.store.close()

    # model -------------------------------------------------------------------------------
    @work(thread=True, group="model", exclusive=True, exit_on_error=False)
    def load_model(self) -> None:
        """Load (or reload) the model on the model thread; the UI stays usable meanwhile."""
        try:
            options = self.options or services.sampling(self.store)
            spec = self.model_spec or services.model_choice(self.store)
            factory = self.runtime_factory or (
                lambda: services.load_runtime(spec, self.allow_download, self._conversion)
            )
            runtime = self.model_thread.call(factory)
            backend = self.model_thread.call(services.backend_label)
            chat = services.new_chat(runtime, self.store, options)
            notice = self.model_thread.call(services.sync_adapter, chat)
            stale = services.drift_status(self.store)
        except ModelThreadClosed:
            return  # quitting
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            self.call_from_thread(self._model_failed, exc)
            return
        self.call_from_thread(self._model_ready, runtime, chat, backend, notice)
        if stale:
            self.call_from_thread(self.set_status, stale=stale)
            self.call_from_thread(self.notify, f"{stale}; the next refresh retrains it")

    def _conversion(self, done: int, total: int) -> None:
        percent = int(100 * done / total) if total else 0
        self.call_from_thread(self.set_status, loading=f"converting the bundled model {percent}%")

    def _model_ready(self, runtime: Runtime, chat: Chat, backend: str, notice: str | None) -> None:
        self.runtime, self.chat = runtime, chat
        if self._previous_chat is not None:
            services.carry_over(self._previous_chat, chat)
            self._previous_chat = None
        if self.pending_resume is not None:
            services.resume(chat, *self.pending_resume)
            self.pending_resume = None
        self.set_status(loading=None, model=runtime.ref.id, backend=backend,
                        adapter=chat.adapter_version())
        if notice:
            self.notify(notice)

    def _model_failed(self, exc: BaseException) -> None:
        self.set_status(loading="no model loaded (see Settings)")
        self.notify(f"{describe(exc).rstrip('.')}. Choose another model in Settings (F5).",
                    title="The model did not load", severity="error", timeout=15)

    def reload_model(self, spec: str | None) -> None:
        """Load another model (from Settings); the conversation carries over."""
        self._previous_chat = self.chat
        self.model_spec = spec
        self.chat = None
        self.set_status(loading="loading the model…", model="")
        self.load_model()

    def warm_up_embedder(self) -> None:
        """Load the embedding model in the background, best effort.

        A daemon thread rather than a worker: Textual waits for its workers' threads when
        quitting, and quitting must not wait for torch to finish importing.
        """

        def run() -> None:
            try:
                services.warm_up_embedder(self.store)
            except Exception as exc:  # noqa: BLE001
                with contextlib.suppress(RuntimeError):
                    self.call_from_thread(self.report, exc)

        threading.Thread(target=run, name="hearth-warm-up", daemon=True).start()

    # status and errors --------------------------------------------------------------------
    def set_status(self, **changes: Any) -> None:
        """Replace fields of the status (UI thread)."""
        self.status = replace(self.status, **changes)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Notifications are plain text: they quote the user's data and error messages,
        which may hold brackets that are not markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def from_thread(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` on the UI thread from a worker (awaited if async)."""
        self.call_from_thread(callback, *args)

    def report(self, exc: BaseException, title: str = "") -> None:
        """Show an error as a notification that says what to do (UI thread)."""
        self.notify(describe(exc), title=title, severity="error", timeout=10)

    # navigation ----------------------------------------------------------------------------
    def action_goto(self, mode: str) -> None:
        if mode != self.current_mode:
            self.switch_mode(mode)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The screens in the command palette (ctrl+p), for keyboards without F-keys."""
        yield from super().get_system_commands(screen)
        for mode, key, label in SCREENS:
            yield SystemCommand(f"Go to {label}", f"Open the {label} screen ({key})",
                                partial(self.action_goto, mode))
        yield SystemCommand("Go to Experiments", "A/B trials of adapters and prompts (F6)",
                            partial(self.action_goto, "experiments"))

    async def open_conversation(self, conversation_id: str) -> None:
        """Show a stored conversation in the chat screen and continue it there."""
        await self.switch_mode("chat")
        screen = self.screen
        if isinstance(screen, ChatScreen):
            screen.load_conversation(conversation_id)


def run_app(model: str | None = None, allow_download: bool = False) -> int:
    """Open the app on the user's store; returns the exit code."""
    app = HearthApp(model=model, allow_download=allow_download)
    result = app.run()
    return int(result or 0)
