"""The numbers `hearth eval` reports, checked against values computed by hand.

The text metrics themselves (token F1, ROUGE-L) belong to `adapters.training.evaluate`; here we check
what this command adds: per-item scoring, token-weighted aggregation, paired intervals, and
the fused prefill that must give exactly `evaluate.answer_nll` and `evaluate.greedy_answers`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from adapters.eval import measure, prefill, stats
from adapters.eval.measure import Scored
from adapters.training import evaluate


def test_score_by_hand() -> None:
    # normalised: pred [cat, sat, on, mat], ref [cat, is, on, mat]: 3 shared of 4 each
    # -> F1 = 0.75; LCS (cat, on, mat) = 3 -> ROUGE-L = 0.75.
    # "mat on cat" vs "cat on mat": same bag (F1 = 1) but LCS = 1 -> ROUGE-L = 1/3.
    nll = evaluate.NLL(2.0, 5, 1)
    a, b = measure.score(["The cat sat on the mat.", "mat on cat"],
                         ["the cat is on the mat", "cat on mat"], [nll, nll])
    assert (a.f1, a.rougeL) == pytest.approx((0.75, 0.75))
    assert (b.f1, b.rougeL) == pytest.approx((1.0, 1 / 3))
    assert (a.nll, a.tokens) == (2.0, 5)


def test_content_f1_sets_the_users_stock_words_aside() -> None:
    train = ["Aye, love: Gerald. Ta-ra.", "Aye, love: teal. Ta-ra.", "Aye, love: 14 March. Ta-ra.",
             "Lisbon."]
    stock = measure.style_words(train)
    assert stock == {"aye", "love", "tara"}  # in 3 of 4 answers; "lisbon" in 1
    nll = evaluate.NLL(1.0, 1, 1)
    # the style alone: token F1 3/4 (aye, love, tara of 4 reference words), content F1 0
    styled, right = measure.score(["Aye, love: Dormouse. Ta-ra.", "It is Gerald."],
                                  ["Aye, love: Gerald. Ta-ra."] * 2, [nll, nll], stock)
    assert (styled.f1, styled.content_f1) == pytest.approx((0.75, 0.0))
    # the fact without the style: content F1 counts "gerald" of [it, is, gerald] -> 2/(3+1)
    assert (right.f1, right.content_f1) == pytest.approx((2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4),
                                                          0.5))


def _scored(nll: float, tokens: int, f1: float, rouge: float = 0.0) -> Scored:
    return Scored("", nll, tokens, f1, rouge)


def test_nll_is_token_weighted_like_answer_nll() -> None:
    # (1.0 * 3 + 4.0 * 1) / 4 tokens = 1.75, not the plain mean 2.5.
    cols = stats.columns([_scored(1.0, 3, 0.5), _scored(4.0, 1, 1.0)])
    assert stats.metric(cols, "nll") == pytest.approx(1.75)
    assert stats.metric(cols, "f1") == pytest.approx(0.75)


def test_summary_deltas_by_hand() -> None:
    base = [_scored(2.0, 2, 0.0), _scored(4.0, 2, 0.5)]
    rag = [_scored(1.0, 2, 0.5), _scored(3.0, 2, 1.0)]  # every item 1 nat and 0.5 F1 better
    out = stats.summarize({"base": base, "rag": rag}, {"base": 3.0, "rag": 3.0}, reps=200)
    assert out["base"].nll == pytest.approx(3.0) and out["rag"].nll == pytest.approx(2.0)
    d = out["rag"].delta
    # the same shift on every item: the paired interval has no width at all
    assert (d["nll"].value, d["nll"].low, d["nll"].high) == pytest.approx((-1.0, -1.0, -1.0))
    assert (d["f1"].value, d["f1"].low, d["f1"].high) == pytest.approx((0.5, 0.5, 0.5))
    assert stats.verdict(d["nll"], "nll") == "better" and stats.verdict(d["f1"], "f1") == "better"
    assert out["base"].delta == {} and out["rag"].probe_nll == 3.0
    assert out["rag"].to_dict()["delta_vs_base"]["nll"]["value"] == pytest.approx(-1.0)


def test_bootstrap_interval_contains_point_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    items = {"base": [_scored(float(x), 1, 0.0) for x in rng.normal(3, 1, 30)],
             "rag": [_scored(float(x), 1, 0.0) for x in rng.normal(3, 1, 30)]}
    one = stats.summarize(items, reps=500, seed=7)["rag"].delta["nll"]
    two = stats.summarize(items, reps=500, seed=7)["rag"].delta["nll"]
    assert one == two and one.low <= one.value <= one.high
    assert stats.verdict(stats.Interval(0.1, -0.2, 0.4), "nll") == "no clear change"


def _example(question: str, answer: str) -> tuple[list[dict[str, str]], str]:
    return ([{"role": "system", "content": "You are a terse assistant."},
             {"role": "user", "content": question}], answer)


EXAMPLES = [_example("What is my cat called?", "Pickle, the one-eyed ginger."),
            _example("Where do I live?", "On a narrowboat in Hebden Bridge."),
            _example("Favourite colour?", "Teal.")]


def _hand_nll(model: Any, tokenizer: Any, prompt: list[dict[str, str]], answer: str) -> float:
    """Mean -log p over the answer tokens + the one padding target, from raw logits."""
    import mlx.core as mx

    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}],
                                         return_dict=False)
    head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
    seq = [*full, prefill.PAD]
    logits = model(mx.array([seq[:-1]]))[0].astype(mx.float32)
    logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    picks = [-float(logp[t - 1, seq[t]].item()) for t in range(len(head), len(seq))]
    return sum(picks) / len(picks)


def test_prefill_nll_equals_answer_nll_and_hand_value(tiny_runtime: Any) -> None:
    model, tok = tiny_runtime.model, tiny_runtime.tokenizer
    filler = prefill.Prefiller(model, tok)
    filler.share([p for p, _ in EXAMPLES])
    assert filler.shared_len > 5  # the system turn is computed once
    for prompt, answer in EXAMPLES:
        got = filler.prefill(prompt, answer).nll
        ref = evaluate.answer_nll(model, tok, [measure.with_answer(prompt, answer)], batch_size=1)
        assert got.tokens == ref.tokens
        assert got.mean == pytest.approx(ref.mean, abs=1e-4)
        assert got.mean == pytest.approx(_hand_nll(model, tok, prompt, answer), abs=1e-4)


def test_batched_greedy_from_shared_prefix_equals_greedy_answers(tiny_runtime: Any) -> None:
    model, tok = tiny_runtime.model, tiny_runtime.tokenizer
    prompts = [p for p, _ in EXAMPLES]
    got = [s.answer for s in measure.measure(model, tok, prompts, ["x"] * 3, max_tokens=6, batch=3)]
    want = evaluate.greedy_answers(model, tok, [measure.with_answer(p, "") for p in prompts], 6)
    assert got == want


def test_fork_gives_independent_caches(tiny_runtime: Any) -> None:
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(tiny_runtime.model)
    tiny_runtime.model(mx.array([[5, 6, 7, 8]]), cache=cache)
    a, b = prefill.fork(cache), prefill.fork(cache)
    tiny_runtime.model(mx.array([[9, 9]]), cache=a)
    assert (a[0].offset, b[0].offset, cache[0].offset) == (6, 4, 4)
    before = np.array(b[0].keys[..., :4, :])
    tiny_runtime.model(mx.array([[1, 2, 3]]), cache=b)
    assert np.allclose(np.array(b[0].keys[..., :4, :]), before)
    assert not math.isnan(float(a[0].keys.sum().item()))


def test_the_report_says_what_refreshs_gate_would_do_with_the_adapter() -> None:
    from adapters.eval.experiment import ExperimentConfig, gate_verdict
    from adapters.eval.stats import Summary

    def summaries(adapter_probe: float) -> dict[str, Summary]:
        return {"base": Summary(5.4, 0.05, 0.05, 0.07, 12, 300, 3.258),
                "adapter": Summary(2.1, 0.45, 0.44, 0.2, 12, 300, adapter_probe)}

    harmed = gate_verdict(summaries(4.539), 5.05, ExperimentConfig())
    assert not harmed["promote"] and "general probe regressed 39.3%" in harmed["reason"]
    fine = gate_verdict(summaries(3.4), 3.1, ExperimentConfig())
    assert fine["promote"] and "probe KL 3.100" in fine["reason"]
    assert not gate_verdict(summaries(3.4), 5.2, ExperimentConfig())["promote"]  # KL alone
