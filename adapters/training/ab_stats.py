"""The statistics of a live A/B trial: what counts as accepted, intervals, the stopping rule.

Pure functions on counts (no store, no model), so the rule can be simulated many thousands
of times in a test and its error rates checked.

**Accepted** (an answer "worked"): the user accepted it, or edited it with a *small* change:
a word-level edit distance at most `SMALL_EDIT` (0.2) of the longer text. A rejection or a
heavier rewrite counts as not accepted. Why: fixing a name or a number means the answer was
right in substance and style; rewriting a third of it means the user had to write the answer
themselves, which is what a rejection says too. Unrated answers do not count either way.

**The rule** (`Rule`, a Bayesian beta-binomial rule with a fixed look schedule): each arm's
acceptance rate has a Beta(1 + accepted, 1 + not accepted) posterior. Nothing is decided
before `min_rated` rated answers *per arm*; then at every `look_every` further rated answers
(per arm) the rule
- promotes the candidate when P(candidate > incumbent) >= `promote_prob` (0.997),
- keeps the incumbent when P(candidate > incumbent) <= 1 - `promote_prob` (it is clearly worse),
- keeps the incumbent when P(|difference| < `margin`) >= `same_prob` (no difference worth
  having: 0.15 absolute, 95%),
- and at `max_rated` per arm stops, keeping the incumbent.
Error rates, by simulation (1000 trials each, `tests/adapters/test_ab_stats.py` checks them
again): with no true difference it wrongly promotes 1.1-1.5% of trials (rates 0.2, 0.5, 0.8);
with a true difference of +0.25 (0.50 -> 0.75) it promotes in 99.7%, +0.20 in 94%; a candidate
0.25 worse is kept out in 99.6%. Looking at every answer instead of every 10 would inflate
the wrong promotions, which is why looks are spaced.

>>> round(wilson(8, 10)[0], 3), round(wilson(8, 10)[1], 3)
(0.49, 0.943)
>>> round(p_better(10, 20, 18, 20), 4) > 0.99
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

SMALL_EDIT = 0.2
Action = Literal["continue", "promote", "keep"]


def word_edit_distance(a: str, b: str) -> float:
    """Levenshtein distance over words, divided by the longer text's word count (0..1).

    >>> word_edit_distance("the cat sat", "the cat sat")
    0.0
    >>> word_edit_distance("the cat sat on the mat", "the dog sat on the mat")
    0.16666666666666666
    """
    x, y = a.split(), b.split()
    if not x and not y:
        return 0.0
    previous = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        current = [i]
        for j, wy in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (wx != wy)))
        previous = current
    return previous[-1] / max(len(x), len(y))


def is_accepted(kind: str | None, original: str, edited: str | None) -> bool | None:
    """True (accepted / small edit), False (rejected / heavy edit), None (not rated)."""
    if kind == "accepted":
        return True
    if kind == "rejected":
        return False
    if kind == "edited":
        return word_edit_distance(original, edited or "") <= SMALL_EDIT
    return None


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for a binomial proportion; (0, 1) at n=0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def p_better(acc_a: int, n_a: int, acc_b: int, n_b: int) -> float:
    """P(rate_B > rate_A) under uniform priors, exactly (Evan Miller's closed form)."""
    alpha_a, beta_a = 1 + acc_a, 1 + n_a - acc_a
    alpha_b, beta_b = 1 + acc_b, 1 + n_b - acc_b
    total = 0.0
    for i in range(alpha_b):
        total += math.exp(_lbeta(alpha_a + i, beta_a + beta_b) - math.log(beta_b + i)
                          - _lbeta(1 + i, beta_b) - _lbeta(alpha_a, beta_a))
    return min(1.0, max(0.0, total))


def p_within(acc_a: int, n_a: int, acc_b: int, n_b: int, margin: float) -> float:
    """P(|rate_B - rate_A| < margin), normal approximation to the two Beta posteriors."""
    def moments(acc: int, n: int) -> tuple[float, float]:
        mean = (1 + acc) / (2 + n)
        return mean, mean * (1 - mean) / (3 + n)

    (ma, va), (mb, vb) = moments(acc_a, n_a), moments(acc_b, n_b)
    sd, diff = math.sqrt(va + vb), mb - ma

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    return cdf((margin - diff) / sd) - cdf((-margin - diff) / sd)


@dataclass(frozen=True)
class Rule:
    """The stopping rule's settings (see the module docstring for its error rates)."""

    min_rated: int = 20
    """Rated answers per arm before any decision."""
    look_every: int = 10
    """Rated answers per arm between looks after the minimum."""
    max_rated: int = 200
    """Per arm: stop here and keep the incumbent."""
    promote_prob: float = 0.997
    """P(candidate better) needed to promote (and 1 - it to stop as clearly worse)."""
    margin: float = 0.15
    """An acceptance difference smaller than this is 'no difference'."""
    same_prob: float = 0.95
    """P(|difference| < margin) needed to stop for no difference."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Rule:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (data or {}).items() if k in fields})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def look_at(self, n: int) -> int | None:
        """The latest look reached with `n` rated answers per arm (None: before the first)."""
        if n < self.min_rated:
            return None
        return min(self.max_rated, self.min_rated + (n - self.min_rated) // self.look_every
                   * self.look_every)


@dataclass(frozen=True)
class Counts:
    """Rated and accepted answers per arm (A = incumbent, B = candidate)."""

    n_a: int
    acc_a: int
    n_b: int
    acc_b: int


@dataclass(frozen=True)
class Decision:
    """What the rule says at one look, with the numbers it rests on."""

    action: Action
    reason: str
    counts: Counts
    p_better: float
    p_same: float
    look: int | None
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(counts: Counts, rule: Rule) -> Decision:
    """Apply the rule to the counts now (the caller stores looks it has not stored yet)."""
    c = counts
    look = rule.look_at(min(c.n_a, c.n_b))
    pb = p_better(c.acc_a, c.n_a, c.acc_b, c.n_b)
    ps = p_within(c.acc_a, c.n_a, c.acc_b, c.n_b, rule.margin)
    ia, ib = wilson(c.acc_a, c.n_a), wilson(c.acc_b, c.n_b)

    def out(action: Action, reason: str) -> Decision:
        return Decision(action, reason, c, pb, ps, look, ia, ib)

    rates = (f"incumbent {c.acc_a}/{c.n_a}, candidate {c.acc_b}/{c.n_b}, "
             f"P(candidate better) {pb:.3f}")
    if look is None:
        return out("continue", f"{min(c.n_a, c.n_b)}/{rule.min_rated} rated answers per arm "
                   f"before any decision ({rates})")
    if pb >= rule.promote_prob:
        return out("promote", f"candidate clearly better: {rates}")
    if pb <= 1 - rule.promote_prob:
        return out("keep", f"candidate clearly worse: {rates}")
    if ps >= rule.same_prob:
        return out("keep", f"no difference worth having (P(|diff| < {rule.margin:g}) "
                   f"{ps:.3f}): {rates}")
    if look >= rule.max_rated:
        return out("keep", f"{rule.max_rated} rated answers per arm without a clear winner: "
                   f"{rates}")
    return out("continue", f"no decision yet: {rates}")


def simulate(rate_a: float, rate_b: float, rule: Rule, rng: Any) -> Decision:
    """One trial with Bernoulli arms of known rates, looked at on the rule's schedule.

    `rng` is a numpy Generator; returns the stopping decision."""
    a = rng.random(rule.max_rated) < rate_a
    b = rng.random(rule.max_rated) < rate_b
    n = rule.min_rated
    while True:
        decision = decide(Counts(n, int(a[:n].sum()), n, int(b[:n].sum())), rule)
        if decision.action != "continue" or n >= rule.max_rated:
            return decision
        n = min(rule.max_rated, n + rule.look_every)
