"""The turn loop: one conversation between the user and their assistant.

For each user message `Chat.send()`:
  1. records the user's message (so it is never lost, even if generation crashes),
  2. asks `memory` for hybrid hits and similar accepted answers,
  3. assembles the prompt (`agent.llm.prompt`) within the context budget,
  4. picks up a newly activated adapter (a row in the store) without reloading the base,
  5. streams the answer (`agent.llm.runtime`), stopping it with finish reason "loop" when the
     loop guard (`agent.core.loop_guard`) sees it repeat itself (the partial answer is kept);
     a question about the user that memory has nothing on starts "I don't know"
     (`agent.core.personal`), so a small model cannot begin it by inventing; it may not
     copy the primer's examples or its own earlier answers (`NO_COPY_ANSWERS`),
  6. records it with everything needed to reproduce it: prompt messages, hits, model id,
     adapter and prompt versions, timings.
Feedback (accept / reject / edit) goes to the store against the last answer.

It does not draw anything (CLI and TUI do) and holds no SQL (the store does).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.training import experiments, registry
from agent.core import context, personal
from agent.core.context import RETRIEVAL_QUERY_CHARS, ChatSettings
from agent.core.loop_guard import LoopGuard
from agent.foundation.errors import HearthError
from agent.llm import prompt
from agent.llm.runtime import Runtime, SamplingOptions, TokenEvent

if TYPE_CHECKING:
    from memory.store import Store

MAX_INPUT_CHARS = 1_000_000
NO_COPY_ANSWERS = 3
"""An answer may not copy runs of the primer or of this many earlier answers (a 135M model
otherwise answers a new question with its previous answer), except into words the user's
question, notes and own turns hold (`agent.llm.decoding.no_copy`)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_input(text: str) -> str:
    """Drop NUL and control bytes (keeping tabs and newlines) and lone surrogates.

    >>> clean_input("a\\x00b\\tc")
    'ab\\tc'
    """
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text)[:MAX_INPUT_CHARS]


@dataclass
class TurnEvent:
    """What the UI sees: text deltas, then a final event with the recorded message id."""

    kind: str  # "token", "notice" or "done"
    text: str = ""
    stats: TokenEvent | None = None
    message_id: str | None = None
    hits: list[Any] = field(default_factory=list)
    adapter_version: str | None = None
    arm: str | None = None
    """The A/B arm that served this answer ('incumbent' / 'candidate'; None: no trial)."""


