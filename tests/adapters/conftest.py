"""Fixtures for the adapter tests: a tiny random Llama with the real SmolLM2 tokenizer.

The tiny model (hidden 32, 2 blocks, vocab 49152) is written as an mlx-lm folder once per
session, so tests exercise the same `mlx_lm.load` path as the real model in milliseconds.
The tokenizer is rebuilt from the bundled GGUF's metadata (no full conversion needed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TINY_CONFIG = {
    "model_type": "llama",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "vocab_size": 49152,
    "tie_word_embeddings": True,
    "rope_theta": 10000.0,
    "max_position_embeddings": 2048,
}


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Train as the refresh worker does: one BLAS thread (see adapters.priority)."""
    from adapters.priority import blas_threads

    previous = blas_threads(1)
    yield
    if previous:
        blas_threads(previous)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlx.core as mx

    from agent import convert
    from agent.gguf_tokenizer import save_tokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    _, meta = mx.load(str(convert.bundled_gguf()), return_metadata=True)
    save_tokenizer(meta, out)
    return out


def write_tiny_model(folder: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random tiny Llama as an mlx-lm folder (config, weights, tokenizer files)."""
    import shutil

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models.llama import Model, ModelArgs

    folder.mkdir(parents=True, exist_ok=True)
    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(TINY_CONFIG))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, folder / f.name)
    return folder


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
