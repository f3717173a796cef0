"""Live A/B trials of a candidate adapter or system prompt against the serving one.

- `start_adapter_trial` / `start_prompt_trial` open a trial (one runs at a time). Only an
  adapter that passed the offline gate (verdict 'promote', files verified, bound to the base)
  can be a candidate; a rejected, failed or corrupt one is refused here and again each time an
  answer would be served from it.
- `serving(store, conversation_id, base_checksum)` is the turn loop's one call: a conversation
  started after the trial began gets an arm (a stable hash of trial and conversation, split
  `split` to the candidate, recorded in the store); it returns what that arm serves, or None
  when the chat should serve as usual (no trial, the incumbent arm, or a conversation older
  than the trial). It first reviews the trial, so a finished or stopped trial gives the
  incumbent back at the next turn.
- `review` counts accepted answers per arm (`ab_stats.is_accepted`), applies the stopping rule
  at each look and stores every look with its numbers; a decision promotes the candidate
  (`registry.activate`, or making the candidate prompt the active one) or keeps the incumbent.

This module decides; rows live in `memory.experiments`; statistics in `ab_stats`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters.training import ab_stats, registry
from adapters.training.ab_stats import Counts, Decision, Rule
from adapters.training.errors import AdapterError

Arm = Literal["incumbent", "candidate"]
RULE_KEY = "experiments.rule"


@dataclass(frozen=True)
class Serving:
    """What a conversation's arm serves; None fields mean "as usual"."""

    experiment_id: str
    arm: Arm
    adapter: dict[str, Any] | None = None
    """The registry row to serve instead of the active adapter (candidate adapter arm)."""
    prompt: tuple[int, str] | None = None
    """(version, text) to use instead of the active system prompt (candidate prompt arm)."""


@dataclass(frozen=True)
class Summary:
    """An experiment as the CLI and the app show it."""

    id: str
    kind: str
    status: str
    incumbent: str
    candidate: str
    started_at: str
    ended_at: str | None
    reason: str | None
    decision: Decision
    rule: Rule
    looks: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[str, int] = field(default_factory=dict)


def rule_for(store: Any, experiment: dict[str, Any] | None = None) -> Rule:
    """The experiment's rule as stored at its start, else the user's setting, else defaults."""
    if experiment and experiment.get("rule"):
        return Rule.from_dict(experiment["rule"])
    value = store.get_setting(RULE_KEY)
    return Rule.from_dict(value if isinstance(value, dict) else None)


def passed_gate(row: dict[str, Any]) -> bool:
    """True for a version the offline gate promoted and that is not marked bad since."""
    return row.get("verdict") == "promote" and row.get("status") in ("candidate", "active", "retired")


def _check_candidate(row: dict[str, Any], base_checksum: str | None) -> Path:
    if not passed_gate(row):
        raise AdapterError(f"adapter {row['id']} did not pass the offline gate "
                           f"(status {row.get('status')}, verdict {row.get('verdict')}); only a "
                           "gated candidate can go on trial")
    return registry.servable(row, base_checksum)


def start_adapter_trial(store: Any, version: str, base_checksum: str | None,
                        rule: Rule | None = None, split: float = 0.5, note: str | None = None) -> str:
    """Put a gated candidate adapter on trial against the serving one; returns the trial id."""
    row = registry.get(store, version)
    _check_candidate(row, base_checksum)
    active = store.active_adapter()
    if active is not None and active["id"] == version:
        raise AdapterError(f"{version} is already the serving adapter; pick a candidate "
                           "(`hearth adapters list`)")
    rule = rule or rule_for(store)
    return str(store.add_experiment("adapter", candidate_adapter=version,
                                    incumbent_adapter=active["id"] if active else None,
                                    split=split, rule=rule.to_dict(), note=note))


def start_prompt_trial(store: Any, text: str, rule: Rule | None = None, split: float = 0.5,
                       note: str | None = None) -> str:
    """Put a candidate system prompt on trial against the active one; returns the trial id."""
    incumbent, current = store.active_system_prompt()
    if text.strip() == current.strip():
        raise AdapterError("that prompt is the one already serving; give a different text")
    rule = rule or rule_for(store)
    return str(store.add_experiment("prompt", candidate_prompt_text=text, incumbent_prompt=incumbent,
                                    split=split, rule=rule.to_dict(), note=note))


def arm_of(experiment_id: str, conversation_id: str, split: float) -> Arm:
    """The arm a conversation gets: a stable hash, `split` of them to the candidate.

    >>> arm_of("e1", "c1", 0.5) == arm_of("e1", "c1", 0.5)
    True
    """
    digest = hashlib.sha256(f"{experiment_id}:{conversation_id}".encode()).digest()
    return "candidate" if int.from_bytes(digest[:8], "big") / 2**64 < split else "incumbent"


