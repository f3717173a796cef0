"""The fast decode path (fused, compiled step; cheap top-p; disk prefix cache; thread policy).

Greedy decoding through `FastDecoder` must give exactly mlx-lm's tokens (tiny model, with and
without compiling, across a 256-row bucket boundary, with a LoRA adapter; the bundled model
in one slow test). The sampler's nucleus must equal mlx-lm's. The prefix cache must survive a
new Runtime, be private, keyed and bounded. The thread policy is a pure function.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import mlx.core as mx
import pytest
from mlx_lm import stream_generate
from mlx_lm.sample_utils import apply_top_p, make_sampler

from agent.foundation import blas
from agent.llm import decode, decoding, prompt_cache, sampler
from agent.llm.models import ModelRef
from agent.llm.runtime import Runtime, SamplingOptions
from tests.conftest import write_lora_adapter

SYSTEM = "You are a careful assistant. " * 6
MSGS = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say something."}]


def mlx_lm_greedy(rt: Runtime, tokens: list[int], n: int, penalty: float = 1.0) -> list[int]:
    processors = decoding.logits_processors(SamplingOptions(repetition_penalty=penalty))
    out = [r.token for r in stream_generate(rt.model, rt.tokenizer, mx.array(tokens),
                                            max_tokens=n, sampler=make_sampler(temp=0.0),
                                            logits_processors=processors)]
    return out


def ours_greedy(rt: Runtime, tokens: list[int], n: int, penalty: float = 1.0) -> list[int]:
    rt.reset_cache()
    options = SamplingOptions(temperature=0.0, max_tokens=n, repetition_penalty=penalty)
    events = list(rt.stream_tokens(tokens, options))
    return [e.token for e in events[:-1] if e.token is not None]


def same(ours: list[int], want: list[int]) -> None:
    """Our stream drops a last token whose text is still buffered; otherwise identical."""
    assert len(ours) >= len(want) - 1
    assert ours == want[: len(ours)]


def no_eos(rt: Runtime) -> None:
    rt.tokenizer._eos_token_ids = set()  # random weights: decode the full length


@pytest.fixture
def fresh(tiny_model_dir: Path) -> Runtime:
    rt = Runtime.load(ModelRef("tiny", tiny_model_dir, "tiny-checksum"))
    no_eos(rt)
    return rt


def test_compiled_greedy_equals_mlx_lm_across_a_bucket(fresh: Runtime) -> None:
    assert fresh.decoder is not None
    tokens = fresh.prompt_tokens(MSGS)
    tokens = (tokens * (240 // len(tokens) + 1))[:240]  # decoding crosses row 256
    want = mlx_lm_greedy(fresh, tokens, 40)
    assert len(want) == 40
    same(ours_greedy(fresh, tokens, 40), want)
    assert fresh.decoder.compiled == decode.compile_available()


def test_the_answer_repetition_penalty_runs_in_the_fast_path_as_in_mlx_lm(fresh: Runtime) -> None:
    """The chat's default penalty (answer-only, windowed) changes the tokens the same way in
    the compiled path as mlx-lm's own loop with the same processor."""
    assert fresh.decoder is not None
    tokens = fresh.prompt_tokens(MSGS)
    plain = mlx_lm_greedy(fresh, tokens, 40)
    want = mlx_lm_greedy(fresh, tokens, 40, penalty=1.5)
    assert want != plain  # the penalty does something on this model, so the check can fail
    same(ours_greedy(fresh, tokens, 40, penalty=1.5), want)


def test_uncompiled_and_failed_compile_fall_back_to_the_same_tokens(fresh: Runtime) -> None:
    assert fresh.decoder is not None
    tokens = fresh.prompt_tokens(MSGS)
    want = mlx_lm_greedy(fresh, tokens, 20)
    fresh.decoder.want_compiled = False
    same(ours_greedy(fresh, tokens, 20), want)

    def broken(*args: object) -> object:
        raise RuntimeError("g++: command not found")

    fresh.decoder.want_compiled = True
    fresh.decoder._compiled = broken
    same(ours_greedy(fresh, tokens, 20), want)
    assert fresh.decoder.compile_error is not None and "g++" in fresh.decoder.compile_error
    assert not fresh.decoder.compiled


def test_compile_is_skipped_without_a_compiler_or_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode.shutil, "which", lambda name: None)
    assert not decode.compile_available()
    monkeypatch.setattr(decode.shutil, "which", lambda name: "/usr/bin/g++")
    assert decode.compile_available()
    monkeypatch.setenv("HEARTH_COMPILE", "0")
    assert not decode.compile_available()


def test_fast_path_with_a_lora_adapter_equals_mlx_lm(fresh: Runtime, tiny_model_dir: Path, tmp_path: Path) -> None:
    adapter = write_lora_adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    fresh.set_adapter(adapter)
    tokens = fresh.prompt_tokens(MSGS)
    want = mlx_lm_greedy(fresh, tokens, 20)
    fresh.set_adapter(None)
    base = mlx_lm_greedy(fresh, tokens, 20)
    assert want != base  # the adapter changes the answer...
    fresh.set_adapter(adapter)
    same(ours_greedy(fresh, tokens, 20), want)  # ...and the fast path serves it exactly


