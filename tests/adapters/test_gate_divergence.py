"""The gate sees harm: KL from the base on everyday prompts, measured on a tiny model.

A gently trained candidate stays close to the base; one over-trained on florid prose (high
learning rate, many steps) moves far from it and is rejected, whatever its probe NLL does.
Also: the training loop stops when its time budget is spent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapter_helpers import SYSTEM, pairs

from adapters.training import evaluate
from adapters.training.config import GateConfig, TrainConfig
from adapters.training.dataset import make_snapshot
from adapters.training.gate import Scores, decide
from adapters.training.train import train_adapter
from memory.records import Accepted

FLORID = Path(__file__).parents[2] / "adapters" / "data" / "florid.jsonl"


def rows(qa: list[tuple[str, str]]) -> list[Accepted]:
    return [Accepted(f"m{i}", [SYSTEM, {"role": "user", "content": q}], a, "t")
            for i, (q, a) in enumerate(qa)]


def florid() -> list[tuple[str, str]]:
    recs = [json.loads(x) for x in FLORID.read_text().splitlines() if x.strip()]
    return [(r["prompt"], r["completion"]) for r in recs]


def train(model_dir: Path, folder: Path, qa: list[tuple[str, str]], config: TrainConfig,
          keep_last: bool = False) -> Any:
    from mlx_lm import load

    model, tok = load(str(model_dir))
    base = evaluate.probe_logprobs(model, tok)
    base_nll = evaluate.probe_nll(model, tok).mean
    snap = make_snapshot(rows(qa), 0.0, 0) if keep_last else make_snapshot(rows(qa), 0.25, 3)
    result = train_adapter(model, tok, snap.write(folder), config, resume=False)
    kl = evaluate.mean_kl(base, evaluate.probe_logprobs(model, tok))
    return kl, base_nll, evaluate.probe_nll(model, tok).mean, result


def test_overtrained_candidate_is_rejected_for_divergence_and_a_gentle_one_is_not(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    gentle = TrainConfig(num_layers=2, learning_rate=1e-4, iters=4, steps_per_eval=100,
                         time_budget_s=None)
    harsh = TrainConfig(num_layers=2, learning_rate=3e-2, iters=16, steps_per_eval=100,
                        time_budget_s=None)
    kl_gentle, base_nll, nll_gentle, _ = train(tiny_model_dir, tmp_path / "a", pairs(12), gentle)
    kl_harsh, _, nll_harsh, _ = train(tiny_model_dir, tmp_path / "b", florid(), harsh,
                                keep_last=True)
    # the tiny random model's scale, not SmolLM2's (scripts/bench_gate.py sets the default)
    assert 5 * kl_gentle < kl_harsh, (kl_gentle, kl_harsh)
    assert nll_harsh < base_nll  # the probe NLL even improves: it cannot see this harm
    config = GateConfig(min_improvement=0.0, max_probe_regression=10.0,
                        max_probe_regression_vs_base=10.0, max_probe_kl=3 * kl_gentle)
    reference = Scores(5.0, base_nll, n_valid=4, label="base")
    ok = decide(Scores(4.0, nll_gentle, n_valid=4, probe_kl=kl_gentle), reference, config, base_nll)
    bad = decide(Scores(4.0, nll_harsh, n_valid=4, probe_kl=kl_harsh), reference, config, base_nll)
    assert ok.promote and f"probe KL {kl_gentle:.3f}" in ok.reason
    assert not bad.promote and "general behaviour moved from the base model" in bad.reason
    assert bad.checks["probe_kl"] == kl_harsh


def test_kl_is_zero_for_the_same_weights_and_positions_line_up(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    a = evaluate.probe_logprobs(model, tok)
    assert a.shape[0] == evaluate.probe_nll(model, tok).tokens  # one row per scored token
    assert evaluate.mean_kl(a, evaluate.probe_logprobs(model, tok)) < 1e-6


def test_training_stops_when_the_time_budget_is_spent(tiny_model_dir: Path, tmp_path: Path) -> None:
    from mlx_lm import load

    model, tok = load(str(tiny_model_dir))
    folder = make_snapshot(rows(pairs(12)), 0.25, 3).write(tmp_path / "run")
    config = TrainConfig(num_layers=2, iters=500, steps_per_eval=1000, time_budget_s=0.5)
    result = train_adapter(model, tok, folder, config, resume=False)
    assert result.stopped_early and result.steps < 500
    stops = [e for e in result.history if e["event"] == "stop"]
    assert stops and "time budget" in stops[0]["reason"]