class Chat:
    """One conversation. Not thread-safe: one `send` at a time (the runtime enforces it)."""

    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        conversation_id: str | None = None,
        options: SamplingOptions | None = None,
        settings: ChatSettings | None = None,
    ):
        self.runtime = runtime
        self.store = store
        self.options = options or SamplingOptions()
        self.settings = settings or ChatSettings()
        self.conversation_id = conversation_id
        self.history: list[dict[str, str]] = []
        self.last_answer_id: str | None = None
        self.pending_suggestions: list[Any] = []
        self.specials = prompt.special_tokens(runtime.tokenizer)
        self.pending_forget: list[str] = []  # memory ids listed by /forget TEXT, for /forget yes
        self._adapter_key: Any = object()  # what the registry said at the last sync
        if conversation_id:
            self._load_history(conversation_id)

    def _load_history(self, conversation_id: str) -> None:
        for row in self.store.conversation_messages(conversation_id):
            if row.role in ("user", "assistant"):
                self.history.append({"role": row.role, "content": row.final_text})
                if row.role == "assistant":
                    self.last_answer_id = row.id

    def new_conversation(self) -> None:
        self.conversation_id = None
        self.history = []
        self.last_answer_id = None

    # adapters -------------------------------------------------------------------------
    def sync_adapter(self, serving: experiments.Serving | None = None) -> str | None:
        """Serve the store's active adapter (or the A/B arm's), verified now; returns a notice
        if something changed or failed.

        Whenever what should serve changes (another version activated, an arm switched,
        something forgotten), `adapters.training.registry.serve` checks the candidate's
        manifest hashes and base binding before loading it; a version that fails either check
        or fails to load is skipped for the previously active sound one, else the base model.
        Nothing unverified is served. A trial's arms are not announced, failures are.
        """
        arm = serving.adapter if serving and serving.adapter else None
        row = arm or self.store.active_adapter()
        key = ((row["id"], row.get("updated_at")) if row else None, arm is not None,
               _forget_generation(self.store))
        if key == self._adapter_key:
            return None
        self._adapter_key = key
        before = self.adapter_version()

        def load(folder: Path | None) -> None:
            if folder != self.runtime.adapter_path:  # already loaded (and verified) otherwise
                self.runtime.set_adapter(folder)

        served, problems = registry.serve(self.store, self.runtime.ref.checksum, load,
                                          first=arm["id"] if arm else None)
        now = f"adapter {served}" if served else "the base model"
        if problems:
            return f"{problems[0]} ({'still serving' if served == before else 'serving'} {now})"
        if served == before or serving is not None:
            return None
        return f"now using {now}"

    def adapter_version(self) -> str | None:
        path = self.runtime.adapter_path
        return path.name if path else None

    # turns ----------------------------------------------------------------------------
    def send(self, text: str, cancel: threading.Event | None = None) -> Iterator[TurnEvent]:
        text = clean_input(text).strip()
        if not text:
            raise HearthError("empty message: type a question")
        if self.conversation_id is None:
            self.conversation_id = self.store.new_conversation(title=text[:60])
        serving = experiments.serving(self.store, self.conversation_id, self.runtime.ref.checksum)
        if notice := self.sync_adapter(serving):
            yield TurnEvent("notice", notice)
        self.store.add_message(self.conversation_id, "user", text)
        self.pending_suggestions = list(self.store.suggest_memories(text[:RETRIEVAL_QUERY_CHARS]))
        for suggestion in self.pending_suggestions:
            yield TurnEvent("notice", f"remember “{suggestion.text}”? type /yes to keep it")
        version, system_prompt = (serving.prompt if serving and serving.prompt
                                  else self.store.active_system_prompt())
        budget = min(self.settings.context_tokens, self.runtime.context_window) - self.options.max_tokens
        built = context.build(
            self.store, text, self.history, system_prompt=system_prompt, settings=self.settings,
            count=self.runtime.count_tokens, prompt_tokens=budget, specials=self.specials,
            exclude_conversation_id=self.conversation_id,
        )
        if built.truncated_user:
            yield TurnEvent("notice", "your message was too long and was cut to fit the context window")
        start = time.perf_counter()
        answer, final = "", None
        guard = LoopGuard()
        prefix = personal.answer_prefix(text, bool(built.hits_used), self.history)
        if prefix:
            yield TurnEvent("notice", "nothing in memory about that: tell me, or /remember it")
        said = [m["content"] for m in self.history if m["role"] == "assistant"]
        said = said[len(said) - NO_COPY_ANSWERS:] if NO_COPY_ANSWERS > 0 else []
        allow = [m["content"] for m in built.messages[built.stable:] if m["content"] not in said]
        stream = self.runtime.stream(built.messages, self.options, cancel, stable=built.stable,
                                     prefix=prefix, avoid=[*prompt.no_copy_texts(), *said],
                                     allow=allow)
        try:
            for ev in stream:
                if ev.finish_reason is not None:
                    final = ev
                    break
                answer += ev.text
                yield TurnEvent("token", ev.text, ev)
                if guard.feed(ev.text):  # repeating itself: stop here, keep what was said
                    final = replace(ev, text="", token=None, finish_reason="loop")
                    break
        finally:
            stream.close()  # the runtime records what its cache holds, also when we stop early
        latency_ms = int((time.perf_counter() - start) * 1000)
        message_id = self.store.add_message(
            self.conversation_id, "assistant", answer,
            model_id=self.runtime.ref.id, adapter_version=self.adapter_version(),
            prompt_version=version, prompt_messages=built.messages,
            hits=[_hit_dict(h) for h in built.hits_used],
            tokens_prompt=final.prompt_tokens if final else None,
            tokens_completion=final.generated_tokens if final else None,
            latency_ms=latency_ms, tokens_per_s=final.tokens_per_s if final else None,
        )
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        self.last_answer_id = message_id
        yield TurnEvent("done", answer, final, message_id, list(built.hits_used), self.adapter_version(),
                        serving.arm if serving else None)

    def ask(self, text: str, cancel: threading.Event | None = None) -> TurnEvent:
        """Run a whole turn and return its final event."""
        done = None
        for ev in self.send(text, cancel):
            if ev.kind == "done":
                done = ev
        assert done is not None
        return done

    def keep_suggestions(self) -> list[str]:
        """Store the memories suggested by the last message (a correction supersedes)."""
        kept = []
        for suggestion in self.pending_suggestions:
            if suggestion.supersedes:
                kept.append(self.store.supersede_memory(suggestion.supersedes, suggestion.text))
            else:
                kept.append(self.store.add_memory(suggestion.text, kind=suggestion.kind))
        self.pending_suggestions = []
        return kept

    def feedback(self, kind: str, edited_text: str | None = None, message_id: str | None = None) -> int:
        """Accept, reject or edit an answer (the last one by default)."""
        target = message_id or self.last_answer_id
        if target is None:
            raise HearthError("no answer yet to give feedback on")
        if kind == "edited":
            edited_text = clean_input(edited_text or "").strip()
            if not edited_text:
                raise HearthError("an edit needs the corrected answer text")
        result = self.store.add_feedback(target, kind, edited_text=edited_text)
        if kind == "edited" and target == self.last_answer_id and self.history:
            self.history[-1] = {"role": "assistant", "content": edited_text or ""}
        return result


def _forget_generation(store: Any) -> int:
    getter = getattr(store, "forget_generation", None)
    return int(getter()) if getter is not None else 0


def _hit_dict(hit: Any) -> dict[str, Any]:
    keys = ("kind", "id", "text", "score", "source", "created_at")
    return {k: getattr(hit, k, None) for k in keys}
