"""Helpers shared by the memory tests (not fixtures)."""

from __future__ import annotations

from pathlib import Path


def db_files(path: Path) -> list[Path]:
    """The database file and its -wal/-shm companions that exist."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
