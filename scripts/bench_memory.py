"""Benchmark the memory store; prints `name: value` lines.

Builds a store with --chunks synthetic document chunks (Zipf-distributed pseudo-words, random
unit vectors standing in for embeddings), then times --queries hybrid searches (BM25 + cosine +
RRF + fetching the hits). The query vector comes from a stand-in embedder, so search_*_ms is
the store's own cost; the real model's cost per query is query_embed_ms, and its batched
throughput embed_per_s (English paragraphs of 200-800 characters). ingest_files_per_s times
`Store.ingest` on small Markdown files (reading, hashing, chunking, writing; embedding
excluded, timed as ingest_embed_files_per_s). CPU times are printed too: on a shared machine
the wall-clock numbers include waiting for other processes (see load_average_1m).

Usage: python scripts/bench_memory.py [--chunks 100000] [--queries 200] [--no-model]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.foundation.ids import new_id, now_iso  # noqa: E402
from memory.embed import DIM, Embedder, normalise  # noqa: E402
from memory.store import Store  # noqa: E402

VOCAB = 20_000


class RandomEmbedder:
    """Deterministic random unit vectors per text: the cost of a real query without the model."""

    model_name = "bench-random"
    dim = DIM
    min_similarity = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")
            rows.append(np.random.default_rng(seed).standard_normal(DIM))
        return normalise(np.array(rows))


def words(rng: np.random.Generator, n: int) -> list[str]:
    """Zipf-distributed pseudo-words (rank 1 is the most common), like natural text."""
    ranks = rng.zipf(1.15, n)
    ranks = np.where(ranks > VOCAB, rng.integers(1, VOCAB, n), ranks)
    return [f"w{r}" for r in ranks]


@functools.cache
def prose(n: int) -> list[str]:
    """Up to n English paragraphs (200-800 characters) from the standard library's
    docstrings: real text for the model's numbers, available offline everywhere."""
    found: list[str] = []
    stdlib = Path(os.__file__).parent
    for path in sorted(p for p in stdlib.rglob("*.py") if "test" not in p.parts):
        for doc in re.findall(
            r'"""(.*?)"""', path.read_text(encoding="utf-8", errors="replace"), re.S
        ):
            for para in re.split(r"\n\s*\n", doc):
                para = " ".join(para.split())
                if 200 <= len(para) <= 800:
                    found.append(para)
        if len(found) >= n:
            break
    return [found[i % len(found)] for i in range(n)]


def build(store: Store, n_chunks: int, rng: np.random.Generator) -> float:
    """Insert n_chunks chunks (in 100-chunk documents) with random unit vectors."""
    start = time.perf_counter()
    db, now = store.db, now_iso()
    per_doc = 100
    for first in range(0, n_chunks, 5_000):
        with db.conn:  # one transaction per 5,000 chunks
            for d in range(first, min(first + 5_000, n_chunks), per_doc):
                doc_id = new_id()
                db.conn.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, 0, 0, ?, ?)",
                    [doc_id, f"/bench/doc{d // per_doc}.md", str(d), now, now],
                )
                count = min(per_doc, n_chunks - d)
                ids = [new_id() for _ in range(count)]
                texts = [" ".join(words(rng, 130)) for _ in range(count)]
                db.conn.executemany(
                    "INSERT INTO chunks VALUES (?, ?, ?, ?)",
                    [
                        (cid, doc_id, i, t)
                        for i, (cid, t) in enumerate(zip(ids, texts, strict=True))
                    ],
                )
                vectors = normalise(rng.standard_normal((count, DIM))).astype(np.float32)
                db.conn.executemany(
                    "INSERT INTO embeddings (owner_kind, owner_id, model, content_hash, dim, vector) "
                    "VALUES ('chunk', ?, ?, ?, ?, ?)",
                    [
                        (cid, RandomEmbedder.model_name, cid, DIM, v.tobytes())
                        for cid, v in zip(ids, vectors, strict=True)
                    ],
                )
            db.conn.execute("DELETE FROM embed_queue")
    return time.perf_counter() - start


