"""Prompt-prefix KV caches kept on disk, so a new conversation (or process) skips the prefill
of the prompt's stable part (system prompt, then any fixed examples).

Each file is mlx-lm's own prompt-cache format (`save_prompt_cache` / `load_prompt_cache`),
named by a key over everything that determines its contents: the model's checksum, the
served adapter (folder name and its weights' size and mtime), the cache format, and the exact
prefix tokens (so a new system-prompt version, a new adapter or another model never reuses
a stale cache). Files live in `<cache dir>/prompt-cache/`, 0600 in a 0700 folder, and the
folder is kept under `max_bytes` by deleting the least recently used files.

It does not decide which part of a prompt is stable (the runtime does) or run the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlx.core as mx  # the runtime imported agent.foundation.blas first
from mlx_lm.models.cache import KVCache, load_prompt_cache, save_prompt_cache

from agent.foundation import paths

FORMAT = "hearth-prefix-1"
MAX_BYTES = 256 * 1024 * 1024
MIN_TOKENS = 16
"""Shorter prefixes prefill faster than a file loads."""


def adapter_identity(adapter_path: Path | None) -> str:
    if adapter_path is None:
        return "base"
    weights = Path(adapter_path) / "adapters.safetensors"
    try:
        st = weights.stat()
    except OSError:
        return f"{Path(adapter_path).name}:missing"
    return f"{Path(adapter_path).name}:{st.st_size}:{st.st_mtime_ns}"


def cache_key(model_checksum: str, adapter: str, tokens: Sequence[int]) -> str:
    digest = hashlib.sha256()
    for part in (FORMAT, model_checksum, adapter, _mlx_version()):
        digest.update(part.encode() + b"\0")
    digest.update(",".join(map(str, tokens)).encode())
    return digest.hexdigest()[:40]


def _mlx_version() -> str:
    try:
        return importlib.metadata.version("mlx")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class PrefixStore:
    """A folder of prefix caches, bounded in size."""

    def __init__(self, folder: Path | None = None, max_bytes: int = MAX_BYTES):
        self._folder = folder
        self.max_bytes = max_bytes

    @property
    def folder(self) -> Path:
        return paths.ensure_private_dir(self._folder or paths.cache_dir() / "prompt-cache")

    def _file(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def load(self, key: str, n_tokens: int) -> list[Any] | None:
        """The cache saved under `key` (holding `n_tokens`), or None (missing or damaged)."""
        path = self._file(key)
        if not path.is_file():
            return None
        try:
            cache = load_prompt_cache(str(path))
        except Exception:  # damaged or from another mlx-lm version: drop it, prefill instead
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        if not cache or any(not isinstance(c, KVCache) or c.offset != n_tokens for c in cache):
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently *used* is what gets evicted
        return cache

    def save(self, key: str, cache: Sequence[Any], n_tokens: int) -> Path | None:
        """Save the first `n_tokens` rows of `cache` (mlx-lm KVCache list) under `key`."""
        if any(not isinstance(c, KVCache) or c.keys is None or c.offset < n_tokens for c in cache):
            return None
        prefix = []
        for c in cache:
            p = KVCache()
            p.keys = mx.array(c.keys[..., :n_tokens, :])
            p.values = mx.array(c.values[..., :n_tokens, :])
            p.offset = n_tokens
            prefix.append(p)
        path = self._file(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.safetensors")
        old_umask = os.umask(0o077)
        try:
            save_prompt_cache(str(tmp), prefix, metadata={"format": FORMAT, "tokens": str(n_tokens)})
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except (OSError, RuntimeError, ValueError):
            with contextlib.suppress(OSError):
                tmp.unlink()
            return None
        finally:
            os.umask(old_umask)
        self.prune(keep=path)
        return path

    def prune(self, keep: Path | None = None) -> None:
        """Delete least recently used files until the folder fits `max_bytes`."""
        files = []
        for p in self.folder.glob("*.safetensors"):
            with contextlib.suppress(OSError):
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
