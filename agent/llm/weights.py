"""One loader and one LoRA hot-swap for everything that runs the model.

`load_model(path)` loads an mlx-lm model folder (one-line `ModelError` on failure); the chat
runtime (`agent.llm.runtime.Runtime.load`), the refresh (`adapters.jobs.refresh`) and
`hearth eval` all load through it. `apply_adapter(model, folder)` puts an mlx-lm LoRA
adapter folder on a loaded base with mlx-lm's tuner (`linear_to_lora_layers`, then the
weights), checked: LoRA only, exactly the tensors the model's LoRA layers expect, all finite;
`remove_adapter(model)` takes the LoRA layers off again (mlx-lm's `remove_lora_layers`), so
no swap reloads the base weights. `Runtime.set_adapter` and
`adapters.training.evaluate.use_adapter` are thin callers of these two.

It does not decide *which* adapter may be served (`adapters.training.registry.serve`
verifies manifests and the base binding first) and keeps no state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from agent.foundation import blas
from agent.foundation.errors import AdapterLoadError, ModelError

blas.ensure()  # before mlx is imported

import mlx.core as mx  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402
from mlx_lm.tuner.utils import linear_to_lora_layers, remove_lora_layers  # noqa: E402
from mlx_lm.utils import load as mlx_load  # noqa: E402


def load_model(path: Path | str) -> tuple[Any, Any]:
    """The model and tokenizer of the mlx-lm folder at `path`."""
    try:
        loaded = mlx_load(str(path))
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line
        raise ModelError(
            f"could not load the model at {path} ({type(exc).__name__}: {exc}); "
            "run `hearth models convert --force` or restore it"
        ) from exc
    return loaded[0], loaded[1]


def remove_adapter(model: Any) -> None:
    """Take any LoRA layers off `model` and freeze it (the bare base serves)."""
    remove_lora_layers(model)
    model.freeze()


def apply_adapter(model: Any, folder: Path) -> None:
    """Put the LoRA adapter in `folder` on the bare, frozen `model`; AdapterLoadError says why not.

    On failure the model may hold empty LoRA layers: call `remove_adapter` before serving.
    """
    folder = Path(folder)
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
        weights = cast("dict[str, mx.array]", mx.load(str(folder / "adapters.safetensors")))
    except (OSError, ValueError, RuntimeError) as exc:
        raise AdapterLoadError(f"adapter {folder.name} is unreadable ({exc}); roll back or delete it") from exc
    if not isinstance(config, dict) or config.get("fine_tune_type", "lora") != "lora":
        raise AdapterLoadError(f"adapter {folder.name}: only LoRA adapters are supported")
    try:
        linear_to_lora_layers(model, config["num_layers"], config["lora_parameters"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AdapterLoadError(f"adapter {folder.name} has an unusable config ({exc}); roll back") from exc
    expected = {str(k) for k, _ in cast("list[tuple[str, Any]]", tree_flatten(model.trainable_parameters()))}
    if not expected or set(weights) != expected:
        raise AdapterLoadError(
            f"adapter {folder.name} does not fit this model ({len(weights)} tensors for "
            f"{len(expected)} LoRA parameters); it was trained for another base"
        )
    if any(not bool(mx.all(mx.isfinite(v)).item()) for v in weights.values()):
        raise AdapterLoadError(f"adapter {folder.name} holds non-finite weights; roll back")
    model.load_weights(list(weights.items()), strict=False)
    mx.eval(model.parameters())
