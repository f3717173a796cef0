"""Helpers for the experiment tests: gated adapter versions registered in a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.training import registry
from tests.conftest import write_lora_adapter

BASE_CHECKSUM = "tiny-checksum"


def register_adapter(store: Any, model_dir: Path, tmp: Path, seed: int, passed: bool = True,
                     activate: bool = False) -> str:
    """Write a random LoRA adapter, register it as a gated version; returns its id."""
    raw = write_lora_adapter(model_dir, tmp / f"raw-{seed}", seed)
    version = registry.begin(store, registry.Base("tiny", model_dir, BASE_CHECKSUM), f"snap{seed}",
                             10, 2, {})
    folder = registry.write_folder(version, raw, {"base_model_id": "tiny",
                                                  "base_checksum": BASE_CHECKSUM,
                                                  "message_ids": []})
    store.update_adapter_version(version, path=str(folder),
                                 status="candidate" if passed else "rejected",
                                 verdict="promote" if passed else "reject", reason="test", metrics={})
    if activate:
        registry.activate(store, version, BASE_CHECKSUM)
    return version
