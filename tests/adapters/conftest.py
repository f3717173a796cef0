"""Fixtures for the adapter tests: a tiny random Llama with the real SmolLM2 tokenizer.

The tiny model (hidden 32, 2 blocks, vocab 49152) is written as an mlx-lm folder once per
session, so tests exercise the same `mlx_lm.load` path as the real model in milliseconds.
The tokenizer is rebuilt from the bundled GGUF's metadata (no full conversion needed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adapter_helpers import write_tiny_model


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Train as the refresh worker does: one BLAS thread (see adapters.jobs.priority)."""
    from adapters.jobs.priority import blas_threads

    previous = blas_threads(1)
    yield
    if previous:
        blas_threads(previous)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlx.core as mx

    from agent.llm import convert
    from agent.llm.gguf_tokenizer import save_tokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    _, meta = mx.load(str(convert.bundled_gguf()), return_metadata=True)
    save_tokenizer(meta, out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama", tokenizer_dir)


@pytest.fixture
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    """A freshly loaded (model, tokenizer) pair; each test may add LoRA layers to it."""
    from mlx_lm import load

    return load(str(tiny_model_dir))


@pytest.fixture
def store(hearth_home: Path) -> Iterator[Any]:
    from memory.embed import HashEmbedder
    from memory.store import Store

    s = Store.open(embedder=HashEmbedder())
    yield s
    s.close()