def serving(store: Any, conversation_id: str, base_checksum: str | None) -> Serving | None:
    """What this conversation's turn serves (None: as usual). Reviews the trial first."""
    experiment = store.running_experiment()
    if experiment is None:
        return None
    eid = experiment["id"]
    if experiment["kind"] == "adapter":
        row = registry.get(store, experiment["candidate_adapter"])
        if not passed_gate(row):
            stop(store, eid, f"candidate {row['id']} is now {row.get('status')}: never served")
            return None
    review(store, experiment)
    experiment = store.running_experiment()
    if experiment is None:
        return None
    known = store.conversation_arm(conversation_id)
    if known is None:
        created = store.conversation_created(conversation_id)
        if created is None or created < experiment["started_at"]:
            return None  # conversations from before the trial stay with the incumbent
        arm = store.assign_arm(eid, conversation_id, arm_of(eid, conversation_id,
                                                             float(experiment["split"])))
    elif known[0] != eid:
        return None
    else:
        arm = known[1]
    if arm != "candidate":
        return Serving(eid, "incumbent")
    if experiment["kind"] == "prompt":
        version = int(experiment["candidate_prompt"])
        return Serving(eid, "candidate", prompt=(version, store.get_system_prompt(version)))
    try:
        row = registry.get(store, experiment["candidate_adapter"])
        _check_candidate(row, base_checksum)
    except AdapterError as exc:
        stop(store, eid, f"candidate can no longer be served: {exc}")
        return None
    return Serving(eid, "candidate", adapter=row)


def counts(store: Any, experiment_id: str) -> Counts:
    """Rated and accepted answers per arm while the trial ran."""
    tally = {"incumbent": [0, 0], "candidate": [0, 0]}
    for answer in store.experiment_answers(experiment_id):
        if answer.forgotten or answer.arm not in tally:
            continue
        ok = ab_stats.is_accepted(answer.kind, answer.text, answer.edited_text)
        if ok is None:
            continue
        tally[answer.arm][0] += 1
        tally[answer.arm][1] += int(ok)
    (n_a, acc_a), (n_b, acc_b) = tally["incumbent"], tally["candidate"]
    return Counts(n_a, acc_a, n_b, acc_b)


def review(store: Any, experiment: dict[str, Any] | str | None = None) -> Decision | None:
    """Apply the rule to a running trial; store a look the first time it is reached, and act
    on a decision. Returns the decision now (None: no trial running)."""
    if isinstance(experiment, str):
        experiment = store.get_experiment(experiment)
    if experiment is None:
        experiment = store.running_experiment()
    if not isinstance(experiment, dict) or experiment["status"] != "running":
        return None
    rule = rule_for(store, experiment)
    decision = ab_stats.decide(counts(store, experiment["id"]), rule)
    if decision.look is None:
        return decision
    looked = {d["look"] for d in store.experiment_decisions(experiment["id"])}
    if decision.look in looked:
        return decision  # the rule looks once per look: between looks nothing is decided
    store.add_experiment_decision(experiment["id"], decision.action, decision.to_dict(),
                                  decision.reason)
    if decision.action == "promote":
        _promote(store, experiment, decision)
    elif decision.action == "keep":
        store.end_experiment(experiment["id"], "kept", decision.reason)
    return decision


def _promote(store: Any, experiment: dict[str, Any], decision: Decision) -> None:
    if experiment["kind"] == "adapter":
        version = experiment["candidate_adapter"]
        try:
            row = registry.get(store, version)
            _check_candidate(row, row.get("base_checksum"))
            registry.activate(store, version, row.get("base_checksum"))
        except AdapterError as exc:
            store.end_experiment(experiment["id"], "stopped", f"won but cannot be served: {exc}")
            return
    store.end_experiment(experiment["id"], "promoted", decision.reason)


def stop(store: Any, experiment_id: str | None = None, reason: str = "stopped by the user") -> str:
    """End a running trial keeping the incumbent (the next turn serves it); returns its id."""
    experiment = (store.get_experiment(experiment_id) if experiment_id
                  else store.running_experiment())
    if experiment is None or experiment["status"] != "running":
        raise AdapterError("no experiment is running; start one with `hearth experiments start`")
    decision = ab_stats.decide(counts(store, experiment["id"]), rule_for(store, experiment))
    store.add_experiment_decision(experiment["id"], "stop", decision.to_dict(), reason)
    store.end_experiment(experiment["id"], "stopped", reason)
    return str(experiment["id"])


def summary(store: Any, experiment_id: str) -> Summary:
    e = store.get_experiment(experiment_id)
    rule = rule_for(store, e)
    if e["kind"] == "adapter":
        incumbent, candidate = e.get("incumbent_adapter") or "base model", str(e["candidate_adapter"])
    else:
        incumbent, candidate = f"prompt v{e['incumbent_prompt']}", f"prompt v{e['candidate_prompt']}"
    seen: dict[str, set[str]] = {"incumbent": set(), "candidate": set()}
    for answer in store.experiment_answers(experiment_id):
        if answer.arm in seen:
            seen[answer.arm].add(answer.conversation_id)
    return Summary(e["id"], e["kind"], e["status"], incumbent, candidate, e["started_at"],
                   e.get("ended_at"), e.get("reason"), ab_stats.decide(counts(store, e["id"]), rule),
                   rule, store.experiment_decisions(e["id"]), {k: len(v) for k, v in seen.items()})


def latest_id(store: Any) -> str | None:
    """The running trial, else the newest one."""
    running = store.running_experiment()
    if running is not None:
        return str(running["id"])
    rows = store.list_experiments()
    return str(rows[-1]["id"]) if rows else None
