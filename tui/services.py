"""The app's one doorway into `agent`, `memory` and `adapters`.

Screens call these small functions (from workers) instead of importing the packages'
internals, so when a package's API moves only this file changes. Nothing here draws, and
nothing here writes SQL: the store does. Functions that touch MLX must run on the model
thread (`tui.model_thread`); they say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from adapters.jobs import refresh
from adapters.training import registry
from agent.core import commands
from agent.foundation import offline as guard
from agent.foundation.errors import HearthError
from agent.llm import convert, models

if TYPE_CHECKING:
    from agent.core.turn import Chat
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.records import AdapterRecord, MessageRecord
    from memory.retrieval import Hit
    from memory.store import Store

SAMPLING_KEY = "sampling"
"""Settings key holding the chat's SamplingOptions as a dict."""
MODEL_KEY = "model"
"""Settings key holding the user's model choice (None: the bundled SmolLM2)."""

Progress = Callable[[int, int], None]


# -- opening things ------------------------------------------------------------------------


def open_store() -> Store:
    """The user's store (default path); raises StoreError with what to do."""
    from memory.store import Store  # lazy: imports numpy and sqlite-utils

    return Store.open()


def load_runtime(model: str | None, allow_download: bool, progress: Progress | None) -> Runtime:
    """Resolve (converting the bundled model on first use) and load. Model thread only."""
    from agent.llm.runtime import Runtime  # lazy: imports MLX

    ref = models.resolve(cached_model(model), allow_download=allow_download, progress=progress)
    return Runtime.load(ref)


def cached_model(spec: str | None) -> str | None:
    """Map a cached model's name (as Settings lists them) to what `resolve` takes:
    the bundled model's folders to None, other converted folders to their path."""
    if not spec:
        return None

    try:
        known = {str(m["name"]): str(m["path"]) for m in models.list_models()}
    except OSError:
        return spec
    if spec not in known:
        return spec
    return None if spec.startswith(convert.BUNDLED_ID) else known[spec]


def new_chat(runtime: Runtime, store: Store, options: SamplingOptions) -> Chat:
    from agent.core.turn import Chat  # lazy: imports MLX (via the runtime)

    return Chat(runtime, store, options=options)


def warm_up_embedder(store: Store) -> None:
    """Load the embedding model now, so the first question does not wait for it."""
    store.embedder.embed(["warm up"])


def backend_label() -> str:
    """'Metal', 'CUDA' or 'CPU'."""

    return {"metal": "Metal", "cuda": "CUDA"}.get(models.backend(), "CPU")


def offline() -> bool:
    """True when this process refuses network connections (no --allow-download)."""

    return guard.is_enabled()


# -- conversations -------------------------------------------------------------------------


def shown_text(message: MessageRecord) -> str:
    """An answer as the user last left it (memory's one rule: the latest edit wins)."""
    return message.final_text


def conversation(store: Store, conversation_id: str) -> list[MessageRecord]:
    """The user and assistant messages of a stored conversation, oldest first."""
    rows = store.conversation_messages(conversation_id)
    return [m for m in rows if m.role in ("user", "assistant")]


def resume(chat: Chat, conversation_id: str, messages: Iterable[MessageRecord]) -> None:
    """Point `chat` at a stored conversation so the next `send` continues it."""
    chat.new_conversation()
    chat.conversation_id = conversation_id
    for m in messages:
        chat.history.append({"role": m.role, "content": shown_text(m)})
        if m.role == "assistant":
            chat.last_answer_id = m.id


def carry_over(old: Chat, new: Chat) -> None:
    """Continue `old`'s conversation in `new` (after loading another model)."""
    new.conversation_id = old.conversation_id
    new.history = list(old.history)
    new.last_answer_id = old.last_answer_id


def sources(hits: Iterable[Hit | dict[str, Any]] | None) -> list[tuple[str, str]]:
    """(label, text) pairs for the sources an answer used: live `Hit`s, or the dicts a
    stored message keeps (`Hit.to_dict()`)."""
    pairs = []
    for hit in hits or []:
        data = hit if isinstance(hit, dict) else hit.to_dict()
        pairs.append((str(data.get("source") or data.get("kind") or ""), str(data.get("text") or "")))
    return pairs


