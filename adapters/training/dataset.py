"""Accepted answers -> a deduplicated, stably split, identified training snapshot.

Each accepted (or edited) answer becomes a chat example `{"messages": [...]}` built by
`agent.llm.prompt.training_messages(prompt_messages, target)`, the same assembly that served it,
so the adapter learns exactly what it will be shown. Forgotten rows are left out, duplicates
(identical messages) are kept once, and each example goes to train or valid by its own hash,
so it stays on the same side as the data grows. The snapshot id hashes the sorted example
hashes: the same data gives the same id.

This module does not read the database (callers pass `Store.accepted_examples()`), and does
not tokenize; mlx-lm's ChatDataset does that at training time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from adapters.training.errors import AdapterError
from agent.foundation import paths
from agent.llm.prompt import training_messages

Messages = list[dict[str, str]]
Assemble = Callable[[Messages, str], Messages]


class AcceptedLike(Protocol):
    """What `Store.accepted_examples()` yields (memory.store.Accepted)."""

    @property
    def message_id(self) -> Any: ...
    @property
    def prompt_messages(self) -> Messages: ...
    @property
    def target(self) -> str: ...
    @property
    def forgotten(self) -> bool: ...


@dataclass(frozen=True)
class Example:
    """One chat example: the served prompt plus the accepted answer as the last message."""

    messages: Messages
    hash: str
    message_id: str | None = None

    @property
    def position(self) -> float:
        """Where the hash falls in [0, 1): decides the split, independent of other examples."""
        return int(self.hash[:15], 16) / 16**15

    def record(self) -> dict[str, Any]:
        """The mlx-lm jsonl record (`{"messages": [...]}`)."""
        return {"messages": self.messages}


@dataclass
class Snapshot:
    """A training run's data: what went where, and an id for the whole."""

    snapshot_id: str
    train: list[Example]
    valid: list[Example]
    message_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.train) + len(self.valid)

    def write(self, folder: Path) -> Path:
        """Write train.jsonl, valid.jsonl and snapshot.json into `folder`; returns it."""
        paths.ensure_private_dir(folder)  # the user's accepted answers: 0700 / 0600
        for name, rows in (("train", self.train), ("valid", self.valid)):
            path = folder / f"{name}.jsonl"
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, paths.FILE_MODE),
                      "w", encoding="utf-8") as fh:
                for ex in rows:
                    fh.write(json.dumps(ex.record(), ensure_ascii=False) + "\n")
            paths.make_private(path)  # an older file keeps its mode through O_TRUNC
        meta = {
            "snapshot_id": self.snapshot_id,
            "n_train": len(self.train),
            "n_valid": len(self.valid),
            "message_ids": self.message_ids,
        }
        (folder / "snapshot.json").write_text(json.dumps(meta, indent=2))
        paths.make_private(folder / "snapshot.json")
        return folder


def example_hash(messages: Messages) -> str:
    """sha256 of the canonical JSON of the messages (role and content only).

    >>> example_hash([{"role": "user", "content": "hi"}])[:12]
    '4e79873118cd'
    """
    canon = [{"role": m["role"], "content": m["content"]} for m in messages]
    blob = json.dumps(canon, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def snapshot_id(hashes: Iterable[str]) -> str:
    """Short id of a set of examples: order-independent, changes when any example does."""
    joined = "\n".join(sorted(hashes))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def default_assemble() -> Assemble:
    """`agent.llm.prompt.training_messages`: the serving prompt plus the target."""

    return training_messages


def build_examples(
    accepted: Iterable[AcceptedLike], assemble: Assemble | None = None
) -> list[Example]:
    """Chat examples from accepted answers, forgotten and empty ones left out, deduplicated."""
    assemble = assemble or default_assemble()
    seen: set[str] = set()
    out: list[Example] = []
    for row in accepted:
        if getattr(row, "forgotten", False) or not (row.target or "").strip():
            continue
        if not row.prompt_messages:
            continue
        messages = assemble(list(row.prompt_messages), row.target)
        h = example_hash(messages)
        if h in seen:
            continue
        seen.add(h)
        mid = row.message_id
        out.append(Example(messages, h, None if mid is None else str(mid)))
    return out


def split(
    examples: Sequence[Example], valid_fraction: float = 0.2, min_valid: int = 4
) -> tuple[list[Example], list[Example]]:
    """Stable train/valid split by hash position.

    An example is held out when its position is below `valid_fraction`; if that gives fewer
    than `min_valid`, the lowest positions are held out instead (never more than half the
    data). Once there are at least 2 * min_valid examples, adding examples never moves an old
    training example into validation (the boundary position can only fall).
    """
    ranked = sorted(examples, key=lambda e: e.position)
    n_valid = sum(1 for e in ranked if e.position < valid_fraction)
    n_valid = max(n_valid, min(min_valid, len(ranked) // 2))
    valid = ranked[:n_valid]
    keep = {e.hash for e in valid}
    train = [e for e in examples if e.hash not in keep]
    return train, [e for e in examples if e.hash in keep]


def make_snapshot(
    accepted: Iterable[AcceptedLike],
    valid_fraction: float = 0.2,
    min_valid: int = 4,
    assemble: Assemble | None = None,
) -> Snapshot:
    """Build, deduplicate and split the examples; identify the snapshot."""
    examples = build_examples(accepted, assemble)
    train, valid = split(examples, valid_fraction, min_valid)
    ids = [e.message_id for e in examples if e.message_id is not None]
    return Snapshot(snapshot_id([e.hash for e in examples]), train, valid, ids)


def normalize_record(record: dict[str, Any]) -> Messages:
    """An mlx-lm data record as chat messages (`messages`, or `prompt` + `completion`).

    >>> normalize_record({"prompt": "2+2?", "completion": "4"})[-1]
    {'role': 'assistant', 'content': '4'}
    """
    if "messages" in record:
        messages = record["messages"]
    elif "prompt" in record and "completion" in record:
        messages = [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["completion"]},
        ]
    else:
        raise AdapterError(
            "unsupported record: use {\"messages\": [...]} or {\"prompt\", \"completion\"} "
            "(plain {\"text\"} has no answer to score)"
        )
    if not messages or messages[-1].get("role") != "assistant":
        raise AdapterError("each example must end with the assistant's answer")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def load_jsonl(path: Path) -> list[Example]:
    """Examples from an mlx-lm style jsonl file (blank lines skipped)."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                messages = normalize_record(json.loads(line))
            except (ValueError, KeyError) as exc:
                raise AdapterError(f"{path}:{n}: not a valid example ({exc}); fix or remove it") from exc
            out.append(Example(messages, example_hash(messages)))
    return out
