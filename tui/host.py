"""`Host`: what the screens may use of the app, so screens never import `tui.app`.

`tui.app.HearthApp` satisfies it (the app imports the screens; the screens see only this
protocol, so the imports run one way). Textual's own `App` methods the screens call
(`call_from_thread`, `notify`) are listed too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent.core.turn import Chat
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.store import Store
    from tui.model_thread import ModelThread


class Host(Protocol):
    """The long-lived things the app owns, and the few calls screens make on it."""

    store: Store
    runtime: Runtime | None
    chat: Chat | None
    options: SamplingOptions | None
    model_spec: str | None
    model_thread: ModelThread
    turn_cancel: threading.Event | None
    pending_resume: tuple[str, list[Any]] | None

    def set_status(self, **changes: Any) -> None: ...

    def report(self, exc: BaseException, title: str = "") -> None: ...

    def from_thread(self, callback: Callable[..., Any], *args: Any) -> None: ...

    def reload_model(self, spec: str | None) -> None: ...

    async def open_conversation(self, conversation_id: str) -> None: ...

    def call_from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