def test_unsupported_models_use_mlx_lm_and_penalties_stay_fast(
        tiny_model_dir: Path, fresh: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = Runtime.load(ModelRef("tiny", tiny_model_dir, "x"), fast=False)
    assert rt.decoder is None
    events = list(rt.stream(MSGS, SamplingOptions(temperature=0.0, max_tokens=5)))
    assert events[-1].finish_reason in ("stop", "length")

    used: list[bool] = []
    fast = fresh._fast_generate

    def spy(*args: object, **kwargs: object) -> object:
        used.append(True)
        return fast(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fresh, "_fast_generate", spy)
    events = list(fresh.stream(MSGS, SamplingOptions(temperature=0.0, max_tokens=5, repetition_penalty=1.2)))
    assert events[-1].generated_tokens >= 4
    assert used == [True]  # the chat's default penalty does not push decoding off the fast path


@pytest.mark.parametrize("scale", [0.5, 2.0, 6.0])
def test_nucleus_equals_mlx_lm_top_p(scale: float) -> None:
    mx.random.seed(int(scale * 10))
    logits = mx.random.normal((1, 49152)) * scale
    logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    theirs = apply_top_p(logprobs, 0.9)
    want = {i for i, ok in enumerate(mx.isfinite(theirs)[0].tolist()) if ok}
    for k in (1024, 49152):
        idx, vals = sampler.nucleus(logprobs, 0.9, k=k)
        got = {i for i, v in zip(idx[0].tolist(), vals[0].tolist(), strict=True) if v != float("-inf")}
        if len(want) <= k:
            assert got == want  # exact whenever the candidates hold the nucleus
        else:  # a flat distribution: capped at the k most likely tokens
            top = set(mx.argsort(-logprobs[0])[:k].tolist())
            assert got == top


def test_fast_sampler_draws_inside_the_nucleus_reproducibly() -> None:
    mx.random.seed(3)
    logits = mx.random.normal((1, 49152)) * 5
    logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    allowed = {i for i, ok in enumerate(mx.isfinite(apply_top_p(logprobs, 0.5))[0].tolist()) if ok}
    sample = sampler.make_sampler(1.0, 0.5)
    mx.random.seed(7)
    first = [int(sample(logprobs).item()) for _ in range(30)]
    mx.random.seed(7)
    again = [int(sample(logprobs).item()) for _ in range(30)]
    assert first == again
    assert set(first) <= allowed and len(set(first)) > 1
    assert int(sampler.make_sampler(0.0, 0.9)(logprobs).item()) == int(mx.argmax(logprobs).item())


# disk prefix cache ----------------------------------------------------------------------
def test_stable_prefix_is_reused_from_disk_by_a_new_runtime(tiny_model_dir: Path, hearth_home: Path) -> None:
    ref = ModelRef("tiny", tiny_model_dir, "tiny-checksum")
    rt = Runtime.load(ref)
    no_eos(rt)
    opts = SamplingOptions(temperature=0.0, max_tokens=8)
    first = list(rt.stream(MSGS, opts))
    assert first[-1].cached_tokens == 0
    stable = rt.stable_prefix(MSGS, None, rt.prompt_tokens(MSGS))
    assert stable >= prompt_cache.MIN_TOKENS
    files = list((hearth_home / "cache" / "prompt-cache").glob("*.safetensors"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700

    other = [MSGS[0], {"role": "user", "content": "A different question entirely."}]
    rt2 = Runtime.load(ref)  # as after a restart
    no_eos(rt2)
    events = list(rt2.stream(other, opts))
    assert events[-1].cached_tokens == stable
    cold = Runtime.load(ref, prefix_store=prompt_cache.PrefixStore(hearth_home / "empty"))
    no_eos(cold)
    want = [e.token for e in cold.stream(other, opts)][:-1]
    assert [e.token for e in events][:-1] == want  # the reused cache answers identically
    assert cold.stable_prefix(other, None, cold.prompt_tokens(other)) == stable


def test_prefix_key_changes_with_model_adapter_and_prompt(tmp_path: Path) -> None:
    key = prompt_cache.cache_key("m1", "base", [1, 2, 3])
    assert key == prompt_cache.cache_key("m1", "base", [1, 2, 3])
    assert key != prompt_cache.cache_key("m2", "base", [1, 2, 3])
    assert key != prompt_cache.cache_key("m1", "base", [1, 2, 4])
    adapter = tmp_path / "v1"
    adapter.mkdir()
    (adapter / "adapters.safetensors").write_bytes(b"x" * 10)
    ident = prompt_cache.adapter_identity(adapter)
    assert key != prompt_cache.cache_key("m1", ident, [1, 2, 3])
    (adapter / "adapters.safetensors").write_bytes(b"y" * 11)
    assert prompt_cache.adapter_identity(adapter) != ident


def test_damaged_prefix_file_is_dropped_and_folder_is_bounded(tiny_runtime: Runtime, tmp_path: Path) -> None:
    store = prompt_cache.PrefixStore(tmp_path / "pc", max_bytes=1)
    (tmp_path / "pc").mkdir()
    bad = tmp_path / "pc" / "k1.safetensors"
    bad.write_bytes(b"not a cache")
    assert store.load("k1", 10) is None and not bad.exists()
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(tiny_runtime.model)
    tiny_runtime.model(mx.array([list(range(40))]), cache=cache)
    first = store.save("a", cache, 30)
    second = store.save("b", cache, 30)
    assert first is not None and second is not None
    assert not first.exists() and second.exists()  # over the bound: the older one goes
    loaded = store.load("b", 30)
    assert loaded is not None and loaded[0].offset == 30
    assert mx.allclose(loaded[0].keys, cache[0].keys[..., :30, :]).item()
    assert store.load("b", 31) is None  # wrong length: not trusted


# thread policy -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cpus", "load", "refresh", "role", "chatting", "want"),
    [
        (2, 0.0, False, "chat", False, 2),   # idle machine: both cores
        (2, 1.0, False, "chat", False, 1),   # one core taken: the other
        (2, 3.5, False, "chat", False, 1),   # overloaded: still one
        (2, 0.0, True, "chat", False, 1),    # a refresh trains: one
        (8, 2.6, False, "chat", False, 5),
        (2, 0.0, False, "refresh", False, 2),  # nobody chats: the refresh uses free cores
        (2, 0.0, False, "refresh", True, 1),   # someone chats: one
        (2, 1.2, False, "refresh", False, 1),
        (1, 0.0, False, "chat", False, 1),
        (2, float("nan"), False, "chat", False, 1),
    ],
)
def test_choose_threads(cpus: int, load: float, refresh: bool, role: str, chatting: bool, want: int) -> None:
    assert blas.choose_threads(cpus, load, refresh_running=refresh, role=role, chat_active=chatting) == want


def test_refresh_and_chat_flags(tmp_path: Path) -> None:
    assert not blas.refresh_running(tmp_path) and not blas.chat_active(tmp_path)
    with blas.refresh_flag(tmp_path) as flag:
        assert stat.S_IMODE(flag.stat().st_mode) == 0o600
        assert blas.is_refresh_worker(tmp_path)
        assert not blas.refresh_running(tmp_path)  # our own flag is not "another" refresh
        flag.write_text(str(os.getppid()))  # as seen from another process
        assert blas.refresh_running(tmp_path)
        flag.write_text(str(os.getpid()))
    assert not flag.exists()
    (tmp_path / "refresh.running").write_text("999999999")  # a dead worker's leftover
    assert not blas.refresh_running(tmp_path)
    blas.touch_chat_active(tmp_path)
    assert blas.chat_active(tmp_path) and not blas.chat_active(tmp_path, within_s=-1)


def test_runtime_sets_blas_threads_by_policy(tiny_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[int] = []
    monkeypatch.setattr(blas, "set_threads", lambda n: chosen.append(n) or 2)
    monkeypatch.setattr(blas, "busy_cpus", lambda: 5.0)
    list(tiny_runtime.stream(MSGS, SamplingOptions(temperature=0.0, max_tokens=2)))
    monkeypatch.setattr(blas, "busy_cpus", lambda: 0.0)
    monkeypatch.setattr(blas, "refresh_running", lambda: True)
    list(tiny_runtime.stream(MSGS, SamplingOptions(temperature=0.0, max_tokens=2)))
    assert chosen == [1, 1]
    assert tiny_runtime.threads == 1


def test_prefill_takes_the_free_cores_and_decode_one_thread(
    tiny_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tiny_runtime.decoder is not None
    chosen: list[int] = []
    monkeypatch.setattr(blas, "set_threads", lambda n: chosen.append(n) or 2)
    monkeypatch.setattr(blas, "busy_cpus", lambda: 0.0)
    monkeypatch.setattr(blas, "refresh_running", lambda: False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    list(tiny_runtime.stream(MSGS, SamplingOptions(temperature=0.0, max_tokens=3)))
    assert chosen == [2, blas.DECODE_THREADS]
    assert (tiny_runtime.threads, tiny_runtime.decode_threads) == (2, 1)


@pytest.mark.slow
def test_bundled_model_compiled_greedy_equals_mlx_lm(bundled_model_dir: Path) -> None:
    rt = Runtime.load(ModelRef("smollm2", bundled_model_dir, "x"))
    assert rt.decoder is not None
    tokens = rt.prompt_tokens([{"role": "user", "content": "What is the capital of France?"}])
    want = [t for t in mlx_lm_greedy(rt, tokens, 24) if t not in rt.tokenizer.eos_token_ids]
    ours = ours_greedy(rt, tokens, 24)
    assert ours == want
    assert "Paris" in rt.tokenizer.decode(ours)
