"""Rebuild a Hugging Face tokenizer (tokenizer.json + config) from GGUF metadata.

Supports the byte-level BPE (`tokenizer.ggml.model == "gpt2"`) that SmolLM2 and most
Llama-architecture GGUFs use. The pre-tokenizer for `tokenizer.ggml.pre == "smollm"` splits
digits individually before the GPT-2 byte-level regex, as the original SmolLM2 tokenizer does.
It does not support SentencePiece (`llama`) vocabularies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from agent.foundation.errors import ModelError

CONTROL_TOKEN = 3


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def build_tokenizer(meta: dict[str, Any]) -> Tokenizer:
    """A `tokenizers.Tokenizer` equivalent to the one the GGUF was made from."""
    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ModelError(f"unsupported GGUF tokenizer model {kind!r}: only byte-level BPE (gpt2)")
    tokens = [_text(t) for t in meta["tokenizer.ggml.tokens"]]
    merges = cast("list[tuple[str, str]]",
                  [tuple(_text(m).split(" ", 1)) for m in meta["tokenizer.ggml.merges"]])
    vocab = {tok: i for i, tok in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False)
    tok = Tokenizer(bpe)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if meta.get("tokenizer.ggml.pre") == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    types = [int(t) for t in meta.get("tokenizer.ggml.token_type", [])]
    special = [tokens[i] for i, t in enumerate(types) if t == CONTROL_TOKEN]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
    return tok


def tokenizer_config(meta: dict[str, Any]) -> dict[str, Any]:
    """tokenizer_config.json content: special tokens and the chat template from the GGUF."""
    tokens = meta["tokenizer.ggml.tokens"]

    def token(key: str) -> str | None:
        idx = meta.get(f"tokenizer.ggml.{key}_token_id")
        return None if idx is None else _text(tokens[int(idx)])

    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "unk_token": token("unknown"),
        "pad_token": token("padding") or token("eos"),
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(meta.get("llama.context_length", 2048)),
        "chat_template": _text(meta.get("tokenizer.chat_template", "")) or None,
    }


def save_tokenizer(meta: dict[str, Any], out_dir: Path) -> Tokenizer:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
    tok = build_tokenizer(meta)
    tok.save(str(out_dir / "tokenizer.json"))
    config = tokenizer_config(meta)
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    return tok