class _StoreOnly:
    """What slash commands get while the model loads: the store, and no answer yet."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def feedback(self, kind: str, edited_text: str | None = None) -> int:
        raise HearthError("no answer yet to give feedback on (the model is still loading)")

    def new_conversation(self) -> None:
        return None


def run_command(chat: Chat | None, store: Store, line: str) -> commands.CommandResult:
    """Run a slash command (agent.core.commands) on the chat, or on the store alone while the
    model loads."""
    return commands.run_command(chat if chat is not None else _StoreOnly(store), line)


# -- settings ------------------------------------------------------------------------------


def sampling(store: Store) -> SamplingOptions:
    from agent.llm.runtime import SamplingOptions  # lazy: imports MLX

    return SamplingOptions.from_dict(store.get_setting(SAMPLING_KEY) or {})


def save_sampling(store: Store, options: SamplingOptions) -> None:
    store.set_setting(SAMPLING_KEY, asdict(options))


def model_choice(store: Store) -> str | None:
    value = store.get_setting(MODEL_KEY)
    return str(value) if value else None


def save_model_choice(store: Store, spec: str | None) -> None:
    store.set_setting(MODEL_KEY, spec or None)


def local_models() -> list[str]:
    """Names of the converted models in the cache."""

    try:
        return [str(m["name"]) for m in models.list_models()]
    except OSError:
        return []


# -- adapters ------------------------------------------------------------------------------


ColdStart = refresh.ColdStart
"""How close the user is to their first (or next) personal adapter: the refresh's own count."""


def cold_start(store: Store) -> ColdStart:
    """The gauge's numbers, counted exactly as the next refresh will decide."""
    return refresh.cold_start(store)


def cold_start_summary(gauge: ColdStart) -> str:
    """One short line for the adapters screen (a gauge sits beside it).

    >>> cold_start_summary(ColdStart(7, 20, 7, 10, None, ""))
    'Accepted answers 7/20: 13 more before the first adapter'
    >>> cold_start_summary(ColdStart(25, 20, 3, 10, "v2", ""))
    'Accepted answers 25: 3 new since v2 (10 retrain it)'
    """
    if not gauge.reached:
        more = gauge.needed - gauge.count
        return f"Accepted answers {gauge.count}/{gauge.needed}: {more} more before the first adapter"
    if gauge.latest is None:
        return f"Accepted answers {gauge.count}: enough to train an adapter (t)"
    return (f"Accepted answers {gauge.count}: {gauge.new} new since {gauge.latest} "
            f"({gauge.new_needed} retrain it)")


def adapter_versions(store: Store) -> list[AdapterRecord]:
    """Registry rows, newest first."""
    return list(reversed(store.list_adapter_versions()))


def activate_adapter(store: Store, version: str, base_checksum: str | None) -> None:
    """Make `version` the active adapter (verified, and bound to the loaded base if any)."""

    registry.activate(store, version, base_checksum)


def rollback_adapter(store: Store, base_checksum: str | None) -> str | None:
    """Go back to the previously active adapter (or the base model); returns the new one."""

    return registry.rollback(store, base_checksum)


def sync_adapter(chat: Chat) -> str | None:
    """Serve the store's active adapter now; returns a notice. Model thread only."""
    return chat.sync_adapter()


# -- experiments (A/B trials) ----------------------------------------------------------------


def experiment_summaries(store: Store) -> list[Any]:
    """Every trial as an `adapters.training.experiments.Summary`, newest first."""
    from adapters.training import experiments

    return [experiments.summary(store, row["id"]) for row in reversed(store.list_experiments())]


def start_adapter_trial(store: Store, version: str, base_checksum: str | None) -> str:
    """Put a gated candidate adapter on trial; returns the trial id."""
    from adapters.training import experiments

    return experiments.start_adapter_trial(store, version, base_checksum)


def stop_experiment(store: Store) -> str:
    """End the running trial (the incumbent serves from the next turn); returns its id."""
    from adapters.training import experiments

    return experiments.stop(store)


def drift_status(store: Store) -> str | None:
    """Run the drift monitor on acceptance; why the serving adapter is stale, or None."""
    from adapters.training import drift

    drift.check(store)
    return drift.stale_reason(store)
