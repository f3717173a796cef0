"""The A/B statistics: acceptance, Wilson intervals, and the stopping rule's error rates
checked on synthetic Bernoulli arms with known rates, many repeated trials."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.training.ab_stats import Counts, Rule, decide, is_accepted, p_better, simulate, wilson


def test_small_edit_counts_as_accepted_and_a_rewrite_does_not() -> None:
    original = "Your sister Ada lives in Porto, in the north of Portugal, near the river."
    assert is_accepted("edited", original, original.replace("Porto", "Lisbon")) is True
    assert is_accepted("edited", original, "She moved to Berlin last year, ask her.") is False
    assert is_accepted("accepted", original, None) is True
    assert is_accepted("rejected", original, None) is False
    assert is_accepted(None, original, None) is None


def test_wilson_interval_contains_the_rate_and_narrows() -> None:
    lo, hi = wilson(30, 100)
    assert lo < 0.3 < hi
    lo2, hi2 = wilson(300, 1000)
    assert hi2 - lo2 < hi - lo
    assert wilson(0, 0) == (0.0, 1.0)


def test_p_better_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    a = rng.beta(1 + 12, 1 + 8, 200_000)
    b = rng.beta(1 + 15, 1 + 5, 200_000)
    assert p_better(12, 20, 15, 20) == pytest.approx(float((b > a).mean()), abs=0.005)


def test_no_decision_before_the_minimum() -> None:
    rule = Rule(min_rated=20)
    assert decide(Counts(19, 0, 19, 19), rule).action == "continue"
    assert decide(Counts(20, 0, 20, 20), rule).action == "promote"


@pytest.mark.parametrize(("rate_a", "rate_b", "right"), [
    (0.5, 0.8, "promote"), (0.5, 0.75, "promote"), (0.8, 0.5, "keep"), (0.3, 0.6, "promote"),
])
def test_known_difference_is_decided_right_in_95_percent(rate_a: float, rate_b: float,
                                                         right: str) -> None:
    rng = np.random.default_rng(13)
    rule = Rule()
    decisions = [simulate(rate_a, rate_b, rule, rng).action for _ in range(400)]
    assert decisions.count(right) / len(decisions) >= 0.95


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_no_difference_wrongly_promotes_at_most_5_percent(rate: float) -> None:
    rng = np.random.default_rng(7)
    rule = Rule()
    decisions = [simulate(rate, rate, rule, rng) for _ in range(400)]
    promoted = sum(d.action == "promote" for d in decisions)
    assert promoted / len(decisions) <= 0.05
    # and it stops early for "no difference" rather than running to the cap most of the time
    assert np.mean([d.look for d in decisions]) < rule.max_rated
