"""Shared test fixtures.

Every test gets its own HEARTH_HOME in a temp dir (autouse) and runs offline. Real-model
fixtures convert the bundled SmolLM2 once per session into a session temp dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from agent import blas  # noqa: E402

blas.ensure()  # before anything imports mlx


@pytest.fixture(autouse=True)
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    yield home


@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled SmolLM2 converted to an mlx-lm float32 folder, once per test session."""
    from agent import convert

    out = tmp_path_factory.mktemp("models") / "smollm2-f32"
    return convert.convert_gguf(convert.bundled_gguf(), out, model_id=convert.BUNDLED_ID)
