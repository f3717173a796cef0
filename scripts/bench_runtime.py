"""Runtime benchmark on the bundled model: prints `name: value` lines, measured side by side.

  decode_ratio             chat-path decode tok/s / bare mlx_lm.stream_generate, same greedy
                           sampler, same process, interleaved rounds                    (goal >= 1.5)
  decode_ratio_same_threads  the same, the bare run given the chat's decode BLAS thread count
  ttft_first_turn_s        first turn of a new conversation (system prompt, an example,
                           four notes, a question) in a fresh cache, the stable prefix on disk
                           from an earlier conversation                                  (goal <= 1.0)
  ttft_first_turn_nocache_s  the same with no prefix file (first run after a prompt change)
  ttft_ratio               follow-up turn's time to first token / the same prompt cold  (goal <= 0.25)
  decode_under_load_ratio  chat decode beside a CPU-bound process the benchmark starts and
                           stops itself / chat decode alone                              (goal >= 0.45)
  bare_under_load_ratio    the same for bare mlx-lm (library-default threads)
  decode_tps, bare_decode_tps, decode_cpu_ms_per_token, peak_rss_mb               (rss goal <= 1500)
  first_launch_peak_rss_mb  a fresh process converting the bundled model, then loading it (rss goal too)
  sample_ms_*              what sampling one token costs (top-p over the 49k vocabulary)
  step_ms_* / breakdown_*  where one decode token's CPU time goes
  decode_vs_llamacpp       only when llama-cpp-python is installed (benchmark-only extra)

Timings here swing x2 with the machine's load, so every ratio comes from one run and the load
average is printed first and last. It uses only `Runtime.load/stream/reset_cache` (and
optional attributes), so the same script measures older code (PYTHONPATH=<old checkout>).

Usage: .venv/bin/python scripts/bench_runtime.py [--rounds 3] [--tokens 64] [--blas]
       HEARTH_BENCH_CODE=/path/to/other/checkout ... (measure that checkout's runtime)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("HEARTH_BENCH_CODE") or str(Path(__file__).resolve().parent.parent))

from agent.foundation import blas  # noqa: E402

PREFILL_TEXT = " ".join(["The history of the city is long and full of stories about people."] * 16)
STORY = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper."}]
NOTES = [
    ("note 2026-11-02", "My sister Ana lives in Porto and her birthday is on the 14th of March."),
    ("notes/garden.md", "The garden gets morning sun. Lavender and thyme did well last summer; "
                        "the tomatoes caught blight in August after a wet week."),
    ("note 2026-10-19", "I am allergic to penicillin. My doctor is Dr. Okafor at the Elm Street practice."),
    ("conversation 2026-11-20", "We talked about planting for bees: borage, phacelia and crocus."),
]
EXAMPLE_Q = "What should I bring to Ana's birthday?"
EXAMPLE_A = "Ana lives in Porto (note 1), so something easy to carry: a book or a plant would do."


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def set_threads(n: int) -> None:
    """BLAS threads, through whichever helper the measured checkout has."""
    if hasattr(blas, "set_threads"):
        blas.set_threads(n)
    else:
        from adapters.jobs.priority import blas_threads

        blas_threads(n)


def load_str() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# prompts ------------------------------------------------------------------------------
def typical_first_turn(question: str) -> tuple[list[dict[str, str]], int | None]:
    """A first turn as the chat builds it: system prompt, one example, four notes, question;
    with how many leading messages the chat passes as stable (None on code without it)."""
    from agent.llm import prompt

    try:
        from memory.migrations import DEFAULT_SYSTEM_PROMPT as system
    except ImportError:
        system = "You are Hearth, a private assistant. Answer helpfully and briefly."

    class Hit:
        def __init__(self, source: str, text: str):
            self.source, self.text = source, text

    class Example:
        prompt_messages = [{"role": "user", "content": EXAMPLE_Q}]
        target = EXAMPLE_A

    built = prompt.assemble(system, question, [], [Hit(s, t) for s, t in NOTES], [Example()])
    return built.messages, getattr(built, "stable", None)


# measurements ---------------------------------------------------------------------------
def bare_decode(rt: Any, tokens: list[int], max_tokens: int, threads: int | None = None) -> float:
    """mlx-lm's own stream_generate, greedy, fresh cache; `threads` None = library default."""
    import mlx.core as mx
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    set_threads(threads or os.cpu_count() or 1)
    tps = 0.0
    for resp in stream_generate(rt.model, rt.tokenizer, mx.array(tokens), max_tokens=max_tokens,
                                sampler=make_sampler(temp=0.0)):
        tps = resp.generation_tps
    return float(tps)


