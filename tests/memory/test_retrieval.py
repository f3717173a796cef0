"""Hybrid search, FTS query sanitising, the vector index and few-shot selection."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.errors import StoreError
from memory.fts import fts_query
from memory.store import Store
from memory.vectors import KindMatrix


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_a_valid_fts_query(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')"
    )
    conn.execute("INSERT INTO t VALUES ('hello world')")
    match = fts_query(text)
    if match is not None:
        conn.execute("SELECT * FROM t WHERE t MATCH ?", [match]).fetchall()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet=st.sampled_from(list("\"*^:()-+ANDORNEAR{}[] '\\é漢")), max_size=40))
def test_operator_soup_never_raises_through_search(store: Store, text: str) -> None:
    store.add_memory("and or near not")  # the same store across examples is fine: read-only
    store.search(text)


def test_fts_query_examples() -> None:
    assert fts_query("") is None
    assert fts_query("!!! ???") is None
    assert fts_query("the") == '"the"'  # only stopwords: keep them
    assert fts_query('AND OR NOT "x" NEAR(a b)') == '"not" OR "x" OR "near" OR "b"'
    assert fts_query("Crème brûlée") == '"crème" OR "brûlée"'


def test_search_kinds_and_provenance(store: Store, tmp_path) -> None:
    mid = store.add_memory("My cat is called Miso.")
    doc = tmp_path / "pets.md"
    doc.write_text("# Pets\n\nThe cat eats fish at noon.\n")
    store.ingest(doc)
    cid = store.new_conversation()
    store.add_message(cid, "user", "Does the cat like fish?")
    aid = store.add_message(cid, "assistant", "Yes, the cat likes fish.")
    hits = store.search("cat fish", k=10)
    kinds = {h.kind for h in hits}
    assert kinds == {"memory", "document", "history"}
    by_id = {h.id: h for h in hits}
    assert by_id[mid].source.startswith("memory (typed by you, ")
    doc_hit = next(h for h in hits if h.kind == "document")
    assert doc_hit.source == "doc pets.md #1"
    assert (doc_hit.document, doc_hit.chunk) == ("pets.md", 1)
    assert by_id[mid].document is None and by_id[aid].chunk is None
    assert by_id[aid].source.startswith("past answer ")
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.kind for h in store.search("cat fish", kinds=["memory"])} == {"memory"}
    assert {h.kind for h in store.search("cat fish", kinds="document")} == {"document"}
    assert store.search("cat", exclude_conversation_id=cid, kinds=["history"]) == []
    with pytest.raises(StoreError, match="Unknown search kind"):
        store.search("cat", kinds=["emails"])


def test_search_excludes_superseded_and_rejected(store: Store) -> None:
    old = store.add_memory("I live in Paris.")
    new = store.supersede_memory(old, "I live in Lyon.")
    ids = [h.id for h in store.search("where do I live", kinds=["memory"])]
    assert ids == [new]
    cid = store.new_conversation()
    bad = store.add_message(cid, "assistant", "Penguins live in the Arctic.")
    assert bad in [h.id for h in store.search("penguins arctic", kinds=["history"])]
    store.add_feedback(bad, "rejected")
    assert bad not in [h.id for h in store.search("penguins arctic", kinds=["history"])]


def test_hit_reports_both_signals(store: Store) -> None:
    mid = store.add_memory("I am allergic to peanuts.")
    hit = store.search("peanuts", kinds=["memory"])[0]
    assert hit.id == mid and hit.cosine is not None and hit.lexical_rank == 1


def test_empty_query_and_k(store: Store) -> None:
    store.add_memory("anything")
    assert store.search("   ") == []
    assert store.search("anything", k=0) == []


def test_similar_accepted_picks_closest_question(store: Store) -> None:
    answers = {}
    for q, a in [
        ("How do I boil an egg?", "Boil it 8 minutes."),
        ("What is the capital of France?", "Paris."),
        ("How long to boil pasta?", "About 10 minutes."),
    ]:
        cid = store.new_conversation()
        store.add_message(cid, "user", q)
        aid = store.add_message(
            cid, "assistant", a, prompt_messages=[{"role": "user", "content": q}]
        )
        store.add_feedback(aid, "accepted")
        answers[q] = aid
    best = store.similar_accepted("capital city of France", k=1)
    assert [e.message_id for e in best] == [answers["What is the capital of France?"]]
    two = store.similar_accepted("how long to boil an egg", k=2)
    assert {e.message_id for e in two} == {
        answers["How do I boil an egg?"],
        answers["How long to boil pasta?"],
    }
    assert store.similar_accepted("", k=2) == []


def test_kind_matrix_upsert_remove_top() -> None:
    m = KindMatrix(3)
    eye = np.eye(3, dtype=np.float32)
    m.upsert(["a", "b", "c"], eye)
    assert [i for i, _ in m.top(eye[1], 1, -1)] == ["b"]
    m.remove(["a"])
    assert sorted(m.ids) == ["b", "c"] and len(m) == 2
    assert [i for i, _ in m.top(eye[2], 5, 0.5)] == ["c"]
    m.upsert(["b"], np.array([[0, 0, 1]], dtype=np.float32))
    assert len(m) == 2 and m.top(eye[2], 2, 0.5)[0][1] == pytest.approx(1.0)
    m.upsert([f"x{i}" for i in range(100)], np.ones((100, 3), dtype=np.float32))
    assert len(m) == 102 and m.similarities(["c", "zz"], eye[2]) == {"c": 1.0}


def test_index_is_incremental(store: Store) -> None:
    store.add_memory("first fact about owls")
    store.search("owls")
    index = store.retriever.index
    first_matrix = index.kinds["memory"].mat
    store.add_memory("second fact about owls")
    assert len(store.search("owls", kinds=["memory"])) == 2
    assert index.kinds["memory"].mat is first_matrix  # grown in place, not reloaded


def test_unchanged_text_is_not_embedded_twice(store: Store) -> None:
    calls: list[int] = []
    real = store.embedder.embed

    def counting(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return real(texts)

    store.embedder.embed = counting  # type: ignore[method-assign]
    store.add_memory("same words here")
    cid = store.new_conversation()
    store.add_message(cid, "user", "same words here")
    store.embed_pending()
    assert calls == [1]
    (n,) = store.db.execute("SELECT count(*) FROM embeddings").fetchone()
    assert n == 2


def test_large_matrix_search_matches_exact() -> None:
    from memory import vectors

    rng = np.random.default_rng(0)
    n = vectors.EXACT_MAX + 25_000
    centers = rng.standard_normal((300, 384))
    rows = centers[rng.integers(0, 300, n)] + 0.8 * rng.standard_normal((n, 384))
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    m = KindMatrix(384)
    m.upsert([f"r{i}" for i in range(n)], rows)
    recalls = []
    for i in rng.integers(0, n, 20):
        q = rows[i] + 0.02 * rng.standard_normal(384).astype(np.float32)
        q /= np.linalg.norm(q)
        exact = {f"r{j}" for j in np.argsort(-(rows @ q))[:10]}
        got = m.top(q, 10, -1.0)
        assert got[0][0] == f"r{i}"
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        recalls.append(len(exact & {oid for oid, _ in got}) / 10)
    assert np.mean(recalls) >= 0.9


def test_sign_bits_any_dim() -> None:
    from memory.vectors import sign_bits

    v = np.array([[1.0] * 70, [-1.0] * 70])
    bits = sign_bits(v)
    assert bits.shape == (2, 2)
    assert bin(int(bits[0, 0])).count("1") + bin(int(bits[1, 0])).count("1") == 70
    assert int(bits[0, 1]) == 0 and int(bits[1, 1]) == 0


def test_search_embeds_only_a_little_of_a_big_queue(store: Store) -> None:
    from memory.retrieval import SEARCH_EMBED_LIMIT

    for i in range(SEARCH_EMBED_LIMIT + 30):
        store.add_memory(f"imported fact number {i}")
    store.search("fact")
    assert store.stats()["embed_queue"] == 30
    seen: list[tuple[int, int]] = []
    assert store.embed_pending(progress=lambda done, total: seen.append((done, total))) == 30
    assert seen[-1] == (30, 30) and store.stats()["embed_queue"] == 0