def time_queries(store: Store, queries: list[str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each search (CPU time is what a busy machine
    cannot inflate)."""
    wall, cpu = [], []
    for q in queries:
        t, c = time.perf_counter(), time.process_time()
        store.search(q, k=5)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return wall, cpu


def bench_ingest(home: Path, embedder: object, n_files: int, rng: np.random.Generator) -> float:
    """Files per second through Store.ingest; each file is a heading and 4 paragraphs."""
    folder = home / f"files-{n_files}-{type(embedder).__name__}"
    folder.mkdir()
    paragraphs = prose(2000)[: 4 * n_files]
    for i in range(n_files):
        paras = [f"# Note {i}"] + paragraphs[4 * i : 4 * i + 4]
        (folder / f"note{i}.md").write_text("\n\n".join(paras))
    with Store.open(home / f"ingest-{n_files}.db", embedder=embedder) as s:  # type: ignore[arg-type]
        t = time.perf_counter()
        s.ingest(folder, embed=not isinstance(embedder, RandomEmbedder))
        return n_files / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-model", action="store_true", help="skip the real-model numbers")
    parser.add_argument("--db", type=Path, help="reuse (or build once into) this database file")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp:
        home = Path(tmp)
        os.environ["HEARTH_HOME"] = str(home)
        print(f"load_average_1m: {os.getloadavg()[0]:.2f}")
        print(f"cpu_count: {os.cpu_count()}")
        bench_search(args.db or home / "bench.db", args, rng)
        print(f"ingest_files_per_s: {bench_ingest(home, RandomEmbedder(), 500, rng):.0f}")
        if not args.no_model:
            bench_model(home, rng)


def bench_search(path: Path, args: argparse.Namespace, rng: np.random.Generator) -> None:
    with Store.open(path, embedder=RandomEmbedder()) as store:
        if not store.list_documents():
            print(f"build_s: {build(store, args.chunks, rng):.1f}")
        print(f"chunks: {store.stats()['chunks']}")
    # a fresh open, as the chat process would find the file
    with Store.open(path, embedder=RandomEmbedder()) as store:
        t = time.perf_counter()
        store.search("warm up the index", k=5)
        print(f"index_load_s: {time.perf_counter() - t:.2f}")
        queries = [" ".join(words(rng, int(rng.integers(2, 6)))) for _ in range(args.queries)]
        times, cpu = time_queries(store, queries)
        print(f"search_p50_ms: {statistics.median(times):.2f}")
        print(f"search_p95_ms: {np.percentile(times, 95):.2f}")
        print(f"search_max_ms: {max(times):.2f}")
        print(f"search_cpu_p50_ms: {statistics.median(cpu):.2f}")
        print(f"search_cpu_p95_ms: {np.percentile(cpu, 95):.2f}")
        print(f"db_mb: {store.path.stat().st_size / 2**20:.0f}")
        if args.db is None:
            doc = store.list_documents()[0]
            t = time.perf_counter()
            store.forget_document(doc.id)
            print(f"forget_document_purge_s: {time.perf_counter() - t:.2f}")


def bench_model(home: Path, rng: np.random.Generator) -> None:
    model = Embedder()
    texts = prose(2000)[-128:]
    model.embed(prose(2000)[-144:-128])  # load and warm up
    t = time.perf_counter()
    model.embed(texts)
    print(f"embed_per_s: {len(texts) / (time.perf_counter() - t):.1f}")
    single = []
    for _ in range(30):
        q = " ".join(words(rng, 6))
        t = time.perf_counter()
        model.embed([q])
        single.append((time.perf_counter() - t) * 1000)
    print(f"query_embed_ms: {statistics.median(single):.1f}")
    print(f"ingest_embed_files_per_s: {bench_ingest(home, model, 40, rng):.1f}")


if __name__ == "__main__":
    main()
