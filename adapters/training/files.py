"""Crash-safe file helpers: write to a temporary name, flush, fsync, rename.

A reader sees either the old file or the complete new one, never half of it, even after
kill -9 or a power cut. Used for checkpoints, adapter folders and manifests. Nothing here
knows about MLX beyond `save_safetensors_atomic`, which imports it lazily.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from agent.foundation import paths
from agent.llm.convert import sha256_file  # noqa: F401 - re-exported for adapters


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file in `folder` (not recursive), then the folder itself."""
    for f in folder.iterdir():
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)


def _replace(tmp: Path, target: Path) -> None:
    paths.make_private(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _replace(Path(name), target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_json_atomic(target: Path, value: Any) -> None:
    write_bytes_atomic(target, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def save_safetensors_atomic(target: Path, arrays: dict[str, Any]) -> None:
    """mx.save_safetensors to a temporary name in the same folder, fsync, rename."""
    import mlx.core as mx  # lazy: imports MLX

    tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}.safetensors")
    try:
        mx.save_safetensors(str(tmp), arrays)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        _replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_tree(path: Path) -> None:
    """Delete a folder (or file) if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
