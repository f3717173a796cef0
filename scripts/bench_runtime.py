"""Runtime benchmark on the bundled model: prints `name: value` lines, measured side by side.

  decode_ratio          Hearth chat-path decode tok/s / bare mlx_lm.stream_generate   (goal >= 0.97)
  ttft_ratio            2nd-turn time-to-first-token with the prompt cache / cold     (goal <= 0.25)
  blas_prefill_speedup  prefill tok/s with the optimised BLAS / stock wheel (child)    (goal >= 10)
  decode_tps, prefill_tps, peak_rss_mb                                                (rss goal <= 1500)

Usage: .venv/bin/python scripts/bench_runtime.py [--rounds 3] [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.foundation import blas  # noqa: E402

PREFILL_TEXT = " ".join(["The history of the city is long and full of stories about people."] * 16)
STORY = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper."}]


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


def bare_decode(rt, tokens: list[int], max_tokens: int) -> float:  # type: ignore[no-untyped-def]
    import mlx.core as mx
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    tps = 0.0
    for resp in stream_generate(rt.model, rt.tokenizer, mx.array(tokens), max_tokens=max_tokens,
                                sampler=make_sampler(temp=0.0)):
        tps = resp.generation_tps
    return float(tps)


def hearth_decode(rt, max_tokens: int) -> float:  # type: ignore[no-untyped-def]
    from agent.llm.runtime import SamplingOptions

    rt.reset_cache()
    final = list(rt.stream(STORY, SamplingOptions(temperature=0.0, max_tokens=max_tokens)))[-1]
    return float(final.tokens_per_s)


def ttft(rt, msgs, reuse: bool) -> float:  # type: ignore[no-untyped-def]
    from agent.llm.runtime import SamplingOptions

    if not reuse:
        rt.reset_cache()
    start = time.perf_counter()
    for _ in rt.stream(msgs, SamplingOptions(temperature=0.0, max_tokens=1)):
        return time.perf_counter() - start
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    blas.ensure()
    from agent.llm import models
    from agent.llm.runtime import Runtime, SamplingOptions

    ref = models.resolve()
    rt = Runtime.load(ref)
    tokens = rt.prompt_tokens(STORY)
    bare_decode(rt, tokens, 8)  # warm-up
    bare, ours = [], []
    for _ in range(args.rounds):  # interleaved, so drift hits both alike
        bare.append(bare_decode(rt, tokens, args.tokens))
        ours.append(hearth_decode(rt, args.tokens))
    # second turn of a conversation: long first turn, then a short follow-up
    first = [{"role": "user", "content": PREFILL_TEXT + " Summarise this."}]
    answer = "".join(e.text for e in rt.stream(first, SamplingOptions(temperature=0.0, max_tokens=32)))
    second = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "Shorter?"}]
    warm, cold = [], []
    for _ in range(args.rounds):
        rt.reset_cache()
        list(rt.stream(first, SamplingOptions(temperature=0.0, max_tokens=32)))
        warm.append(ttft(rt, second, reuse=True))
        cold.append(ttft(rt, second, reuse=False))
    fast_prefill = prefill_tps(str(ref.path), loaded=(rt.model, rt.tokenizer))
    slow_prefill = child_prefill(str(ref.path)) if sys.platform.startswith("linux") else float("nan")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = {
        "blas": blas.sgemm_library(),
        "decode_ratio": statistics.median(ours) / statistics.median(bare),
        "ttft_ratio": statistics.median(warm) / statistics.median(cold),
        "ttft_warm_ms": statistics.median(warm) * 1000,
        "ttft_cold_ms": statistics.median(cold) * 1000,
        "blas_prefill_speedup": fast_prefill / slow_prefill,
        "decode_tps": statistics.median(ours),
        "bare_decode_tps": statistics.median(bare),
        "prefill_tps": fast_prefill,
        "stock_prefill_tps": slow_prefill,
        "peak_rss_mb": rss_mb,
    }
    for key, value in results.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
