"""What each condition is shown: a temporary memory of the training part, and the prompts.

`open_memory` puts the training part into a fresh store in a temporary folder, through the
same route as `hearth memory import` (`Store.import_training_jsonl`): every pair becomes a
past conversation whose answer was accepted, so the chat's retrieval finds it (history
search) and offers it as a few-shot example (`similar_accepted`); a bare {"text"} note
becomes a past answer. The store embeds with the real embedder unless given another.

`build_prompts` makes, for each held-out item, the prompt *without* retrieval (conditions
base and adapter) and *with* it (rag and both), by the chat's own context builder
(`agent.core.context.build`: search, similar accepted answers, assemble within the chat's
budgets). `served_prompt` gives the no-retrieval prompt that a file's
training pair is trained on, so what the adapter learns is what it is shown.

It does not call the model (token counting aside) and keeps nothing outside `folder`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.eval.data import Item
from adapters.training.errors import AdapterError
from agent.core.context import ChatSettings, build
from agent.llm import prompt
from agent.llm.prompt import training_messages

if TYPE_CHECKING:
    from memory.store import Store

Message = dict[str, str]
Counter = Callable[[str], int]
ProgressFn = Callable[[int, int], None]


@dataclass
class Budget:
    """The chat's prompt budgets (`agent.core.context.ChatSettings`) plus the room the chat
    keeps for its answer."""

    retrieval_k: int = 4
    examples_k: int = 1
    context_tokens: int = 4096
    notes_tokens: int = 768
    answer_tokens: int = 512
    """Room the chat keeps for its answer (SamplingOptions.max_tokens)."""

    @classmethod
    def from_chat(cls, context_window: int = 8192) -> Budget:
        """The budgets `agent.core.turn.Chat` uses with default settings and sampling options."""
        from agent.llm.runtime import SamplingOptions  # lazy: imports MLX

        chat = ChatSettings()
        context = min(chat.context_tokens, context_window)
        # the chat keeps max_tokens free for its answer; a tiny test model's window may be
        # smaller than that, so keep at least half of it for the prompt
        answer = min(SamplingOptions().max_tokens, context // 2)
        return cls(chat.retrieval_k, chat.examples_k, context, chat.notes_tokens, answer)

    @property
    def prompt_tokens(self) -> int:
        return self.context_tokens - self.answer_tokens

    @property
    def settings(self) -> ChatSettings:
        return ChatSettings(self.retrieval_k, self.examples_k, self.context_tokens, self.notes_tokens)


@dataclass
class Prompts:
    """Per held-out item: the prompt without and with retrieval, and what was retrieved."""

    plain: list[list[Message]] = field(default_factory=list)
    retrieved: list[list[Message]] = field(default_factory=list)
    hits: list[list[dict[str, Any]]] = field(default_factory=list)
    examples_used: list[int] = field(default_factory=list)


def open_memory(
    folder: Path,
    train: Sequence[Item],
    system_prompt: str | None = None,
    embedder: Any = None,
    progress: ProgressFn | None = None,
) -> Any:
    """A fresh store in `folder` holding `train` as past accepted answers, embedded."""
    from memory.store import Store  # lazy: imports numpy and sqlite-utils

    folder.mkdir(parents=True, exist_ok=True)
    store = Store.open(folder / "eval.db", embedder=embedder)
    if system_prompt and system_prompt != store.active_system_prompt()[1]:
        store.add_system_prompt(system_prompt)
    source = folder / "memory.jsonl"
    with source.open("w", encoding="utf-8") as fh:
        for item in train:
            fh.write(json.dumps(item.record(), ensure_ascii=False) + "\n")
    report = store.import_training_jsonl(source)
    if report.errors:
        line, why = report.errors[0]
        raise AdapterError(f"could not store training pair {line} ({why}); fix that example")
    store.embed_pending(progress=progress)
    return store


def served_prompt(item: Item, system_prompt: str, count: Counter, budget: Budget) -> list[Message]:
    """The chat's prompt for `item` without retrieval."""

    built = prompt.assemble(item.system or system_prompt, item.question, item.history,
                            count=count, budget=budget.prompt_tokens,
                            notes_budget=budget.notes_tokens)
    return built.messages


def train_messages(item: Item, system_prompt: str, count: Counter, budget: Budget) -> list[Message]:
    """The example the adapter trains on: the stored one, else the served prompt + answer."""

    if item.train_messages is not None:
        return [dict(m) for m in item.train_messages]
    return training_messages(served_prompt(item, system_prompt, count, budget), item.reference)


def build_prompts(
    items: Sequence[Item],
    store: Store,
    count: Counter,
    budget: Budget,
    progress: ProgressFn | None = None,
) -> Prompts:
    """Both prompts for every held-out item, retrieval done as `agent.core.turn.Chat.send` does."""

    _, system_prompt = store.active_system_prompt()
    out = Prompts()
    for done, item in enumerate(items, 1):
        system = item.system or system_prompt
        built = build(store, item.question, item.history, system_prompt=system,
                      settings=budget.settings, count=count, prompt_tokens=budget.prompt_tokens)
        out.plain.append(served_prompt(item, system_prompt, count, budget))
        out.retrieved.append(built.messages)
        out.hits.append([{"kind": h.kind, "text": h.text, "score": round(h.score, 5)}
                         for h in built.hits_used])
        out.examples_used.append(built.examples_used)
        if progress is not None:
            progress(done, len(items))
    return out
