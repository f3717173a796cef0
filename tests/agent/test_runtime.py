"""Runtime behaviour on a tiny random model: streaming, stops, cancel, cache reuse, adapters."""

from __future__ import annotations

import threading
from pathlib import Path

import mlx.core as mx
import pytest

from agent.foundation.errors import AdapterLoadError
from agent.llm.runtime import Runtime, SamplingOptions

GREEDY = SamplingOptions(temperature=0.0, max_tokens=12)
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say something."}]


def run(rt: Runtime, msgs: list[dict[str, str]], opts: SamplingOptions = GREEDY, cancel=None):  # type: ignore[no-untyped-def]
    events = list(rt.stream(msgs, opts, cancel))
    return events[:-1], events[-1]


def test_streams_typed_events_that_add_up(tiny_runtime: Runtime) -> None:
    tokens, final = run(tiny_runtime, MSGS)
    assert final.finish_reason in ("length", "stop")
    assert final.token is None and final.text == ""
    ids = [e.token for e in tokens]
    assert len(ids) == final.generated_tokens
    # the streaming detokenizer drops the answer's leading space, nothing else
    assert "".join(e.text for e in tokens) == tiny_runtime.tokenizer.decode(ids).lstrip(" ")
    assert [e.generated_tokens for e in tokens] == list(range(1, len(tokens) + 1))
    assert all(e.prompt_tokens == len(tiny_runtime.prompt_tokens(MSGS)) for e in tokens)


def test_stops_on_end_of_turn_token(tiny_model_dir: Path) -> None:
    from agent.llm.models import ModelRef

    sampled = SamplingOptions(temperature=1.0, top_p=1.0, max_tokens=20, seed=3)
    rt = Runtime.load(ModelRef("tiny", tiny_model_dir, "x"))
    tokens, final = run(rt, MSGS, sampled)
    assert final.finish_reason == "length"
    ids = [e.token for e in tokens]
    stop_at = next(i for i in range(2, len(ids)) if ids[i] not in ids[:i])
    rt2 = Runtime.load(ModelRef("tiny", tiny_model_dir, "x"))
    rt2.tokenizer.add_eos_token(ids[stop_at])  # as if it were <|im_end|>
    tokens2, final2 = run(rt2, MSGS, sampled)
    assert final2.finish_reason == "stop"
    assert [e.token for e in tokens2] == ids[:stop_at]
    assert final2.generated_tokens == stop_at


def test_cancel_keeps_partial_text_and_cache_stays_consistent(tiny_runtime: Runtime) -> None:
    cancel = threading.Event()
    seen = []
    for ev in tiny_runtime.stream(MSGS, SamplingOptions(temperature=0.0, max_tokens=50), cancel):
        seen.append(ev)
        if ev.generated_tokens == 3:
            cancel.set()
    final = seen[-1]
    assert final.finish_reason == "cancelled"
    assert final.generated_tokens == 3
    assert len(seen) == 4
    # the next turn after a cancel answers exactly as a fresh runtime would
    follow = [*MSGS, {"role": "assistant", "content": "".join(e.text for e in seen)},
              {"role": "user", "content": "Go on."}]
    warm, _ = run(tiny_runtime, follow)
    tiny_runtime.reset_cache()
    cold, _ = run(tiny_runtime, follow)
    assert [e.token for e in warm] == [e.token for e in cold]


def test_second_turn_reuses_prompt_cache(tiny_runtime: Runtime) -> None:
    tokens, _ = run(tiny_runtime, MSGS)
    answer = "".join(e.text for e in tokens)
    turn2 = [*MSGS, {"role": "assistant", "content": answer}, {"role": "user", "content": "More?"}]
    warm, warm_final = run(tiny_runtime, turn2)
    first_prompt = len(tiny_runtime.prompt_tokens(MSGS))
    assert warm_final.cached_tokens >= first_prompt
    tiny_runtime.reset_cache()
    cold, cold_final = run(tiny_runtime, turn2)
    assert cold_final.cached_tokens == 0
    assert [e.token for e in warm] == [e.token for e in cold]


def test_seeded_sampling_is_reproducible(tiny_runtime: Runtime) -> None:
    opts = SamplingOptions(temperature=1.0, top_p=0.95, max_tokens=10, seed=7)
    a, _ = run(tiny_runtime, MSGS, opts)
    tiny_runtime.reset_cache()
    b, _ = run(tiny_runtime, MSGS, opts)
    assert [e.token for e in a] == [e.token for e in b]


def make_adapter(rt: Runtime, folder: Path, seed: int) -> Path:
    from tests.conftest import write_lora_adapter

    return write_lora_adapter(rt.ref.path, folder, seed)


def logits(rt: Runtime) -> mx.array:
    ids = mx.array([rt.prompt_tokens(MSGS)])
    return rt.model(ids)[0, -1]


def test_adapter_swaps_without_reloading_base(tiny_runtime: Runtime, tmp_path: Path) -> None:
    base = logits(tiny_runtime)
    base_weight = tiny_runtime.model.model.layers[0].self_attn.q_proj.weight
    a = make_adapter(tiny_runtime, tmp_path / "a", 1)
    b = make_adapter(tiny_runtime, tmp_path / "b", 2)
    tiny_runtime.set_adapter(a)
    with_a = logits(tiny_runtime)
    tiny_runtime.set_adapter(b)
    with_b = logits(tiny_runtime)
    assert not mx.allclose(base, with_a, atol=1e-4).item()
    assert not mx.allclose(with_a, with_b, atol=1e-4).item()
    tiny_runtime.set_adapter(None)
    assert mx.allclose(base, logits(tiny_runtime), atol=1e-5).item()
    assert tiny_runtime.model.model.layers[0].self_attn.q_proj.weight is base_weight


def test_corrupt_adapter_is_refused_and_previous_keeps_serving(tiny_runtime: Runtime, tmp_path: Path) -> None:
    good = make_adapter(tiny_runtime, tmp_path / "good", 1)
    tiny_runtime.set_adapter(good)
    served = logits(tiny_runtime)
    bad = make_adapter(tiny_runtime, tmp_path / "bad", 2)
    data = (bad / "adapters.safetensors").read_bytes()
    (bad / "adapters.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(AdapterLoadError):
        tiny_runtime.set_adapter(bad)
    assert tiny_runtime.adapter_path == good
    assert mx.allclose(served, logits(tiny_runtime), atol=1e-5).item()


def test_abandoned_stream_keeps_the_cache_reusable(tiny_runtime: Runtime) -> None:
    for _ in tiny_runtime.stream(MSGS, SamplingOptions(temperature=0.0, max_tokens=20)):
        break  # the consumer walks away after the first token
    again, final = run(tiny_runtime, MSGS)
    assert final.cached_tokens >= len(tiny_runtime.prompt_tokens(MSGS)) - 1
    tiny_runtime.reset_cache()
    cold, _ = run(tiny_runtime, MSGS)
    assert [e.token for e in again] == [e.token for e in cold]
