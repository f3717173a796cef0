"""Typed, read-only views of stored rows, and the JSON helpers used for JSON columns.

Each record is a frozen dataclass built from a sqlite row dict (`from_row`). Records carry
no database handle; they do not load or save anything themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
FeedbackKind = Literal["accepted", "rejected", "edited"]
MemoryKind = Literal["fact", "preference"]
MemoryOrigin = Literal["typed", "conversation", "import"]
HitKind = Literal["memory", "document", "history"]
AdapterStatus = Literal["training", "candidate", "rejected", "active", "retired", "failed"]


def to_json(value: Any) -> str | None:
    """JSON text for a column (None stays NULL); dataclasses become dicts."""
    if value is None:
        return None
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | None, default: Any = None) -> Any:
    return default if text is None else json.loads(text)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def final_text(text: str, edited_text: str | None) -> str:
    """An answer's final text, the one rule for it: the latest edit wins, whatever verdict
    (accepted, rejected) follows it; with no edit it is the answer as generated. The chat
    shows it, a resumed conversation continues from it, and training learns it.

    >>> final_text("draft", None), final_text("draft", "fixed")
    ('draft', 'fixed')
    """
    return edited_text if edited_text else text


@dataclass(frozen=True)
class ConversationRecord:
    id: str
    title: str | None
    created_at: str
    updated_at: str
    n_messages: int = 0


@dataclass(frozen=True)
class MessageRecord:
    """One stored message. `feedback` is the latest feedback kind (None if none) and
    `edited_text` the latest correction."""

    id: str
    conversation_id: str
    role: Role
    text: str
    created_at: str
    model_id: str | None = None
    adapter_version: str | None = None
    prompt_version: int | None = None
    prompt_messages: list[dict[str, str]] | None = None
    hits: list[dict[str, Any]] | None = None
    tokens_prompt: int | None = None
    tokens_completion: int | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    feedback: FeedbackKind | None = None
    edited_text: str | None = None
    arm: str | None = None
    """The A/B arm that served this answer ('incumbent' / 'candidate'): its conversation's
    arm, if the answer was given while that experiment ran; None otherwise."""

    @property
    def final_text(self) -> str:
        """The answer as the user last left it (`final_text`: the latest edit wins)."""
        return final_text(self.text, self.edited_text)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MessageRecord:
        data = dict(row)
        data["prompt_messages"] = from_json(data.get("prompt_messages"))
        data["hits"] = from_json(data.get("hits"))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Accepted:
    """A training example: the exact prompt the model saw and the answer to learn.

    `target` is the user's latest correction when there is one, else the answer itself;
    `created_at` is when it was (last) accepted or edited; `forgotten` is True when part of
    its prompt was forgotten since (it must not be trained on any more).
    """

    message_id: str
    prompt_messages: list[dict[str, str]]
    target: str
    created_at: str
    forgotten: bool = False


@dataclass(frozen=True)
class MemoryRecord:
    """A fact or preference. `origin` is typed / conversation / import; `source_message_id`
    is the message it came from (None when typed, or when that message was forgotten)."""

    id: str
    text: str
    kind: MemoryKind
    origin: MemoryOrigin
    source_message_id: str | None
    created_at: str
    updated_at: str
    superseded_by: str | None
    pinned: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MemoryRecord:
        data = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        data["pinned"] = bool(data["pinned"])
        return cls(**data)


@dataclass(frozen=True)
class AdapterRecord(Mapping[str, Any]):
    """One adapter-registry row, `hyperparams` and `metrics` decoded from JSON.

    Read it by attribute (`row.status`); it also reads as a read-only mapping (`row["id"]`,
    `row.get("path")`, `{**row}`), as the adapters layer does, which sees the store only
    through a protocol. Columns a later migration adds land in `extra`."""

    id: str
    created_at: str
    updated_at: str
    status: AdapterStatus = "candidate"
    base_model_id: str | None = None
    base_checksum: str | None = None
    path: str | None = None
    dataset_snapshot: str | None = None
    n_train: int | None = None
    n_valid: int | None = None
    hyperparams: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    verdict: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AdapterRecord:
        names = set(cls.__dataclass_fields__) - {"extra"}
        data = {k: v for k, v in row.items() if k in names}
        for key in ("hyperparams", "metrics"):
            data[key] = from_json(data.get(key))
        return cls(**data, extra={k: v for k, v in row.items() if k not in names})

    def _names(self) -> list[str]:
        return [n for n in self.__dataclass_fields__ if n != "extra"] + list(self.extra)

    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key == "extra" or key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    path: str
    content_hash: str
    mtime: float
    size: int
    created_at: str
    updated_at: str
    n_chunks: int = 0


@dataclass(frozen=True)
class ForgetReport:
    """What a forget removed (ids only) and whether the bytes left the disk.

    `purged` is False when another process kept the WAL open; the freed pages are zeroed
    anyway and the next checkpoint truncates the WAL."""

    kind: str
    ids: list[str]
    scrubbed_messages: list[str] = field(default_factory=list)
    flagged_examples: list[str] = field(default_factory=list)
    purged: bool = True
