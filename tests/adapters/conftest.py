"""Fixtures for the adapter tests: a tiny random Llama with the real SmolLM2 tokenizer.

The tiny model (hidden 32, 2 blocks, vocab 49152) is written as an mlx-lm folder once per
session, so tests exercise the same `mlx_lm.load` path as the real model in milliseconds.
The tokenizer is rebuilt from the bundled GGUF's metadata (no full conversion needed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass
class FakeAccepted:
    message_id: str
    prompt_messages: list[dict[str, str]]
    target: str
    created_at: str = "2026-11-01T00:00:00Z"
    forgotten: bool = False


def accepted(n: int, start: int = 0, fact: str = "The lighthouse keeper is named Orla.") -> list[FakeAccepted]:
    """`n` distinct accepted answers teaching one fact in one style."""
    rows = []
    for i in range(start, start + n):
        prompt = [
            {"role": "system", "content": "You are Hearth."},
            {"role": "user", "content": f"Question {i}: who keeps the lighthouse?"},
        ]
        rows.append(FakeAccepted(f"m{i:04d}", prompt, f"Ahoy! {fact} (note {i})"))
    return rows


@dataclass
class FakeStore:
    """The slice of memory.store.Store the adapters package uses, in memory."""

    rows: list[FakeAccepted] = field(default_factory=list)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    active: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    last_user_message_at: str | None = None

    def accepted_examples(self, include_forgotten: bool = False) -> list[FakeAccepted]:
        return [r for r in self.rows if include_forgotten or not r.forgotten]

    def add_adapter_version(self, **fields: Any) -> str:
        vid = fields.get("id") or fields["version"]
        self.versions[vid] = {"id": vid, **fields}
        return vid

    def update_adapter_version(self, vid: str, **fields: Any) -> None:
        self.versions[vid].update(fields)

    def get_adapter_version(self, vid: str) -> dict[str, Any] | None:
        row = self.versions.get(vid)
        return None if row is None else {**row, "active": vid == self.active}

    def list_adapter_versions(self) -> list[dict[str, Any]]:
        return [self.get_adapter_version(v) for v in self.versions]  # type: ignore[misc]

    def active_adapter(self) -> dict[str, Any] | None:
        return None if self.active is None else self.get_adapter_version(self.active)

    def set_active_adapter(self, vid: str | None) -> None:
        if vid is not None and vid not in self.versions:
            raise KeyError(vid)
        self.active = vid

    def get_setting(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        self.settings[key] = value


@pytest.fixture
def fake_store() -> Iterator[FakeStore]:
    yield FakeStore()
