"""Fixtures for the memory tests: a store on the fast deterministic HashEmbedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.embed import HashEmbedder
from memory.store import Store


@pytest.fixture
def store(hearth_home: Path) -> Iterator[Store]:
    s = Store.open(embedder=HashEmbedder())
    yield s
    s.close()
