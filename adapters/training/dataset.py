"""Accepted answers -> a deduplicated, stably split, identified training snapshot.

Each accepted (or edited) answer becomes a chat example `{"messages": [...]}` built by
`agent.llm.prompt.training_messages(prompt_messages, target)`, the same assembly that served it,
so the adapter learns exactly what it will be shown. Forgotten rows are left out, duplicates
(identical messages) are kept once, and each example goes to train or valid by its own hash,
so it stays on the same side as the data grows. The snapshot id hashes the sorted example
hashes: the same data gives the same id.

With a `DataConfig` (`hearth refresh` passes one) the snapshot also teaches the *facts* in
other words (`adapters.augment`): each training answer is asked again in rule-based
rewrites, each first-person memory becomes question/answer pairs, memories are repeated up
to a share of the examples, and one further phrasing per source is held out as the `quiz`
the trainer validates on (phrasings never trained on). A rewrite is served as the chat
serves a question that retrieval found nothing for (`agent.llm.prompt.assemble` with the same
system prompt), plus the target (`agent.llm.prompt.training_messages`); with
`DataConfig.compact` (the default) the generated examples leave out the fixed primer, which
is most of their tokens and teaches no fact; with `DataConfig.compact_asked` (the default)
so do the answers as asked (`without_primer`; the held-out answers keep the served prompt,
which is what the gate scores); with `DataConfig.anchor_share` everyday questions not about
the user, with plain answers, keep general questions answered as the base answers them.
Every example keeps its `source` ("message:ID" or "memory:ID"): forgetting the source removes all its examples from
the next snapshot, since they are rebuilt from what the store still holds.

This module does not read the database (callers pass `Store.accepted_examples()` and
`Store.list_memories()`), and does not tokenize; mlx-lm's ChatDataset does that at training
time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from adapters.training import augment
from adapters.training.config import DataConfig
from adapters.training.errors import AdapterError
from agent.foundation import paths
from agent.llm import prompt
from agent.llm.prompt import training_messages

Messages = list[dict[str, str]]
Assemble = Callable[[Messages, str], Messages]
Serve = Callable[[str, str], Messages]
"""(system prompt, question) -> the prompt the chat serves it without retrieval."""


class MemoryLike(Protocol):
    """What `Store.list_memories()` yields (memory.records.MemoryRecord)."""

    @property
    def id(self) -> Any: ...
    @property
    def text(self) -> str: ...


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
    source: str | None = None
    """Provenance: "message:ID" or "memory:ID" (None: a file's example)."""
    kind: str = "asked"
    """asked (as stored), rewrite (another phrasing), memory (from a memory), anchor (an
    everyday question not about the user), repeat (a copy)."""

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
    quiz: list[Example] = field(default_factory=list)
    """Facts of training sources asked in phrasings not trained on (trainer validation)."""
    memory_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        """Accepted answers in the snapshot (generated examples are not counted)."""
        return len({e.source or e.hash for e in (*self.train, *self.valid) if e.kind == "asked"})

    def mean_tokens(self) -> float | None:
        """Rough tokens per training example (4 characters a token, 5 per message)."""
        if not self.train:
            return None
        chars = sum(len(m["content"]) / 4 + 5 for e in self.train for m in e.messages)
        return chars / len(self.train)

    @property
    def trainer_valid(self) -> list[Example]:
        """What the trainer validates on: held-out answers plus the quiz phrasings."""
        return [*self.valid, *self.quiz]

    def counts(self) -> dict[str, int]:
        """Training examples by kind, plus the held-out and quiz sizes."""
        out = {k: sum(1 for e in self.train if e.kind == k)
               for k in ("asked", "rewrite", "memory", "repeat", "anchor")}
        return {**out, "train": len(self.train), "valid": len(self.valid), "quiz": len(self.quiz),
                "memories": len(self.memory_ids)}

    def write(self, folder: Path) -> Path:
        """Write train.jsonl, valid.jsonl and snapshot.json into `folder`; returns it."""
        paths.ensure_private_dir(folder)  # the user's accepted answers: 0700 / 0600
        for name, rows in (("train", self.train), ("valid", self.trainer_valid)):
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
            "memory_ids": self.memory_ids,
            "counts": self.counts(),
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
        out.append(Example(messages, h, None if mid is None else str(mid),
                           None if mid is None else f"message:{mid}"))
    return out


def default_serve(count: Callable[[str], int] | None = None, compact: bool = False) -> Serve:
    """`agent.llm.prompt.assemble` without retrieval: how the chat serves a bare question.

    `compact` leaves out the fixed primer (`DataConfig.compact`): the same system prompt and
    question, a third of the tokens.

    >>> [m["role"] for m in default_serve(compact=True)("Be brief.", "Hi?")]
    ['system', 'user']
    """
    primer = () if compact else prompt.PRIMER

    def serve(system: str, question: str) -> Messages:
        return prompt.assemble(system, question, count=count, primer=primer).messages

    return serve


def without_primer(messages: Messages) -> Messages:
    """`messages` with the chat's fixed primer (`agent.llm.prompt.PRIMER`) left out, when it
    follows the system prompt exactly as it is now (`DataConfig.compact`); others unchanged.

    >>> served = prompt.assemble("Be brief.", "Hi?").messages
    >>> [m["role"] for m in without_primer(served)], without_primer(served[:1]) == served[:1]
    (['system', 'user'], True)
    """
    n = len(prompt.PRIMER)
    head = messages[1 : 1 + n]
    if (messages and messages[0]["role"] == "system" and len(head) == n
            and all(m["role"] == p["role"] and m["content"] == p["content"]
                    for m, p in zip(head, prompt.PRIMER, strict=True))):
        return [messages[0], *messages[1 + n:]]
    return messages


def _system_of(messages: Messages, fallback: str) -> str:
    return messages[0]["content"] if messages and messages[0]["role"] == "system" else fallback


def _question_of(example: Example) -> str:
    holder = _Prompted(example.messages[:-1], example.messages[-1]["content"])
    return prompt.last_user_question(holder)


@dataclass
class _Prompted:
    prompt_messages: Messages
    target: str


CONTEXTUAL = ("and ", "but ", "so ", "what about", "how about", "why ", "also ", "then ")
"""Questions that lean on the turn before: rewriting them alone would change their meaning."""


def _generated(source: str | None, kind: str, messages: Messages) -> Example:
    return Example(messages, example_hash(messages), None, source, kind)


def _rewrite_examples(example: Example, n: int, serve: Serve, assemble: Assemble,
                      system: str) -> list[Example]:
    """`n` phrasings (rule-based rewrites) of an accepted answer's question, same target."""
    question = _question_of(example)
    if len(question.split()) < 2 or question.lower().startswith(CONTEXTUAL):
        return []
    target = example.messages[-1]["content"]
    sys_prompt = _system_of(example.messages, system)
    return [_generated(example.source, "rewrite", assemble(serve(sys_prompt, q), target))
            for q in augment.rewrites(question, n)]


def memory_examples(memories: Iterable[MemoryLike], n: int, serve: Serve, assemble: Assemble,
                    system: str, frame: tuple[str, str] = ("", "")) -> list[list[Example]]:
    """Per first-person memory, `n` question/answer examples (its other statements: none)."""
    out = []
    for memory in memories:
        pairs = augment.memory_pairs(memory.text, n, frame)
        if pairs:
            out.append([_generated(f"memory:{memory.id}", "memory", assemble(serve(system, q), a))
                        for q, a in pairs])
    return out


ANCHORS_FILE = "anchors.jsonl"


def anchor_pairs() -> list[tuple[str, str]]:
    """The shipped everyday (question, plain answer) pairs (adapters/data/anchors.jsonl)."""
    text = resources.files("adapters").joinpath("data", ANCHORS_FILE).read_text(encoding="utf-8")
    pairs = [[m["content"] for m in json.loads(line)["messages"]] for line in text.splitlines()]
    return [(q, a) for q, a in pairs]


def anchor_examples(serve: Serve, assemble: Assemble, system: str) -> list[Example]:
    """`anchor_pairs` (`DataConfig.anchor_share`) served as the chat serves a question;
    source "anchor:N" (they hold no user data)."""
    return [_generated(f"anchor:{i}", "anchor", assemble(serve(system, q), a))
            for i, (q, a) in enumerate(anchor_pairs())]


def _repeats(examples: Sequence[Example], want: int) -> list[Example]:
    """`want` extra copies of `examples` in turn, each with its own hash (a training weight)."""
    out = []
    for i in range(want):
        ex = examples[i % len(examples)]
        copy = f"{ex.hash}:{i // len(examples) + 1}"
        out.append(Example(ex.messages, example_hash([{"role": "repeat", "content": copy}]),
                           None, ex.source, "repeat"))
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
    memories: Iterable[MemoryLike] = (),
    data: DataConfig | None = None,
    system_prompt: str = "",
    serve: Serve | None = None,
) -> Snapshot:
    """Build, deduplicate and split the examples; identify the snapshot.

    Without `data` the snapshot is the accepted answers as they were asked (and `memories` are
    ignored); with it, the phrasings of the module docstring are added to the training side.
    `system_prompt` serves memories (and answers stored without one).
    """
    assemble = assemble or default_assemble()
    examples = build_examples(accepted, assemble)
    train, valid = split(examples, valid_fraction, min_valid)
    quiz: list[Example] = []
    memory_ids: list[str] = []
    if data is not None:
        serve = serve or default_serve(compact=data.compact)
        train, quiz, memory_ids = _augment(train, list(memories), data, serve, assemble,
                                           system_prompt)
    ids = [e.message_id for e in examples if e.message_id is not None]
    hashes = [e.hash for e in (*train, *valid, *quiz)]
    return Snapshot(snapshot_id(hashes), train, valid, ids, quiz, memory_ids)


