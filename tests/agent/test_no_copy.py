"""The primer may not be parroted: `decoding.no_copy` forbids continuing a copied run, up to
leading spaces, lazily; the fast decode path and mlx-lm's loop agree with it on."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
from mlx_lm import stream_generate
from mlx_lm.sample_utils import make_sampler

from agent.llm import decoding
from agent.llm.runtime import Runtime, SamplingOptions


def test_space_variants_pair_spaced_and_bare_tokens() -> None:
    vocab = {"I": 0, "ĠI": 1, "Ġhave": 2, "have": 3, "x": 4}
    assert decoding.space_variants(vocab) == [1, 0, 3, 2, 4]


def test_no_copy_forbids_only_the_next_token_of_a_copied_run() -> None:
    variants = [0, 1, 2, 3, 4, 5, 7, 6]  # 6 and 7 are " bikes" / "bikes"
    guard = decoding.no_copy([[1, 2, 3, 6, 5]], n=3, variants=variants)
    assert guard is not None
    prompt = mx.array([9, 9], dtype=mx.int32)
    logits = mx.zeros((1, 8))
    assert mx.array_equal(guard(prompt, logits), logits)  # first call: marks the answer start
    copied = mx.array([9, 9, 1, 2, 3], dtype=mx.int32)
    out = guard(copied, mx.zeros((1, 8))).tolist()[0]
    assert out[6] == float("-inf") and out[7] == float("-inf")  # both spellings of the next token
    assert [v for i, v in enumerate(out) if i not in (6, 7)] == [0.0] * 6
    fresh = mx.array([9, 9, 1, 2, 4], dtype=mx.int32)
    assert guard(fresh, mx.zeros((1, 8))).tolist()[0] == [0.0] * 8
    assert decoding.no_copy([[1, 2]], n=3) is None  # nothing long enough to copy
    # a token the user's own context holds may follow ("Your dog is called" + their dog's name)
    assert decoding.no_copy([[1, 2, 3, 6, 5]], n=3, variants=variants, allowed={7, 5}) is None


def test_fast_path_and_mlx_lm_agree_with_no_copy(tiny_runtime: Runtime) -> None:
    rt = tiny_runtime
    tokens = rt.prompt_tokens([{"role": "user", "content": "Say something."}])
    free = [r.token for r in stream_generate(rt.model, rt.tokenizer, mx.array(tokens), max_tokens=12,
                                             sampler=make_sampler(temp=0.0))]
    avoid = [free[:8]]  # forbid the model's own greedy answer
    variants = decoding.space_variants(dict(rt.tokenizer.vocab))
    processors = decoding.logits_processors(SamplingOptions(repetition_penalty=1.0), avoid, variants)
    want = [r.token for r in stream_generate(rt.model, rt.tokenizer, mx.array(tokens), max_tokens=12,
                                             sampler=make_sampler(temp=0.0),
                                             logits_processors=processors)]
    assert want[:3] == free[:3] and want[3] != free[3]  # the copy breaks after three tokens
    text = rt.tokenizer.decode(free[:8])
    rt.reset_cache()
    opts = SamplingOptions(temperature=0.0, max_tokens=12, repetition_penalty=1.0)
    ours = [e.token for e in rt.stream([{"role": "user", "content": "Say something."}], opts,
                                       avoid=[text]) if e.token is not None]
    eos = set(rt.tokenizer.eos_token_ids)
    assert [t for t in ours if t not in eos] == [t for t in want if t not in eos][: len(ours)]


def test_an_answer_does_not_copy_the_previous_answer(tiny_runtime: Runtime, tmp_path: Path) -> None:
    from agent.core.turn import Chat
    from memory.embed import HashEmbedder
    from memory.store import Store

    opts = SamplingOptions(temperature=0.0, max_tokens=10, repetition_penalty=1.0)
    with Store.open(tmp_path / "h.db", embedder=HashEmbedder()) as store:
        chat = Chat(tiny_runtime, store, options=opts)
        first = chat.ask("Say something.").text
        second = chat.ask("Say something.").text
        fresh = Chat(tiny_runtime, store, options=opts).ask("Say something.").text
    enc = tiny_runtime.tokenizer.encode
    a, b = enc(first, add_special_tokens=False), enc(second, add_special_tokens=False)
    assert len(a) >= 4 and len(b) >= 4
    assert fresh == first  # greedy, new conversation: the same answer
    copied = {tuple(a[i:i + 4]) for i in range(len(a) - 3)}
    assert not any(tuple(b[i:i + 4]) in copied for i in range(len(b) - 3)), (first, second)
