"""Embedders: the hashing one used by the other tests, and the real bundled model."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from memory.embed import Embedder, HashEmbedder
from memory.store import Store


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    e = HashEmbedder()
    a = e.embed(["The cat sat on the mat", "", "dogs bark"])
    b = HashEmbedder().embed(["The cat sat on the mat", "", "dogs bark"])
    assert a.dtype == np.float32 and a.shape == (3, 384)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a[[0, 2]], axis=1), 1.0) and not a[1].any()
    assert e.embed([]).shape == (0, 384)


def test_real_embedder_lazy_batched_and_semantic(hearth_home) -> None:  # type: ignore[no-untyped-def]
    os.environ["HF_HUB_OFFLINE"] = "1"
    model = Embedder(batch_size=4)
    assert not model.loaded
    with Store.open(embedder=model) as store:
        assert not model.loaded  # opening loads nothing
        pet = store.add_memory("My dog is called Rex.")
        store.add_memory("I am allergic to peanuts.")
        store.add_memory("The capital of France is Paris.")
        hits = store.search("what's the name of my pet?", kinds=["memory"])
        assert model.loaded
        assert hits[0].id == pet and hits[0].cosine is not None and hits[0].cosine > 0.4
        assert hits[0].lexical_rank is None  # found by meaning alone: no shared word
    vectors = model.embed([f"sentence {i}" for i in range(9)])
    assert vectors.shape == (9, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert "sentence_transformers" in sys.modules


def test_missing_model_says_how_to_fix() -> None:
    from memory.errors import StoreError

    with pytest.raises(StoreError, match="setup.sh"):
        Embedder(model_path="/nonexistent/model").embed(["x"])
