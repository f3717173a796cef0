"""A faster decode step for Llama-family mlx-lm models (one token at a time, batch 1).

mlx-lm's decode runs each layer as ~25 separate MLX ops with seven matrix-vector products
and a KV cache that grows by slicing (a new shape every token, so it cannot be compiled).
`FastDecoder` instead:

- fuses the projections mlx-lm leaves apart: q/k/v become one 576->960 product and gate/up
  one 576->3072 product per layer (the original `Linear` weights become row views of the
  fused matrices, so no memory is added and prefill/LoRA still use them);
- keeps mlx-lm's own `KVCache` objects but writes the new row at a position given as an
  *array* and attends over the whole 256-row-aligned buffer with a mask, so every token of a
  256-token bucket has the same shapes and one `mx.compile`d step serves them all (on the
  CPU backend MLX JIT-compiles fused element-wise kernels with the system C++ compiler);
- adds LoRA deltas (mlx-lm tuner `LoRALinear`) on top of the fused products, so a served
  adapter keeps the fast path.

Measured and left out: computing the 49152x576 output projection as two halves on two CPU
streams (so both cores read it) took it from 7.6 to 3.9 ms alone, but a whole decode went
from 20.3 to 20.5 tok/s; splitting the per-layer products gained nothing either.

`compile_available()` says whether compiling is worth trying (`HEARTH_COMPILE=0` turns it
off; without `g++` MLX would run the graph unfused anyway); a step whose compilation fails
falls back to the same function uncompiled. `FastDecoder.supports()` says whether a model
has the shape this understands; the runtime uses mlx-lm's `stream_generate` otherwise.

It does not prefill prompts (mlx-lm does), sample, detokenize or manage threads.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import mlx.core as mx  # the runtime imported agent.foundation.blas first
import mlx.nn as nn
from mlx_lm.models.cache import KVCache
from mlx_lm.tuner.lora import LoRALinear

STEP = KVCache.step  # buffers grow in 256-row buckets, like mlx-lm's KVCache


def bucket(offset: int) -> int:
    """Buffer rows for decoding at position `offset`: the next multiple of 256 above it."""
    return (offset // STEP + 1) * STEP


def compile_available() -> bool:
    """True when compiling the decode step should be tried here."""
    if os.environ.get("HEARTH_COMPILE", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    # MLX's CPU backend fuses kernels with g++; without one there is nothing to gain
    return not (mx.default_device() == mx.cpu and shutil.which("g++") is None)


def _base(module: Any) -> Any:
    return module.linear if isinstance(module, LoRALinear) else module


def _lora_delta(module: Any, x: mx.array) -> mx.array | None:
    if not isinstance(module, LoRALinear):
        return None
    z = (module.dropout(x) @ module.lora_a) @ module.lora_b
    return (module.scale * z).astype(x.dtype)


class FastDecoder:
    """One-token decode steps for a Llama-family model, sharing mlx-lm's KV caches."""

    def __init__(self, model: nn.Module, compiled: bool = True):
        self.model = model
        self.inner = model.model
        attn = self.inner.layers[0].self_attn
        self.n_heads, self.n_kv = attn.n_heads, attn.n_kv_heads
        self.head_dim = attn.q_proj.weight.shape[0] // attn.n_heads
        self.hidden = self.inner.layers[0].mlp.down_proj.weight.shape[1]
        self._fused: list[tuple[mx.array, mx.array]] = []
        self._fuse()
        self.want_compiled = compiled
        self._compiled: Callable[..., Any] | None = None
        self.compile_error: str | None = None

    # which models ---------------------------------------------------------------
    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Llama-style blocks with bias-free float Linear layers and plain RoPE."""
        inner = getattr(model, "model", None)
        layers = getattr(inner, "layers", None)
        if not layers or getattr(model, "model_type", None) not in ("llama", "mistral"):
            return False
        if getattr(inner, "swa_idx", None) is not None:
            return False  # sliding-window layers
        for layer in layers:
            attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
            if attn is None or mlp is None or not isinstance(getattr(attn, "rope", None), nn.RoPE):
                return False
            names = ("q_proj", "k_proj", "v_proj", "o_proj")
            mods = [getattr(attn, n, None) for n in names]
            mods += [getattr(mlp, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
            for mod in mods:
                base = _base(mod)
                if type(base) is not nn.Linear or "bias" in base:
                    return False
        return True

    def _fuse(self) -> None:
        """Concatenate q/k/v and gate/up; the originals become views of the fused rows."""
        self._fused = []
        for layer in self.inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            q, k, v = _base(attn.q_proj), _base(attn.k_proj), _base(attn.v_proj)
            gate, up = _base(mlp.gate_proj), _base(mlp.up_proj)
            wqkv = mx.concatenate([q.weight, k.weight, v.weight])
            wgu = mx.concatenate([gate.weight, up.weight])
            mx.eval(wqkv, wgu)
            nq, nk = q.weight.shape[0], k.weight.shape[0]
            q.weight, k.weight, v.weight = wqkv[:nq], wqkv[nq : nq + nk], wqkv[nq + nk :]
            ng = gate.weight.shape[0]
            gate.weight, up.weight = wgu[:ng], wgu[ng:]
            self._fused.append((wqkv, wgu))
        mx.eval(self.model.parameters())
        mx.clear_cache()  # the unfused originals' buffers: give them back, not keep them pooled

    # the step ---------------------------------------------------------------------
    def _step(self, token: mx.array, offset: mx.array, keys: list[mx.array],
              values: list[mx.array]) -> tuple[mx.array, list[mx.array], list[mx.array]]:
        """Logits for `token` at position `offset`; KV rows written into the buffers."""
        inner = self.inner
        h = inner.embed_tokens(token.reshape(1, 1))
        nq, nk = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        mask = mx.arange(keys[0].shape[2]) <= offset
        start = offset.reshape(1)
        new_k, new_v = [], []
        for layer, (wqkv, wgu), kbuf, vbuf in zip(inner.layers, self._fused, keys, values, strict=True):
            attn, mlp = layer.self_attn, layer.mlp
            x = layer.input_layernorm(h)
            qkv = x @ wqkv.T
            q, k, v = qkv[..., :nq], qkv[..., nq : nq + nk], qkv[..., nq + nk :]
            for name, part in (("q", 0), ("k", 1), ("v", 2)):
                delta = _lora_delta(getattr(attn, f"{name}_proj"), x)
                if delta is not None:
                    if part == 0:
                        q = q + delta
                    elif part == 1:
                        k = k + delta
                    else:
                        v = v + delta
            q = attn.rope(q.reshape(1, 1, self.n_heads, -1).transpose(0, 2, 1, 3), offset=offset)
            k = attn.rope(k.reshape(1, 1, self.n_kv, -1).transpose(0, 2, 1, 3), offset=offset)
            v = v.reshape(1, 1, self.n_kv, -1).transpose(0, 2, 1, 3)
            kbuf = mx.slice_update(kbuf, k, start, axes=(2,))
            vbuf = mx.slice_update(vbuf, v, start, axes=(2,))
            o = mx.fast.scaled_dot_product_attention(q, kbuf, vbuf, scale=attn.scale, mask=mask)
            h = h + attn.o_proj(o.transpose(0, 2, 1, 3).reshape(1, 1, -1))
            x = layer.post_attention_layernorm(h)
            gu = x @ wgu.T
            ng = gu.shape[-1] // 2
            g, u = gu[..., :ng], gu[..., ng:]
            dg, du = _lora_delta(mlp.gate_proj, x), _lora_delta(mlp.up_proj, x)
            if dg is not None:
                g = g + dg
            if du is not None:
                u = u + du
            h = h + mlp.down_proj(nn.silu(g) * u)
            new_k.append(kbuf)
            new_v.append(vbuf)
        h = inner.norm(h)
        if getattr(self.model.args, "tie_word_embeddings", True):
            logits = inner.embed_tokens.as_linear(h)
        else:
            logits = self.model.lm_head(h)
        return logits[:, -1, :], new_k, new_v

    def reset(self) -> None:
        """Forget the compiled step (after the model's modules changed, e.g. LoRA swapped)."""
        self._compiled = None

    @property
    def compiled(self) -> bool:
        return self.want_compiled and self.compile_error is None

    def _fn(self) -> Callable[..., Any]:
        if not self.compiled:
            return self._step
        if self._compiled is None:
            # The weights are captured as constants of the traced graph: flattening the
            # model's ~300 parameters on every call (`inputs=model.state`) cost as much as
            # the graph building that compiling saves. `reset()` retraces after a change.
            self._compiled = mx.compile(self._step)
        return self._compiled

    def step(self, token: mx.array, cache: list[Any]) -> mx.array:
        """Feed one token (an int32 array of size 1), advance `cache`; lazy logits (1, vocab)."""
        first = cache[0]
        if first.keys is None:
            raise ValueError("the cache must hold the prefilled prompt before decoding")
        if first.keys.shape[2] != bucket(first.offset):
            self._ensure_room(cache)
        offset = mx.array(first.offset, dtype=mx.int32)
        keys = [c.keys for c in cache]
        values = [c.values for c in cache]
        try:
            logits, new_k, new_v = self._fn()(token, offset, keys, values)
        except Exception as exc:  # a compiler missing/failing: run the same graph unfused
            if not self.compiled:
                raise
            self.compile_error = f"{type(exc).__name__}: {exc}"
            self._compiled = None
            logits, new_k, new_v = self._step(token, offset, keys, values)
        for c, k, v in zip(cache, new_k, new_v, strict=True):
            c.keys, c.values = k, v
            c.offset += 1
        return logits

    @staticmethod
    def _ensure_room(cache: list[Any]) -> None:
        """Re-allocate the buffers to `bucket(offset)` rows (room for the next token).

        The step attends over the whole buffer, so its cost follows the buffer's size, not
        the conversation's: mlx-lm's prefill can leave a larger or unaligned buffer (after
        a trim), and aligned sizes keep the compiled shapes few (one per 256 tokens).
        """
        for c in cache:
            cap = bucket(c.offset)
            keep_k, keep_v = c.keys[..., : c.offset, :], c.values[..., : c.offset, :]
            b, h, _, dk = keep_k.shape
            dv = keep_v.shape[3]
            pad = cap - c.offset
            c.keys = mx.concatenate([keep_k, mx.zeros((b, h, pad, dk), keep_k.dtype)], axis=2)
            c.values = mx.concatenate([keep_v, mx.zeros((b, h, pad, dv), keep_v.dtype)], axis=2)
        mx.eval([c.keys for c in cache], [c.values for c in cache])
