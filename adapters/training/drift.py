"""Drift monitor: is the serving adapter going stale?

Two signals, either marks the active adapter stale (a setting the refresh policy reads: the
next scheduled refresh then trains even without `min_new_accepted` new answers):
- **acceptance**: the 95% Wilson interval of the last `window` rated answers it served lies
  wholly below the interval of its *launch rate* (its first `window` rated answers, or its
  arm's answers in the A/B trial that promoted it): "clearly below", so that checking after
  every answer rarely raises a false alarm (two disjoint 95% intervals: p < 0.01 each look).
  With a window of 20, a fall from 0.85 to 0.2 is flagged within the window (test_drift).
- **questions**: the cosine distance between the centroid of the last `window` questions and
  the centroid of the questions the adapter was trained on (its manifest's message ids)
  exceeds `max_question_distance` (needs an embedder; skipped without one).
The mark names the version, so promoting another adapter clears it. This module reads the
store and writes one setting; it does not train.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adapters.training import ab_stats, registry
from adapters.training.errors import AdapterError

STALE_KEY = "adapters.stale"
SETTINGS_KEY = "adapters.training.drift"


@dataclass(frozen=True)
class DriftConfig:
    """Settings of the drift monitor (stored under `adapters.training.drift`)."""

    window: int = 20
    """Rated answers in the rolling window (and in the launch sample)."""
    max_question_distance: float = 0.35
    """Centroid cosine distance between recent and trained-on questions that counts as drift."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DriftConfig:
        return cls(**{k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DriftReport:
    """What the monitor saw for the serving adapter (version None: the base model serves)."""

    version: str | None
    stale: bool
    reasons: list[str] = field(default_factory=list)
    launch: tuple[int, int] | None = None
    """(accepted, rated) at launch."""
    window: tuple[int, int] | None = None
    """(accepted, rated) in the rolling window."""
    question_distance: float | None = None

    def summary(self) -> str:
        if self.version is None:
            return "the base model serves: nothing to go stale"
        if self.stale:
            return f"adapter {self.version} is stale: " + "; ".join(self.reasons)
        parts = [f"adapter {self.version} fresh"]
        if self.window and self.launch:
            parts.append(f"acceptance {self.window[0]}/{self.window[1]} recently vs "
                         f"{self.launch[0]}/{self.launch[1]} at launch")
        elif self.launch is None:
            parts.append("not enough rated answers yet to know its launch rate")
        if self.question_distance is not None:
            parts.append(f"question distance {self.question_distance:.2f}")
        return ", ".join(parts)


def _ok(answers: list[Any]) -> tuple[int, int]:
    votes = [ab_stats.is_accepted(a.kind, a.text, a.edited_text) for a in answers if not a.forgotten]
    rated = [v for v in votes if v is not None]
    return sum(rated), len(rated)


def launch_rate(store: Any, version: str, window: int) -> tuple[int, int] | None:
    """(accepted, rated) when `version` started serving; None until `window` are rated."""
    for e in reversed(store.list_experiments()):
        if e.get("candidate_adapter") == version and e.get("status") == "promoted":
            from adapters.training.experiments import counts

            c = counts(store, e["id"])
            if c.n_b >= window:
                return c.acc_b, c.n_b
    served = list(reversed(store.rated_answers(adapter_version=version)))  # oldest first
    if len(served) < window:
        return None
    return _ok(served[:window])


def _question(messages: list[dict[str, str]] | None) -> str | None:
    for m in reversed(messages or []):
        if m.get("role") == "user":
            return m.get("content")
    return None


def question_distance(store: Any, row: dict[str, Any], window: int, embedder: Any) -> float | None:
    """Cosine distance between recent questions' centroid and the trained-on questions'."""
    try:
        ids = registry.read_manifest(Path(row["path"])).get("message_ids", [])
    except (AdapterError, KeyError, TypeError):
        return None
    trained = []
    for mid in ids:
        try:
            q = _question(store.get_message(mid).prompt_messages)
        except Exception:  # noqa: BLE001 - a forgotten answer simply no longer counts
            continue
        if q:
            trained.append(q)
    recent = store.recent_questions(window, since=row.get("updated_at"))
    if len(trained) < 2 or len(recent) < window // 2:
        return None
    a = np.asarray(embedder.embed(trained), dtype=np.float64).mean(axis=0)
    b = np.asarray(embedder.embed(recent), dtype=np.float64).mean(axis=0)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
    return 1.0 - float(a @ b) / denom


def check(store: Any, config: DriftConfig | None = None, embedder: Any = None,
          mark: bool = True) -> DriftReport:
    """Look at the serving adapter now; with `mark`, store (or clear) the stale mark."""
    if config is None:
        value = store.get_setting(SETTINGS_KEY)
        config = DriftConfig.from_dict(value if isinstance(value, dict) else None)
    row = store.active_adapter()
    if row is None:
        if mark:
            store.set_setting(STALE_KEY, None)
        return DriftReport(None, False)
    version = str(row["id"])
    reasons: list[str] = []
    launch = launch_rate(store, version, config.window)
    window = _ok(store.rated_answers(adapter_version=version, limit=config.window))
    if launch is not None and window[1] >= config.window:
        upper, lower = ab_stats.wilson(*window)[1], ab_stats.wilson(*launch)[0]
        if upper < lower:
            reasons.append(f"acceptance fell to {window[0]}/{window[1]} (95% upper bound "
                           f"{upper:.2f}) from {launch[0]}/{launch[1]} at launch (lower bound "
                           f"{lower:.2f})")
    distance = question_distance(store, row, config.window, embedder) if embedder else None
    if distance is not None and distance > config.max_question_distance:
        reasons.append(f"questions moved away from its training data (centroid distance "
                       f"{distance:.2f} > {config.max_question_distance:g})")
    report = DriftReport(version, bool(reasons), reasons, launch, window, distance)
    if mark:
        previous = stale_mark(store)
        if report.stale:
            store.set_setting(STALE_KEY, {"version": version, "reasons": reasons,
                                          "at": registry.now_iso(), "report": asdict(report)})
        elif previous is not None and previous.get("version") != version:
            store.set_setting(STALE_KEY, None)  # another adapter serves now
    return report


def stale_mark(store: Any) -> dict[str, Any] | None:
    value = store.get_setting(STALE_KEY)
    return value if isinstance(value, dict) else None


def stale_reason(store: Any) -> str | None:
    """Why the serving adapter is marked stale (None: it is not, or another one serves)."""
    mark = stale_mark(store)
    active = store.active_adapter()
    if mark is None or active is None or mark.get("version") != active["id"]:
        return None
    return f"adapter {mark['version']} is stale: " + "; ".join(mark.get("reasons") or [])
