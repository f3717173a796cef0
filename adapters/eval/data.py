"""The pairs `hearth eval` learns from and is scored on, and their stable split.

Three sources, one shape (`Item`: a question, a reference answer, optional history/system):
- `from_accepted(store.accepted_examples())`: the user's accepted answers. Each keeps, as
  its training example, exactly what `hearth refresh` trains on (the served prompt plus the
  accepted text, via `adapters.training.dataset.build_examples`); its question is the last user
  message with any quoted notes stripped.
- `from_jsonl(path)`: mlx-lm data files: {"messages": [...]}, {"prompt", "completion"} or
  {"text"}. A record without a system message is served with the store's system prompt, as
  the chat would serve it. A {"text"} record has no question to ask: it is kept as
  retrievable memory only (refresh skips such rows too) and is never held out.
- `demo_items()`: the fictional persona shipped in `adapters/data/persona.jsonl`.

`split_items` holds out a stable share by each pair's own hash (`adapters.training.dataset.split`),
so a pair stays on its side as the data grows. Nothing here loads a model or opens a store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from adapters.training import dataset
from adapters.training.errors import AdapterError
from agent.llm.prompt import last_user_question

Message = dict[str, str]
DEMO_FILE = "persona.jsonl"


@dataclass(frozen=True)
class Item:
    """One question/answer pair (or, with an empty question, a note that is only remembered)."""

    question: str
    reference: str
    hash: str
    history: tuple[Message, ...] = ()
    """Earlier turns of the conversation (user/assistant), oldest first."""
    system: str | None = None
    """The record's own system prompt; None: the store's active one."""
    train_messages: tuple[Message, ...] | None = None
    """The exact training example (accepted answers); None: built from the served prompt."""

    @property
    def scorable(self) -> bool:
        """Has a question, so it can be asked and scored (not a bare {"text"} note)."""
        return bool(self.question.strip())

    @property
    def position(self) -> float:
        """Where the hash falls in [0, 1): decides the split and the `--limit` order."""
        return int(self.hash[:15], 16) / 16**15

    def record(self) -> dict[str, Any]:
        """The mlx-lm record a temporary store imports as a past accepted answer."""
        if not self.scorable:
            return {"text": self.reference}
        turn = [{"role": "user", "content": self.question},
                {"role": "assistant", "content": self.reference}]
        return {"messages": [*self.history, *turn]}


def text_hash(text: str) -> str:
    """sha256 of a bare text record (distinct from any chat example's hash)."""
    return hashlib.sha256(("text\n" + text).encode("utf-8")).hexdigest()


def item_from_messages(messages: Sequence[Message], item_hash: str | None = None) -> Item:
    """An Item from chat messages ending with the assistant's answer after a user message.

    >>> it = item_from_messages([{"role": "user", "content": "Hi?"},
    ...                          {"role": "assistant", "content": "Hello."}])
    >>> (it.question, it.reference, it.system, it.history)
    ('Hi?', 'Hello.', None, ())
    """
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    if len(msgs) < 2 or msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
        raise AdapterError("each example must end with a user question and the assistant's answer")
    system = msgs[0]["content"] if msgs[0]["role"] == "system" else None
    history = tuple(m for m in msgs[1 if system is not None else 0 : -2] if m["role"] != "system")
    return Item(msgs[-2]["content"], msgs[-1]["content"], item_hash or dataset.example_hash(msgs),
                history, system)


def parse_record(record: Any) -> Item:
    """An Item from one mlx-lm data record (chat, prompt/completion or text)."""
    if isinstance(record, dict) and "messages" not in record and "completion" not in record \
            and isinstance(record.get("text"), str):
        if not record["text"].strip():
            raise AdapterError("the text is empty")
        return Item("", record["text"], text_hash(record["text"]))
    if not isinstance(record, dict):
        raise AdapterError("not a JSON object")
    return item_from_messages(dataset.normalize_record(record))


def from_jsonl(path: Path) -> list[Item]:
    """Items from an mlx-lm JSONL file, duplicates kept once, blank lines skipped."""
    items: list[Item] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AdapterError(f"cannot read {path} ({exc.strerror}); check the path") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(parse_record(json.loads(line)))
        except (ValueError, KeyError, TypeError, AdapterError) as exc:
            raise AdapterError(f"{path}:{number}: not a valid example ({exc}); fix or remove it") from exc
    return dedupe(items)


def demo_items() -> list[Item]:
    """The demo persona shipped with the package (`hearth eval --demo`)."""
    text = resources.files("adapters").joinpath("data", DEMO_FILE).read_text(encoding="utf-8")
    return dedupe([parse_record(json.loads(line)) for line in text.splitlines() if line.strip()])


def from_accepted(accepted: Iterable[Any]) -> list[Item]:
    """Items from accepted answers (`Store.accepted_examples()`), built as refresh builds them."""

    items = []
    for example in dataset.build_examples(accepted):
        prompt = example.messages[:-1]
        holder = _Prompted(prompt, example.messages[-1]["content"])
        question = last_user_question(holder)
        if not question.strip():
            continue
        items.append(Item(question, holder.target, example.hash,
                          train_messages=tuple(example.messages)))
    return items


@dataclass
class _Prompted:
    """What `agent.llm.prompt.last_user_question` reads."""

    prompt_messages: list[Message]
    target: str


def dedupe(items: Iterable[Item]) -> list[Item]:
    """Keep the first of items with the same hash."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.hash not in seen:
            seen.add(item.hash)
            out.append(item)
    return out


@dataclass
class Split:
    """The training part (stored and trained on) and the held-out part (scored)."""

    train: list[Item]
    heldout: list[Item]
    dropped_overlap: int = 0
    """Training items removed because they were identical to held-out ones (`--valid`)."""


def split_items(items: Sequence[Item], valid_fraction: float = 0.2, min_valid: int = 4) -> Split:
    """Hold out a stable share of the scorable items by hash; notes always train."""
    scorable = [it for it in items if it.scorable]
    proxies = [dataset.Example([], it.hash) for it in scorable]
    _, held = dataset.split(proxies, valid_fraction, min_valid)
    held_hashes = {e.hash for e in held}
    heldout = sorted((it for it in scorable if it.hash in held_hashes), key=lambda it: it.position)
    return Split([it for it in items if it.hash not in held_hashes], heldout)


def with_valid(train: Sequence[Item], valid: Sequence[Item]) -> Split:
    """`--valid FILE`: score `valid`, learn from `train` minus anything identical to it."""
    heldout = sorted((it for it in valid if it.scorable), key=lambda it: it.position)
    if not heldout:
        raise AdapterError("the --valid file holds no question/answer pairs to score")
    held = {it.hash for it in heldout} | {_qa_key(it) for it in heldout}
    kept = [it for it in train if it.hash not in held and _qa_key(it) not in held]
    return Split(kept, heldout, len(train) - len(kept))


def _qa_key(item: Item) -> str:
    """Identity of a pair by question and answer alone (system prompts aside)."""
    return "qa:" + hashlib.sha256(f"{item.question}\x00{item.reference}".encode()).hexdigest()


def limit(heldout: Sequence[Item], n: int | None) -> list[Item]:
    """The first `n` held-out items in hash order (a stable slice), or all of them."""
    ordered = sorted(heldout, key=lambda it: it.position)
    return ordered if n is None else ordered[: max(0, n)]
