"""Fixtures for the `hearth eval` tests: a loaded tiny runtime, the real bundled model, noise.

The tiny runtime (tests/conftest.py's random 2-block Llama with the real SmolLM2 tokenizer)
exercises every code path in seconds; the bundled model (converted once per session) is for
the few end-to-end tests marked slow. Noise data lives in `noise_data.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def bundled_runtime(bundled_model_dir: Path) -> Any:
    """The real SmolLM2-135M, loaded once per session (each test restores the bare base)."""
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime

    return Runtime.load(ModelRef("SmolLM2-135M-Instruct", bundled_model_dir, "bundled"))
