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

from agent.foundation import blas  # noqa: E402

blas.ensure()  # before anything imports mlx


@pytest.fixture(autouse=True)
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    yield home


@pytest.fixture
def guard() -> Iterator[None]:
    """The offline guard on for one test (attempts cleared), restored afterwards."""
    from agent.foundation import offline

    was_on = offline.is_enabled()
    offline.enable()
    offline.attempts.clear()
    yield
    offline.attempts.clear()
    if not was_on:
        offline.disable()


@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled SmolLM2 converted to an mlx-lm float32 folder, once per test session."""
    from agent.llm import convert

    out = tmp_path_factory.mktemp("models") / "smollm2-f32"
    return convert.convert_gguf(convert.bundled_gguf(), out, model_id=convert.BUNDLED_ID)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (2 layers, hidden 64) with the real SmolLM2 tokenizer: fast tests."""
    import json

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    from agent.llm import convert
    from agent.llm.gguf_tokenizer import save_tokenizer

    out = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    out.mkdir()
    _, meta = mx.load(str(convert.bundled_gguf()), return_metadata=True)
    save_tokenizer(meta, out)
    config = {
        "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": 49152,
        "max_position_embeddings": 512, "tie_word_embeddings": True,
    }
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.eval(model.parameters())
    mx.save_safetensors(str(out / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture
def tiny_runtime(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime

    return Runtime.load(ModelRef("tiny", tiny_model_dir, "tiny-checksum"))


def write_lora_adapter(model_dir: Path, folder: Path, seed: int, num_layers: int = 2) -> Path:
    """Write an mlx-lm LoRA adapter (random, non-zero B) for the model in `model_dir`."""
    import json

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model

    donor, _ = load_model(model_dir)
    donor.freeze()
    params = {"rank": 4, "scale": 20.0, "dropout": 0.0}
    linear_to_lora_layers(donor, num_layers, params)
    mx.random.seed(seed)
    weights = {k: mx.random.normal(v.shape) * 0.05 for k, v in tree_flatten(donor.trainable_parameters())}
    folder.mkdir(parents=True)
    mx.save_safetensors(str(folder / "adapters.safetensors"), weights)
    (folder / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": num_layers, "lora_parameters": params})
    )
    return folder
