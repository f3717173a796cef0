"""Embeddings on disk and in memory.

On disk: one float32 BLOB per (owner kind, owner id, model) with the text's content hash; the
`embed_queue` (filled by triggers) lists owners still to embed. `embed_pending` drains it in
batches, reusing any stored vector with the same model and content hash, so unchanged text is
never embedded twice.

In memory: `VectorIndex` keeps one contiguous float32 matrix per owner kind, loaded once and
then updated incrementally (new rows by rowid; a full reload when another process deleted
rows). A query is one matrix-vector product plus `argpartition`; above EXACT_MAX rows, the
sign bits of the vectors (Hamming distance) first pick a pool of POOL_MIN rows to score
exactly, which keeps a 100,000-row query within a few milliseconds.

This module does not rank or fuse results (see `retrieval`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
from sqlite_utils import Database

from agent.foundation.ids import text_hash
from memory.db import write
from memory.embed import EmbedderLike

OWNER_TABLES = {"memory": "memories", "chunk": "chunks", "message": "messages"}
Progress = Callable[[int, int], None]


EXACT_MAX = 20_000  # up to this many rows a query is one exact matrix-vector product
POOL_MIN = 4_000  # above it, this many rows (at least) are re-scored exactly


def sign_bits(vectors: np.ndarray) -> np.ndarray:
    """Sign bits of each row packed into uint64 words, shape (words, rows) for fast XOR.

    >>> sign_bits(np.array([[1.0, -1.0] * 32])).tolist() == [[0xAAAAAAAAAAAAAAAA]]
    True
    """
    packed = np.packbits(vectors > 0, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed.view(">u8").astype(np.uint64).T)


def dot(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """rows @ query without BLAS threads (their wake-up costs more than a small product)."""
    return np.einsum("ij,j->i", rows, query)


class KindMatrix:
    """A growable float32 matrix with an id per row; removal swaps in the last row.

    Large matrices are searched in two steps: the Hamming distance between sign bits (a
    cheap estimate of the angle) picks a pool of rows, which are then scored exactly."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids: list[str] = []
        self.pos: dict[str, int] = {}
        self.mat = np.zeros((0, dim), dtype=np.float32)
        self.bits = np.zeros(((dim + 63) // 64, 0), dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.ids)

    def _grow(self, need: int, n: int) -> None:
        """Make room for `need` rows, keeping the first `n`."""
        if need <= self.mat.shape[0]:
            return
        size = max(need, 2 * self.mat.shape[0], 64)
        mat = np.zeros((size, self.dim), dtype=np.float32)
        bits = np.zeros((self.bits.shape[0], size), dtype=np.uint64)
        mat[:n], bits[:, :n] = self.mat[:n], self.bits[:, :n]
        self.mat, self.bits = mat, bits

    def upsert(self, ids: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        before = len(self.ids)
        for oid in ids:
            if oid not in self.pos:
                self.pos[oid] = len(self.ids)
                self.ids.append(oid)
        self._grow(len(self.ids), before)
        rows = [self.pos[oid] for oid in ids]
        where = np.array(rows, dtype=np.int64)
        self.mat[where] = vectors
        self.bits[:, where] = sign_bits(vectors)

    def remove(self, ids: Iterable[str]) -> None:
        for oid in ids:
            at = self.pos.pop(oid, None)
            if at is None:
                continue
            last = len(self.ids) - 1
            if at != last:
                moved = self.ids[last]
                self.ids[at] = moved
                self.mat[at] = self.mat[last]
                self.bits[:, at] = self.bits[:, last]
                self.pos[moved] = at
            self.ids.pop()

    def _pool(self, query: np.ndarray, size: int) -> np.ndarray:
        """Row numbers (ascending) of the `size` or so rows whose sign bits differ least from
        the query's."""
        count, q = len(self.ids), sign_bits(query[None, :])[:, 0]
        distance = np.bitwise_count(self.bits[0, :count] ^ q[0])
        for word in range(1, self.bits.shape[0]):
            distance += np.bitwise_count(self.bits[word, :count] ^ q[word])
        # the smallest distance d with at least `size` rows at or below it (ties included):
        # a histogram of 0..bits distances is cheaper than argpartition over every row
        counts = np.bincount(distance, minlength=self.bits.shape[0] * 64 + 1).cumsum()
        return np.flatnonzero(distance <= int(np.searchsorted(counts, size)))

    def top(self, query: np.ndarray, n: int, min_similarity: float) -> list[tuple[str, float]]:
        """The `n` most similar ids (cosine >= min_similarity), best first."""
        count = len(self.ids)
        if count == 0 or n <= 0:
            return []
        if count <= max(EXACT_MAX, 2 * POOL_MIN):
            rows = np.arange(count)
            sims = dot(self.mat[:count], query)
        else:
            rows = self._pool(query, max(POOL_MIN, 40 * n))
            sims = dot(self.mat[rows], query)
        best = np.argpartition(-sims, n - 1)[:n] if n < len(rows) else np.arange(len(rows))
        best = best[np.argsort(-sims[best], kind="stable")]
        return [(self.ids[rows[i]], float(sims[i])) for i in best if sims[i] >= min_similarity]

    def similarities(self, ids: list[str], query: np.ndarray) -> dict[str, float]:
        """Cosine of `query` with the given ids (those present)."""
        present = [oid for oid in ids if oid in self.pos]
        if not present:
            return {}
        rows = self.mat[[self.pos[oid] for oid in present]]
        return dict(zip(present, dot(rows, query).tolist(), strict=True))


class VectorIndex:
    """Per-kind matrices for one embedding model, synced from the `embeddings` table."""

    def __init__(self, model: str, dim: int) -> None:
        self.model = model
        self.dim = dim
        self.kinds = {kind: KindMatrix(dim) for kind in OWNER_TABLES}
        self._last_rowid = -1
        self._data_version: int | None = None

    def invalidate(self) -> None:
        """Forget everything; the next `sync` reloads from the table."""
        self.kinds = {kind: KindMatrix(self.dim) for kind in OWNER_TABLES}
        self._last_rowid = -1

    def sync(self, db: Database) -> None:
        (version,) = db.execute("PRAGMA data_version").fetchone()
        outside_change = self._data_version is not None and version != self._data_version
        self._data_version = version
        self._load_new(db)
        if outside_change and self._last_rowid >= 0:
            (count,) = db.execute(
                "SELECT count(*) FROM embeddings WHERE model = ?", [self.model]
            ).fetchone()
            if count != sum(len(m) for m in self.kinds.values()):
                self.invalidate()
                self._load_new(db)

    def _load_new(self, db: Database) -> None:
        (newest,) = db.execute("SELECT coalesce(max(id), -1) FROM embeddings").fetchone()
        if newest <= self._last_rowid:
            return
        # `+model`: walk the rowid range, not the (model, content_hash) index
        rows = db.execute(
            "SELECT id, owner_kind, owner_id, vector FROM embeddings "
            "WHERE id > ? AND +model = ? AND dim = ? ORDER BY id",
            [self._last_rowid, self.model, self.dim],
        ).fetchall()
        self._last_rowid = newest
        if not rows:
            return
        by_kind: dict[str, list[Any]] = {}
        for _rowid, kind, owner_id, blob in rows:
            by_kind.setdefault(kind, []).append((owner_id, blob))
        for kind, items in by_kind.items():
            ids = [owner_id for owner_id, _ in items]
            vectors = np.frombuffer(b"".join(blob for _, blob in items), dtype=np.float32)
            self.kinds[kind].upsert(ids, vectors.reshape(len(ids), self.dim))

    def top(
        self, kind: str, query: np.ndarray, n: int, min_similarity: float
    ) -> list[tuple[str, float]]:
        return self.kinds[kind].top(query, n, min_similarity)


def pending_count(db: Database) -> int:
    (count,) = db.execute("SELECT count(*) FROM embed_queue").fetchone()
    return int(count)


PENDING_SQL = " UNION ALL ".join(
    f"SELECT q.owner_kind, t.id, t.text FROM embed_queue q JOIN {table} t "
    f"ON q.owner_kind = '{kind}' AND t.id = q.owner_id"
    for kind, table in OWNER_TABLES.items()
)


def _known_vectors(db: Database, model: str, hashes: list[str]) -> dict[str, bytes]:
    if not hashes:
        return {}
    marks = ", ".join("?" for _ in hashes)
    rows = db.execute(
        f"SELECT content_hash, vector FROM embeddings WHERE model = ? AND content_hash IN ({marks})",
        [model, *hashes],
    )
    return dict(rows.fetchall())


def embed_pending(
    db: Database,
    embedder: EmbedderLike,
    batch: int = 256,
    progress: Progress | None = None,
    limit: int | None = None,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> int:
    """Embed queued owners (all, or about `limit`), reusing vectors for identical text.
    `guard()` is held around each batch. Returns how many were embedded."""
    with guard():
        total = pending_count(db)
    done = 0
    while limit is None or done < limit:
        size = batch if limit is None else min(batch, limit - done)
        with guard():
            embedded = _embed_batch(db, embedder, size)
        if not embedded:
            break
        done += embedded
        if progress:
            progress(done, max(total, done))
    return done


def _embed_batch(db: Database, embedder: EmbedderLike, size: int) -> int:
    rows = db.execute(PENDING_SQL + " LIMIT ?", [size]).fetchall()
    if not rows:
        if pending_count(db):
            _drop_orphans(db)
        return 0
    hashes = [text_hash(text) for _, _, text in rows]
    known = _known_vectors(db, embedder.model_name, sorted(set(hashes)))
    missing = sorted(
        {h: t for (_, _, t), h in zip(rows, hashes, strict=True) if h not in known}.items()
    )
    if missing:
        vectors = embedder.embed([text for _, text in missing])
        for i, (digest, _) in enumerate(missing):
            known[digest] = vectors[i].astype(np.float32).tobytes()
    with write(db):
        for (kind, owner_id, text), digest in zip(rows, hashes, strict=True):
            _store_vector(db, embedder, kind, owner_id, text, digest, known[digest])
    return len(rows)


def _store_vector(
    db: Database,
    embedder: EmbedderLike,
    kind: str,
    owner_id: str,
    text: str,
    digest: str,
    blob: bytes,
) -> None:
    """Insert the vector if the owner still has this text (another process may have changed
    or deleted it since it was read), then take it off the queue."""
    table = OWNER_TABLES[kind]
    db.execute(
        "INSERT OR REPLACE INTO embeddings (owner_kind, owner_id, model, content_hash, dim, vector) "
        f"SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {table} WHERE id = ? AND text = ?)",
        [kind, owner_id, embedder.model_name, digest, embedder.dim, blob, owner_id, text],
    )
    db.execute("DELETE FROM embed_queue WHERE owner_kind = ? AND owner_id = ?", [kind, owner_id])


def _drop_orphans(db: Database) -> None:
    """Queue rows whose owner is gone (cannot normally happen; triggers remove them)."""
    with write(db):
        for kind, table in OWNER_TABLES.items():
            db.execute(
                f"DELETE FROM embed_queue WHERE owner_kind = ? AND owner_id NOT IN (SELECT id FROM {table})",
                [kind],
            )


def enqueue_all(db: Database) -> None:
    """Queue every owner for (re-)embedding, e.g. after switching embedding models."""
    with write(db):
        db.execute(
            "INSERT OR IGNORE INTO embed_queue SELECT 'memory', id FROM memories "
            "UNION ALL SELECT 'chunk', id FROM chunks "
            "UNION ALL SELECT 'message', id FROM messages WHERE role != 'system'"
        )