def hearth_decode(rt: Any, max_tokens: int) -> tuple[float, float]:
    """(tok/s, process CPU ms per token) of the chat path, greedy, fresh in-memory cache."""
    from agent.llm.runtime import SamplingOptions

    rt.reset_cache()
    start_cpu = cpu_s()
    final = list(rt.stream(STORY, SamplingOptions(temperature=0.0, max_tokens=max_tokens)))[-1]
    cpu_ms = (cpu_s() - start_cpu) * 1000 / max(final.generated_tokens, 1)
    return float(final.tokens_per_s), cpu_ms


def first_token_stream(rt: Any, msgs: list[dict[str, str]], stable: int | None = None) -> Iterator[Any]:
    """rt.stream for one token, passing the stable-prefix count as the chat does (if any)."""
    from agent.llm.runtime import SamplingOptions

    options = SamplingOptions(temperature=0.0, max_tokens=1)
    if stable is None:
        return iter(rt.stream(msgs, options))
    return iter(rt.stream(msgs, options, stable=stable))


def time_to_first_token(rt: Any, msgs: list[dict[str, str]], stable: int | None = None) -> float:
    start = time.perf_counter()
    for _ in first_token_stream(rt, msgs, stable):
        return time.perf_counter() - start
    return time.perf_counter() - start


@contextlib.contextmanager
def prefix_folder(rt: Any, folder: Path | None) -> Iterator[None]:
    """Point the runtime's disk prefix cache at `folder` (no-op on code without one)."""
    store = getattr(rt, "prefix_store", None)
    if store is None or folder is None:
        yield
        return
    old = store._folder
    store._folder = folder
    try:
        yield
    finally:
        store._folder = old


