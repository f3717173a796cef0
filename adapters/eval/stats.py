"""Summaries of per-item scores: means, and bootstrap intervals paired by item.

A condition's `nll` is the token-weighted mean of its items' per-token NLLs, which equals
`adapters.training.evaluate.answer_nll` over the whole set; `f1`, `rougeL` and `content_f1` are plain
means over items. Intervals are 95% percentile bootstraps over held-out items (seeded, so a rerun prints
the same numbers); a difference between two conditions resamples the *same* items for both,
which is what makes a small held-out set still informative. Pure numpy; no model here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.eval.measure import Scored

METRICS = ("nll", "f1", "rougeL", "content_f1")
LOWER_IS_BETTER = {"nll": True, "f1": False, "rougeL": False, "content_f1": False,
                   "probe_nll": True}


@dataclass(frozen=True)
class Interval:
    """A point estimate with a 95% bootstrap interval."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass
class Summary:
    """One condition over the held-out items."""

    nll: float
    f1: float
    rougeL: float  # noqa: N815 - the metric's usual name, also the JSON key
    content_f1: float
    n: int
    tokens: int
    probe_nll: float | None = None
    ci: dict[str, Interval] = field(default_factory=dict)
    """95% interval of each metric's mean."""
    delta: dict[str, Interval] = field(default_factory=dict)
    """Condition minus base, paired by item (empty for base itself)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nll": self.nll, "f1": self.f1, "rougeL": self.rougeL,
                               "content_f1": self.content_f1, "n": self.n, "tokens": self.tokens}
        if self.probe_nll is not None:
            out["probe_nll"] = self.probe_nll
        out["ci"] = {k: v.to_dict() for k, v in self.ci.items()}
        out["delta_vs_base"] = {k: v.to_dict() for k, v in self.delta.items()}
        return out


def columns(items: Sequence[Scored]) -> dict[str, np.ndarray]:
    """Per-item arrays: nll, tokens, f1, rougeL, content_f1."""
    return {
        "nll": np.array([s.nll for s in items], dtype=np.float64),
        "tokens": np.array([s.tokens for s in items], dtype=np.float64),
        "f1": np.array([s.f1 for s in items], dtype=np.float64),
        "rougeL": np.array([s.rougeL for s in items], dtype=np.float64),
        "content_f1": np.array([s.content_f1 for s in items], dtype=np.float64),
    }


def metric(cols: dict[str, np.ndarray], name: str, idx: np.ndarray | None = None) -> Any:
    """A metric over items (or over rows of resampled indices `idx`, one value per row).

    >>> cols = {"nll": np.array([1.0, 4.0]), "tokens": np.array([3.0, 1.0]),
    ...         "f1": np.array([0.5, 1.0]), "rougeL": np.array([0.0, 1.0])}
    >>> float(metric(cols, "nll")), float(metric(cols, "f1"))
    (1.75, 0.75)
    """
    if idx is None:
        idx = np.arange(len(cols["nll"]))[None, :]
        return metric(cols, name, idx)[0]
    if name == "nll":
        weights = cols["tokens"][idx]
        return (cols["nll"][idx] * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1)
    return cols[name][idx].mean(axis=1)


def resample(n: int, reps: int = 2000, seed: int = 0) -> np.ndarray:
    """`reps` rows of `n` item indices drawn with replacement (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(reps, n))


def interval(values: np.ndarray, point: float) -> Interval:
    low, high = np.percentile(values, [2.5, 97.5])
    return Interval(float(point), float(low), float(high))


def summarize(
    by_condition: dict[str, list[Scored]],
    probe: dict[str, float | None] | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, Summary]:
    """A Summary per condition, deltas against "base" paired by item."""
    cols = {name: columns(items) for name, items in by_condition.items()}
    n = len(next(iter(by_condition.values()), []))
    idx = resample(n, reps, seed) if n else np.zeros((0, 0), dtype=np.int64)
    out: dict[str, Summary] = {}
    for name, c in cols.items():
        points = {m: float(metric(c, m)) if n else float("nan") for m in METRICS}
        summary = Summary(points["nll"], points["f1"], points["rougeL"], points["content_f1"], n,
                          int(c["tokens"].sum()), (probe or {}).get(name))
        if n:
            for m in METRICS:
                summary.ci[m] = interval(metric(c, m, idx), points[m])
                if name != "base" and "base" in cols:
                    diff = metric(c, m, idx) - metric(cols["base"], m, idx)
                    summary.delta[m] = interval(diff, points[m] - float(metric(cols["base"], m)))
        out[name] = summary
    return out


def verdict(delta: Interval, name: str) -> str:
    """'better', 'worse' or 'no clear change': does the 95% interval exclude zero?

    >>> verdict(Interval(-0.3, -0.5, -0.1), "nll"), verdict(Interval(0.1, -0.02, 0.2), "f1")
    ('better', 'no clear change')
    """
    lower_better = LOWER_IS_BETTER.get(name, False)
    if delta.high < 0:
        return "better" if lower_better else "worse"
    if delta.low > 0:
        return "worse" if lower_better else "better"
    return "no clear change"
