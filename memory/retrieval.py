"""Hybrid retrieval: FTS5/BM25 and cosine similarity, fused by reciprocal rank.

For each kind asked for (memory, document, history) two ranked candidate lists are made: BM25
over the FTS5 index (through `fts`: a safe OR-query of quoted words, common words left out
on big indexes), and cosine over the in-memory vector matrix (`vectors`). Each
list adds weight / (60 + rank) to a candidate; the best `k` become `Hit`s with a provenance
label. Superseded memories, system messages and rejected answers are never returned.

`similar_accepted` picks the accepted answers whose question is most like the query, for
few-shot examples. This module does not decide how hits are shown to the model (`agent/`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
from sqlite_utils import Database

from agent.foundation.ids import day
from memory import fts
from memory.embed import EmbedderLike
from memory.errors import StoreError
from memory.history import accepted_examples
from memory.records import Accepted
from memory.vectors import VectorIndex, embed_pending, pending_count

KINDS = ("memory", "document", "history")
OWNER = {"memory": "memory", "document": "chunk", "history": "message"}
FTS_TABLE = {"memory": "memories_fts", "document": "chunks_fts", "history": "messages_fts"}
CONTENT_TABLE = {"memory": "memories", "document": "chunks", "history": "messages"}
RRF_K = 60
SEARCH_EMBED_LIMIT = 64  # queued texts a search embeds before searching


@dataclass(frozen=True)
class Hit:
    """One retrieved item. `score` is the fused RRF score (higher is better); `source` is a
    label for the user, e.g. "memory (typed by you, 2026-11-23)" or "doc notes.md #3";
    for a document chunk, `document` (the file name) and `chunk` (1-based) say the same as
    fields."""

    kind: str
    id: str
    text: str
    score: float
    source: str
    created_at: str
    cosine: float | None = None
    lexical_rank: int | None = None
    document: str | None = None
    chunk: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Row = tuple[str, str, str, str | None, int | None]
"""text, source label, created_at, document name, chunk number (the last two: chunks only)"""


def _fetch_memories(db: Database, ids: list[str]) -> dict[str, Row]:
    marks = ", ".join("?" for _ in ids)
    labels = {"typed": "typed by you", "conversation": "from a conversation", "import": "imported"}
    rows = db.execute(
        f"SELECT id, text, origin, created_at FROM memories WHERE id IN ({marks}) "
        "AND superseded_by IS NULL",
        ids,
    )
    return {
        mid: (text, f"memory ({labels.get(origin, origin)}, {day(created)})", created, None, None)
        for mid, text, origin, created in rows
    }


def _fetch_chunks(db: Database, ids: list[str]) -> dict[str, Row]:
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(
        f"SELECT c.id, c.text, c.ordinal, d.path, d.updated_at FROM chunks c "
        f"JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
        ids,
    )
    return {
        cid: (text, f"doc {PurePath(path).name} #{ordinal + 1}", updated, PurePath(path).name,
              ordinal + 1)
        for cid, text, ordinal, path, updated in rows
    }


def _fetch_messages(
    db: Database, ids: list[str], exclude_conversation_id: str | None
) -> dict[str, Row]:
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(
        f"SELECT m.id, m.text, m.role, m.created_at, m.conversation_id, "
        f"(SELECT kind FROM feedback f WHERE f.message_id = m.id ORDER BY f.id DESC LIMIT 1) "
        f"FROM messages m WHERE m.id IN ({marks}) AND m.role != 'system'",
        ids,
    )
    found: dict[str, Row] = {}
    for mid, text, role, created, conversation_id, feedback in rows:
        if feedback == "rejected" or conversation_id == exclude_conversation_id:
            continue
        label = "past answer" if role == "assistant" else "your message"
        found[mid] = (text, f"{label} {day(created)}", created, None, None)
    return found


class Retriever:
    """Hybrid search over one database with one embedder; owns the in-memory vectors."""

    def __init__(self, db: Database, embedder: EmbedderLike, candidates: int = 50) -> None:
        self.db = db
        self.embedder = embedder
        self.candidates = candidates
        self.index = VectorIndex(embedder.model_name, embedder.dim)
        self.weights = {"memory": 1.0, "document": 1.0, "history": 0.8}
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def refresh(self) -> None:
        """Embed a little of what is queued (a big import is embedded by `embed_pending`,
        not by a chat turn), then bring the in-memory matrices up to date."""
        if pending_count(self.db):
            embed_pending(self.db, self.embedder, limit=SEARCH_EMBED_LIMIT)
        self.index.sync(self.db)

    def query_vector(self, query: str) -> np.ndarray:
        cached = self._query_cache.get(query)
        if cached is None:
            cached = self.embedder.embed([query])[0]
            self._query_cache[query] = cached
            if len(self._query_cache) > 64:
                self._query_cache.popitem(last=False)
        else:
            self._query_cache.move_to_end(query)
        return cached

    def search(
        self,
        query: str,
        k: int = 5,
        kinds: Iterable[str] | None = None,
        exclude_conversation_id: str | None = None,
        min_similarity: float | None = None,
    ) -> list[Hit]:
        """The `k` best hits for `query` across `kinds` (default: all three)."""
        chosen = _check_kinds(kinds)
        if k <= 0 or not query.strip():
            return []
        self.refresh()
        floor = self.embedder.min_similarity if min_similarity is None else min_similarity
        qvec = self.query_vector(query)
        words = fts.terms(query)
        scores: dict[tuple[str, str], float] = {}
        cosines: dict[tuple[str, str], float] = {}
        lexical: dict[tuple[str, str], int] = {}
        for kind in chosen:
            weight = self.weights[kind]
            for rank, oid in enumerate(self.lexical(kind, words), 1):
                scores[(kind, oid)] = scores.get((kind, oid), 0.0) + weight / (RRF_K + rank)
                lexical[(kind, oid)] = rank
            for rank, (oid, sim) in enumerate(
                self.index.top(OWNER[kind], qvec, self.candidates, floor), 1
            ):
                scores[(kind, oid)] = scores.get((kind, oid), 0.0) + weight / (RRF_K + rank)
                cosines[(kind, oid)] = sim
        ranked = sorted(scores, key=lambda key: (-scores[key], key))
        details = self._details(ranked, k, exclude_conversation_id)
        return [
            Hit(
                kind=key[0],
                id=key[1],
                text=text,
                score=scores[key],
                source=source,
                created_at=created_at,
                cosine=cosines.get(key),
                lexical_rank=lexical.get(key),
                document=document,
                chunk=chunk,
            )
            for key, (text, source, created_at, document, chunk) in details
        ]

    def lexical(self, kind: str, words: list[str]) -> list[str]:
        """BM25 candidates for one kind, best first (common words left out on big indexes)."""
        n_rows = len(self.index.kinds[OWNER[kind]])
        if n_rows == 0 or not words:
            return []
        kept = fts.affordable_terms(self.db, FTS_TABLE[kind], words, n_rows)
        return fts.bm25_ids(self.db, FTS_TABLE[kind], CONTENT_TABLE[kind], kept, self.candidates)

    def _details(
        self, ranked: list[tuple[str, str]], k: int, exclude_conversation_id: str | None
    ) -> list[tuple[tuple[str, str], Row]]:
        """Text, source label and time of the best `k` candidates that may be shown,
        fetched a few at a time in rank order (superseded, rejected... are skipped)."""
        shown: list[tuple[tuple[str, str], Row]] = []
        step = max(2 * k, 10)
        for start in range(0, len(ranked), step):
            batch = ranked[start : start + step]
            found: dict[tuple[str, str], Row] = {}
            for kind in {kind for kind, _ in batch}:
                ids = [oid for kind_, oid in batch if kind_ == kind]
                if kind == "memory":
                    rows = _fetch_memories(self.db, ids)
                elif kind == "document":
                    rows = _fetch_chunks(self.db, ids)
                else:
                    rows = _fetch_messages(self.db, ids, exclude_conversation_id)
                found.update(((kind, oid), value) for oid, value in rows.items())
            shown += [(key, found[key]) for key in batch if key in found]
            if len(shown) >= k:
                break
        return shown[:k]

    def similar_accepted(self, query: str, k: int = 2) -> list[Accepted]:
        """Accepted answers (not forgotten) whose question is most similar to `query`."""
        if k <= 0 or not query.strip():
            return []
        examples = accepted_examples(self.db)
        if not examples:
            return []
        self.refresh()
        questions = _question_ids(self.db, [e.message_id for e in examples])
        sims = self.index.kinds["message"].similarities(
            list(questions.values()), self.query_vector(query)
        )
        scored = [
            (sims[questions[e.message_id]], i, e)
            for i, e in enumerate(examples)
            if questions.get(e.message_id) in sims
        ]
        scored = [s for s in scored if s[0] >= self.embedder.min_similarity]
        scored.sort(key=lambda s: (-s[0], -s[1]))
        return [e for _, _, e in scored[:k]]


def _question_ids(db: Database, answer_ids: Sequence[str]) -> dict[str, str]:
    """For each answer id, the id of the user message just before it in its conversation."""
    found: dict[str, str] = {}
    for start in range(0, len(answer_ids), 500):
        batch = list(answer_ids[start : start + 500])
        marks = ", ".join("?" for _ in batch)
        rows = db.execute(
            "SELECT a.id, (SELECT u.id FROM messages u WHERE u.conversation_id = a.conversation_id "
            "AND u.role = 'user' AND u.id < a.id ORDER BY u.id DESC LIMIT 1) "
            f"FROM messages a WHERE a.id IN ({marks})",
            batch,
        )
        found.update((aid, qid) for aid, qid in rows if qid is not None)
    return found


def _check_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return KINDS
    chosen = tuple(dict.fromkeys([kinds] if isinstance(kinds, str) else kinds))
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise StoreError(f"Unknown search kind(s) {', '.join(unknown)}; use {', '.join(KINDS)}.")
    return chosen
