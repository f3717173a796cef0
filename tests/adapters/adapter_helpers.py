"""Helpers shared by the adapter tests: accepted answers teaching a fact, seeded into a Store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


SYSTEM = {"role": "system", "content": "You are Hearth."}


def pairs(n: int, start: int = 0, fact: str = "Orla keeps the lighthouse.") -> list[tuple[str, str]]:
    """`n` distinct question/answer pairs teaching one fact in one style."""
    return [(f"Question {i}: who keeps the lighthouse?", f"Ahoy! {fact} ({i})")
            for i in range(start, start + n)]


def seed(store: Any, qa: list[tuple[str, str]], system: dict[str, str] = SYSTEM) -> list[str]:
    """Record each pair as a conversation whose answer the user accepted; returns answer ids."""
    ids = []
    for question, answer in qa:
        conv = store.new_conversation()
        store.add_message(conv, "user", question)
        prompt = [system, {"role": "user", "content": question}]
        mid = store.add_message(conv, "assistant", answer, prompt_messages=prompt)
        store.add_feedback(mid, "accepted")
        ids.append(mid)
    return ids


def make_adapter(folder: Any, model_dir: Any, seed: int = 1, num_layers: int = 2) -> Any:
    """A valid mlx-lm LoRA adapter for the model in `model_dir`, with random non-zero weights."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load

    from adapters.training import files
    from adapters.training.config import TrainConfig
    from adapters.training.train import adapter_config, prepare_model

    config = TrainConfig(num_layers=num_layers, seed=seed)
    model, _ = load(str(model_dir))
    prepare_model(model, config)
    weights = {k: mx.random.normal(v.shape) * 0.05 for k, v in tree_flatten(model.trainable_parameters())}
    folder.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(folder / "adapters.safetensors"), weights)
    files.write_json_atomic(folder / "adapter_config.json", adapter_config(config))
    return folder


def register(store: Any, model_dir: Any, base: Any, tmp: Any, promote: bool = True, seed: int = 1) -> str:
    """Put a (random) adapter through the registry as refresh would; returns its version."""
    from adapters.training import registry

    version = registry.begin(store, base, f"snap{seed}", 8, 2, {"rank": 8})
    src = make_adapter(tmp / f"src-{version}", model_dir, seed=seed)
    folder = registry.write_folder(version, src, {"base_model_id": base.id,
                                                  "base_checksum": base.checksum,
                                                  "message_ids": []})
    registry.record(store, version, folder, promote, "promote" if promote else "reject",
                    "test", {"candidate": {"personal_nll": 1.0}})
    return version


STAGES = ("copied", "renamed", "recorded")
"""Promotion stages a test can stall a child process at (then kill it with -9):
copied = the folder is complete under its temporary name; renamed = it is in place, the row
not yet updated; recorded = the row is updated, not yet made active."""


def stall_at(stage: str) -> None:
    """In a child process: stop at a promotion `stage` of adapters.training.registry, write
    `adapters/.paused-<stage>` (holding the pid) and wait there to be killed.

    Wraps the step that follows the stage, so production code carries no test hook."""
    import os
    import time

    from adapters.training import files, registry

    def wait() -> None:
        (registry.root() / f".paused-{stage}").write_text(str(os.getpid()))
        time.sleep(600)

    if stage == "copied":  # after the temporary folder is fsynced, before its rename
        fsync_tree = files.fsync_tree

        def synced(folder: Path) -> None:
            fsync_tree(folder)
            if folder.name.startswith(".tmp-"):
                wait()

        files.fsync_tree = synced  # type: ignore[assignment]
    elif stage == "renamed":  # after the folder is renamed into place
        write_folder = registry.write_folder

        def written(*args: Any, **kwargs: Any) -> Path:
            folder = write_folder(*args, **kwargs)
            wait()
            return folder

        registry.write_folder = written  # type: ignore[assignment]
    elif stage == "recorded":  # after the row is updated, before it is made active
        def activate(store: Any, version: str) -> None:
            wait()

        registry._activate_row = activate  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
