"""The gate's decisions on hand-made numbers."""

from __future__ import annotations

import math

from adapters.training.config import GateConfig
from adapters.training.gate import Scores, decide

CFG = GateConfig(min_improvement=0.02, max_probe_regression=0.05, max_probe_regression_vs_base=0.10)
REF = Scores(personal_nll=2.0, probe_nll=1.5, n_valid=8, label="base")


def cand(personal: float, probe: float, n_valid: int = 8) -> Scores:
    return Scores(personal, probe, 100, n_valid, "candidate")


def test_promotes_when_personal_improves_and_probe_holds() -> None:
    v = decide(cand(1.8, 1.52), REF, CFG, base_probe_nll=1.5)
    assert v.promote and v.word == "promote"
    assert math.isclose(v.checks["personal_gain"], 0.1)
    assert "2.000 -> 1.800" in v.reason


def test_rejects_too_small_a_gain() -> None:
    v = decide(cand(1.99, 1.5), REF, CFG)
    assert not v.promote and "required 2.0%" in v.reason


def test_rejects_probe_regression_against_reference_and_against_base() -> None:
    assert not decide(cand(1.5, 1.6), REF, CFG).promote  # +6.7% > 5%
    drifted = Scores(2.0, 1.62, n_valid=8, label="v3")  # the active one already drifted
    v = decide(cand(1.5, 1.66), drifted, CFG, base_probe_nll=1.5)  # +2.5% vs v3, +10.7% vs base
    assert not v.promote and "worse than the base model" in v.reason


def test_rejects_non_finite_and_too_few_examples() -> None:
    assert not decide(cand(float("nan"), 1.5), REF, CFG).promote
    assert not decide(cand(1.0, float("inf")), REF, CFG).promote
    v = decide(cand(1.0, 1.5, n_valid=1), REF, CFG)
    assert not v.promote and "held-out" in v.reason


def test_verdict_serializes_both_sets_of_numbers() -> None:
    d = decide(cand(1.8, 1.5), REF, CFG, base_probe_nll=1.5).to_dict()
    assert d["candidate"]["personal_nll"] == 1.8 and d["reference"]["label"] == "base"
    assert d["promote"] is True and d["base_probe_nll"] == 1.5