@contextlib.contextmanager
def competitor() -> Iterator[subprocess.Popen[bytes]]:
    """A CPU-bound process (one core, normal priority), stopped on exit."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def median_ms(fn: Callable[[], Any], repeats: int = 15) -> tuple[float, float]:
    """(median wall ms, mean process CPU ms) of evaluating fn()."""
    import mlx.core as mx

    mx.eval(fn())
    walls = []
    start_cpu = cpu_s()
    for _ in range(repeats):
        start = time.perf_counter()
        mx.eval(fn())
        walls.append(time.perf_counter() - start)
    return statistics.median(walls) * 1000, (cpu_s() - start_cpu) * 1000 / repeats


def sampler_costs() -> dict[str, float]:
    """CPU ms per token of each sampler on realistic log-probs (49k vocabulary)."""
    import mlx.core as mx
    from mlx_lm.sample_utils import make_sampler

    mx.random.seed(0)
    logits = mx.random.normal((1, 49152)) * 4
    logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    mx.eval(logprobs)
    out = {
        "sample_ms_greedy": median_ms(lambda: mx.argmax(logprobs, axis=-1))[1],
        "sample_ms_topp_mlx_lm": median_ms(lambda: make_sampler(temp=0.2, top_p=0.9)(logprobs))[1],
    }
    with contextlib.suppress(ImportError):
        from agent.llm import sampler

        fast = sampler.make_sampler(0.2, 0.9)
        out["sample_ms_topp_hearth"] = median_ms(lambda: fast(logprobs))[1]
    return out


def breakdown(rt: Any) -> dict[str, float]:
    """CPU ms of one decode token at position ~100, and of its parts, on one BLAS thread."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    set_threads(1)
    out: dict[str, float] = {}
    inner = rt.model.model
    x = mx.random.normal((1, 1, inner.layers[0].mlp.down_proj.weight.shape[0]))
    mx.eval(x)

    def prefilled() -> list[Any]:
        cache = make_prompt_cache(rt.model)
        rt.model(mx.array([list(range(100, 200))]), cache=cache)
        mx.eval([c.state for c in cache])
        return cache

    def reset(cache: list[Any]) -> None:
        for c in cache:
            c.offset = 100

    cache = prefilled()
    tok = mx.array([[5]])

    def mlx_lm_step() -> Any:
        reset(cache)
        return rt.model(tok, cache=cache)

    out["step_ms_mlx_lm"] = median_ms(mlx_lm_step)[1]
    decoder = getattr(rt, "decoder", None)
    if decoder is not None:
        cache2 = prefilled()
        tok1 = mx.array([5], dtype=mx.int32)

        def ours() -> Any:
            reset(cache2)
            return decoder.step(tok1, cache2)

        out["step_ms_hearth"] = median_ms(ours)[1]
        was = decoder.want_compiled
        decoder.want_compiled = False
        out["step_ms_hearth_uncompiled"] = median_ms(ours)[1]
        decoder.want_compiled = was
        start = time.perf_counter()
        for _ in range(10):
            reset(cache2)
            decoder._step(tok1, mx.array(100, dtype=mx.int32), [c.keys for c in cache2],
                          [c.values for c in cache2])
        out["breakdown_graph_build_ms"] = (time.perf_counter() - start) * 100

    def layer_matmuls() -> Any:
        h, outs = x, []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            outs += [a.q_proj(h), a.k_proj(h), a.v_proj(h), m.gate_proj(h)]
            h = h + a.o_proj(h) + m.down_proj(m.up_proj(h))
        return [h, *outs]

    out["breakdown_layer_matmuls_ms"] = median_ms(layer_matmuls)[1]
    if decoder is not None:
        def fused_matmuls() -> Any:
            h = x
            for layer, (wqkv, wgu) in zip(inner.layers, decoder._fused, strict=True):
                qkv = h @ wqkv.T
                h = h + layer.self_attn.o_proj(qkv[..., : h.shape[-1]])
                gu = h @ wgu.T
                h = h + layer.mlp.down_proj(gu[..., : gu.shape[-1] // 2])
            return h

        out["breakdown_fused_layer_matmuls_ms"] = median_ms(fused_matmuls)[1]
    out["breakdown_lm_head_ms"] = median_ms(lambda: inner.embed_tokens.as_linear(x))[1]
    q = mx.random.normal((1, 9, 1, 64))
    k = mx.random.normal((1, 3, 256, 64))
    mx.eval(q, k)
    layers = len(inner.layers)
    out["breakdown_attention_ms"] = median_ms(
        lambda: [mx.fast.scaled_dot_product_attention(q, k, k, scale=0.125, mask=None)
                 for _ in range(layers)])[1]
    set_threads(os.cpu_count() or 1)
    return out


def llamacpp_decode(max_tokens: int) -> float | None:
    """llama.cpp tok/s on the bundled GGUF (2 threads), or None without llama-cpp-python."""
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import Llama

    from agent.llm import convert

    llm = Llama(model_path=str(convert.bundled_gguf()), n_threads=os.cpu_count() or 1,
                n_ctx=1024, verbose=False)
    prompt = "<|im_start|>user\n" + STORY[0]["content"] + "<|im_end|>\n<|im_start|>assistant\n"
    llm(prompt, max_tokens=4, temperature=0.0)
    start = time.perf_counter()
    out = llm(prompt, max_tokens=max_tokens, temperature=0.0)
    return float(out["usage"]["completion_tokens"]) / (time.perf_counter() - start)


def prefill_tps(model_path: str, repeats: int = 3, loaded: tuple | None = None) -> float:  # type: ignore[type-arg]
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.models.cache import make_prompt_cache

    model, tok = loaded or load(model_path)
    ids = mx.array([tok.encode(PREFILL_TEXT)])
    best = 0.0
    for _ in range(repeats):
        cache = make_prompt_cache(model)
        start = time.perf_counter()
        mx.eval(model(ids, cache=cache))
        best = max(best, ids.shape[1] / (time.perf_counter() - start))
    return best


def child_prefill(model_path: str) -> float:
    """Prefill tok/s in a fresh process on the stock (reference) BLAS."""
    root = str(Path(__file__).resolve().parent.parent)
    code = (
        f"import sys, json; sys.path.insert(0, {root!r})\n"
        "from scripts.bench_runtime import prefill_tps\n"
        f"print(json.dumps(prefill_tps({model_path!r}, repeats=1)))\n"
    )
    env = {**os.environ, "HEARTH_BLAS": "reference"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def first_launch_rss_mb() -> float:
    """Peak RSS (MB) of a fresh process that converts the bundled model (a new user's first
    launch, into an empty HEARTH_HOME) and then loads it for chat."""
    code = (
        "import json, resource, sys; sys.path.insert(0, sys.argv[1])\n"
        "from agent.llm import models\nfrom agent.llm.runtime import Runtime\n"
        "Runtime.load(models.resolve())\n"
        "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))\n"
    )
    root = os.environ.get("HEARTH_BENCH_CODE") or str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as home:
        out = subprocess.run([sys.executable, "-c", code, root], env={**os.environ, "HEARTH_HOME": home},
                             capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure_ttft(rt: Any, rounds: int) -> dict[str, Any]:
    """Time to first token: a new conversation's first turn, and a follow-up vs cold."""
    from agent.llm.runtime import SamplingOptions

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        empty, warm_dir = Path(tmp) / "empty", Path(tmp) / "prefix"
        first_turn, nocache = [], []
        for i in range(rounds):
            msgs, stable = typical_first_turn(f"What flowers should I plant this spring? ({i})")
            earlier, _ = typical_first_turn("When is Ana's birthday?")
            with prefix_folder(rt, empty / str(i)):
                rt.reset_cache()  # as after a restart, nothing on disk either
                nocache.append(time_to_first_token(rt, msgs, stable))
            with prefix_folder(rt, warm_dir):
                rt.reset_cache()
                list(first_token_stream(rt, earlier, stable))
                rt.reset_cache()  # a new process: only the disk cache survives
                first_turn.append(time_to_first_token(rt, msgs, stable))
        results["ttft_first_turn_s"] = statistics.median(first_turn)
        results["ttft_first_turn_nocache_s"] = statistics.median(nocache)
        results["first_turn_prompt_tokens"] = len(rt.prompt_tokens(msgs))
        if stable is not None and hasattr(rt, "stable_prefix"):
            results["first_turn_stable_tokens"] = rt.stable_prefix(msgs, stable, rt.prompt_tokens(msgs))

        # follow-up turn of a conversation vs the same prompt cold
        first = [{"role": "user", "content": PREFILL_TEXT + " Summarise this."}]
        warm, cold = [], []
        with prefix_folder(rt, empty / "ttft"):
            rt.reset_cache()
            answer = "".join(e.text for e in rt.stream(first, SamplingOptions(temperature=0.0, max_tokens=32)))
            second = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "Shorter?"}]
            for _ in range(rounds):
                rt.reset_cache()
                list(rt.stream(first, SamplingOptions(temperature=0.0, max_tokens=32)))
                warm.append(time_to_first_token(rt, second))
                rt.reset_cache()
                cold.append(time_to_first_token(rt, second))
        results["ttft_ratio"] = statistics.median(warm) / statistics.median(cold)
        results["ttft_ratio_each_round"] = str([round(w / c, 3) for w, c in zip(warm, cold, strict=True)])
        results["ttft_first_turn_each_round_s"] = str([round(t, 3) for t in first_turn])
        results["ttft_warm_ms"] = statistics.median(warm) * 1000
        results["ttft_cold_ms"] = statistics.median(cold) * 1000

    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--blas", action="store_true", help="also the stock-BLAS prefill child (slow)")
    parser.add_argument("--ttft-only", action="store_true", help="only the time-to-first-token lines")
    args = parser.parse_args()
    load_before = load_str()
    blas.ensure()
    from agent.llm import models
    from agent.llm.runtime import Runtime

    ref = models.resolve()
    rt = Runtime.load(ref)
    results: dict[str, Any] = {"blas": blas.sgemm_library(), "load_before": load_before}
    if args.ttft_only:
        results.update(measure_ttft(rt, args.rounds))
        results["load_after"] = load_str()
        report(results)
        return
    decoder = getattr(rt, "decoder", None)
    results["fast_decoder"] = decoder is not None
    results["compiled"] = bool(decoder is not None and decoder.compiled)
    tokens = rt.prompt_tokens(STORY)
    bare_decode(rt, tokens, 8)  # warm-up both paths (compiles the step once)
    hearth_decode(rt, 8)
    bare, bare_same, ours, ours_cpu, threads = [], [], [], [], []
    for _ in range(args.rounds):  # interleaved, so drift hits all alike
        bare.append(bare_decode(rt, tokens, args.tokens))
        tps, cpu_ms = hearth_decode(rt, args.tokens)
        ours.append(tps)
        ours_cpu.append(cpu_ms)
        threads.append(getattr(rt, "decode_threads", None) or getattr(rt, "threads", None))
        bare_same.append(bare_decode(rt, tokens, args.tokens, threads=threads[-1]))
    results["decode_ratio"] = statistics.median(ours) / statistics.median(bare)
    results["decode_ratio_same_threads"] = statistics.median(ours) / statistics.median(bare_same)
    results["decode_tps"] = statistics.median(ours)
    results["bare_decode_tps"] = statistics.median(bare)
    results["bare_same_threads_decode_tps"] = statistics.median(bare_same)
    results["decode_cpu_ms_per_token"] = statistics.median(ours_cpu)
    results["chat_threads"] = str(threads)

    # under load: a CPU-bound competitor on one of the cores, alone/loaded adjacent
    alone, loaded, bare_alone, bare_loaded = [], [], [], []
    for _ in range(max(1, args.rounds - 1)):
        alone.append(hearth_decode(rt, args.tokens)[0])
        bare_alone.append(bare_decode(rt, tokens, args.tokens))
        with competitor():
            loaded.append(hearth_decode(rt, args.tokens)[0])
            bare_loaded.append(bare_decode(rt, tokens, args.tokens))
    results["decode_under_load_ratio"] = statistics.median(loaded) / statistics.median(alone)
    results["decode_under_load_tps"] = statistics.median(loaded)
    results["bare_under_load_ratio"] = statistics.median(bare_loaded) / statistics.median(bare_alone)

    results.update(measure_ttft(rt, args.rounds))
    results.update(sampler_costs())
    results.update(breakdown(rt))
    set_threads(os.cpu_count() or 1)
    results["prefill_tps"] = prefill_tps(str(ref.path), loaded=(rt.model, rt.tokenizer))
    if args.blas and sys.platform.startswith("linux"):
        results["blas_prefill_speedup"] = results["prefill_tps"] / child_prefill(str(ref.path))
    llama = llamacpp_decode(args.tokens)
    if llama is not None:
        results["llamacpp_decode_tps"] = llama
        results["decode_vs_llamacpp"] = results["decode_tps"] / llama
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["first_launch_peak_rss_mb"] = first_launch_rss_mb()
    results["load_after"] = load_str()
    report(results)


def report(results: dict[str, Any]) -> None:
    for key, value in results.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}", flush=True)
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
