"""The promotion gate: does a candidate fit the user better without forgetting the basics?

`decide(candidate, reference, base, config)` is pure: given the numbers measured by the shared
evaluator it returns a `Verdict`. A candidate is promoted only when
1. its answer-token NLL on the user's held-out accepted answers is lower than the reference's
   (the active adapter, or the base model when none is active) by at least
   `min_improvement` (a fraction of the reference's), and
2. its NLL on the general probe rose by at most `max_probe_regression` over the reference's
   and by at most `max_probe_regression_vs_base` over the base model's.
Non-finite numbers and too few held-out examples reject. `measure` runs the evaluator for one
model state. The verdict, with both sets of numbers, is stored on the registry row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from adapters.training.config import GateConfig
from adapters.training.evaluate import Messages, answer_nll, probe_nll


@dataclass(frozen=True)
class Scores:
    """One model state measured by the evaluator."""

    personal_nll: float
    probe_nll: float
    personal_tokens: int = 0
    n_valid: int = 0
    label: str = ""
    """What was measured: "candidate", "base" or an adapter version."""


@dataclass(frozen=True)
class Verdict:
    """The gate's decision, its reason in words, and the numbers it rests on."""

    promote: bool
    reason: str
    candidate: Scores
    reference: Scores
    base_probe_nll: float | None = None
    checks: dict[str, float] = field(default_factory=dict)

    @property
    def word(self) -> str:
        return "promote" if self.promote else "reject"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def relative_change(new: float, old: float) -> float:
    """(new - old) / old; negative means lower (better for NLL).

    >>> relative_change(1.5, 2.0)
    -0.25
    """
    return (new - old) / old if old else math.inf


def decide(
    candidate: Scores, reference: Scores, config: GateConfig, base_probe_nll: float | None = None
) -> Verdict:
    """Promote or reject `candidate` against `reference` (see the module docstring)."""
    numbers = [candidate.personal_nll, candidate.probe_nll, reference.personal_nll, reference.probe_nll]
    if not all(math.isfinite(x) for x in numbers):
        return Verdict(False, "a loss is not finite (training diverged): lower the learning rate",
                       candidate, reference, base_probe_nll)
    if candidate.n_valid < config.min_valid_examples:
        return Verdict(False, f"only {candidate.n_valid} held-out answers; need "
                       f"{config.min_valid_examples} to judge (accept more answers)",
                       candidate, reference, base_probe_nll)
    gain = -relative_change(candidate.personal_nll, reference.personal_nll)
    probe = relative_change(candidate.probe_nll, reference.probe_nll)
    checks = {"personal_gain": gain, "probe_regression": probe}
    vs_base = None
    if base_probe_nll is not None:
        vs_base = relative_change(candidate.probe_nll, base_probe_nll)
        checks["probe_regression_vs_base"] = vs_base
    ref = reference.label or "reference"
    summary = (f"personal NLL {reference.personal_nll:.3f} -> {candidate.personal_nll:.3f} "
               f"({-gain:+.1%}), probe NLL {reference.probe_nll:.3f} -> "
               f"{candidate.probe_nll:.3f} ({probe:+.1%}) vs {ref}")
    if gain < config.min_improvement:
        why = f"personal NLL improved {gain:.1%} < required {config.min_improvement:.1%}"
        return Verdict(False, f"{why}; {summary}", candidate, reference, base_probe_nll, checks)
    if probe > config.max_probe_regression:
        why = f"general probe regressed {probe:.1%} > allowed {config.max_probe_regression:.1%}"
        return Verdict(False, f"{why}; {summary}", candidate, reference, base_probe_nll, checks)
    if vs_base is not None and vs_base > config.max_probe_regression_vs_base:
        why = (f"general probe {vs_base:.1%} worse than the base model > allowed "
               f"{config.max_probe_regression_vs_base:.1%}")
        return Verdict(False, f"{why}; {summary}", candidate, reference, base_probe_nll, checks)
    return Verdict(True, f"fits better: {summary}", candidate, reference, base_probe_nll, checks)


def measure(
    model: Any,
    tokenizer: Any,
    valid: list[Messages],
    label: str,
    probe: float | None = None,
    batch_size: int = 4,
) -> Scores:
    """Personal NLL on `valid` and probe NLL (measured unless `probe` is given) of `model` now."""
    personal = answer_nll(model, tokenizer, valid, batch_size=batch_size)
    probe_value = probe if probe is not None else probe_nll(model, tokenizer).mean
    return Scores(personal.mean, probe_value, personal.tokens, personal.examples, label)