def _augment(train: list[Example], memories: list[MemoryLike], data: DataConfig, serve: Serve,
             assemble: Assemble, system: str) -> tuple[list[Example], list[Example], list[str]]:
    """(training examples with rewrites, memories and repeats; the quiz; memory ids used)."""
    frame = augment.style_frame([e.messages[-1]["content"] for e in train])
    out: list[Example] = []
    quiz_pool: list[Example] = []
    for ex in train:
        phrasings = _rewrite_examples(ex, data.phrasings + 1, serve, assemble, system)
        out.append(_compacted(ex) if data.compact_asked else ex)
        out += phrasings[: data.phrasings]
        if len(phrasings) > data.phrasings:
            quiz_pool.append(phrasings[data.phrasings])
    per_memory = memory_examples(memories, data.memory_phrasings + 1, serve, assemble, system, frame)
    mem_train: list[Example] = []
    for group in per_memory:
        if len(group) > 1:
            quiz_pool.append(group[-1])
            group = group[:-1]
        mem_train += group
    if mem_train and data.memory_share > 0:
        # share s of the total: m + r = s * (n + m + r)  =>  r = (s * (n + m) - m) / (1 - s)
        s = min(data.memory_share, 0.9)
        need = (s * (len(out) + len(mem_train)) - len(mem_train)) / (1 - s)
        want = min(int(need + 0.5), len(mem_train) * (data.max_memory_repeat - 1))
        mem_train += _repeats(mem_train, max(0, want))
    anchors = anchor_examples(serve, assemble, system) if data.anchor_share > 0 else []
    if anchors:  # share a of the total: k = a * (n + k)  =>  k = a * n / (1 - a)
        a = min(data.anchor_share, 0.5)
        want = int(a * (len(out) + len(mem_train)) / (1 - a) + 0.5)
        want = min(want, len(anchors) * data.max_anchor_repeat)
        extra = _repeats(anchors, max(0, want - len(anchors)))
        anchors = anchors[:want] + [Example(e.messages, e.hash, None, e.source, "anchor")
                                    for e in extra]
    mem_train += anchors
    quiz = sorted(_unique(quiz_pool), key=lambda e: e.position)[: data.quiz_size]
    used = sorted({e.source.split(":", 1)[1] for g in per_memory for e in g if e.source})
    trained = {e.hash for e in out}
    return _unique([*out, *mem_train]), [q for q in quiz if q.hash not in trained], used


def _compacted(example: Example) -> Example:
    """An answer as asked, trained without the primer (same provenance; its own hash)."""
    messages = without_primer(example.messages)
    if messages is example.messages:
        return example
    return Example(messages, example_hash(messages), example.message_id, example.source,
                   example.kind)


def _unique(examples: Iterable[Example]) -> list[Example]:
    seen: set[str] = set()
    out = []
    for e in examples:
        if e.hash not in seen:
            seen.add(e.hash)
            out.append(e)
    return out


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
