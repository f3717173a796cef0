"""One refresh: decide whether to train, train a candidate, gate it, promote or keep it.

`refresh(store, model, policy, config)`:
1. takes the refresh lock (a second refresh gets status "busy"), cleans up after a killed one;
2. skips, with the reason logged, on battery or while the user is chatting (configurable;
   `force` overrides);
3. builds the dataset snapshot from the store's accepted answers; below the cold-start
   minimum nothing is trained ("12/20 accepted answers"); an active adapter trained on answers
   the user has since forgotten is switched off if it cannot be replaced;
4. trains only with enough new accepted answers since the active adapter (or when forgotten
   rows invalidate it), resuming a killed run of the same data and settings;
5. measures candidate and reference (active adapter, else base) with the shared evaluator,
   asks the gate, and records the version, promoting it atomically when it passed; a best
   candidate rejected only for general behaviour (personal gain met) steps back to the run's
   earlier bests (`train.KEEP_EARLIER`), newest first, and the first that passes is the version.

Every decision is appended to `logs/refresh.jsonl` (with training progress), which the TUI
can tail. This module holds policy and orchestration; the parts live in dataset, train,
evaluate, gate and registry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from adapters.jobs import conditions
from adapters.training import drift, evaluate, files, gate, registry
from adapters.training.config import DataConfig, GateConfig, RefreshPolicy, TrainConfig
from adapters.training.dataset import Snapshot, make_snapshot
from adapters.training.errors import AdapterError
from adapters.training.evaluate import probe_digest
from adapters.training.gate import Verdict
from adapters.training.train import train_adapter
from agent.foundation import paths
from agent.foundation.errors import ModelError
from agent.foundation.ids import now_iso
from agent.llm import models

if TYPE_CHECKING:
    from memory.store import Store

Progress = Callable[[dict[str, Any]], None]
LOG_NAME = "refresh.jsonl"
BASE_PROBE_KEY = "adapters.base_probe"


RefreshStatus = Literal["busy", "skipped", "cold_start", "up_to_date", "deactivated",
                        "promoted", "rejected", "trial", "candidate"]


@dataclass
class RefreshResult:
    """What a refresh did (`status`) and why (`reason`)."""

    status: RefreshStatus
    reason: str
    version: str | None = None
    verdict: Verdict | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        return self.status in ("promoted", "rejected")


def log_path() -> Path:
    return paths.logs_dir() / LOG_NAME


class _Log:
    """Appends events to refresh.jsonl and forwards them to the caller's progress hook."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.path = log_path()

    def __call__(self, event: dict[str, Any]) -> None:
        event = {"time": round(time.time(), 3), **event}
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a") as fh:
            fh.write(json.dumps(event, default=str) + "\n")
        if self.progress is not None:
            self.progress(event)

    def result(self, result: RefreshResult) -> RefreshResult:
        self({"event": "result", "status": result.status, "reason": result.reason,
              "version": result.version, **result.counts})
        return result


def resolve_base(model: Any) -> registry.Base:
    """A Base from a Runtime (its `.ref`), a ModelRef, or a model folder path."""
    ref = getattr(model, "ref", model)
    if hasattr(ref, "checksum") and hasattr(ref, "path"):
        return registry.Base(str(ref.id), Path(ref.path), str(ref.checksum))

    resolved = models.resolve(str(model)) if model is not None else models.resolve(None)
    return registry.Base(resolved.id, Path(resolved.path), resolved.checksum)


def refresh(
    store: Store,
    model: Any = None,
    policy: RefreshPolicy | None = None,
    config: TrainConfig | None = None,
    gate_config: GateConfig | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> RefreshResult:
    """Run one refresh (see the module docstring). `model`: Runtime, ModelRef or folder path;
    its weights are loaded afresh, so a chat's loaded model is never modified."""
    policy, config = policy or RefreshPolicy(), config or TrainConfig()
    log = _Log(progress)
    try:
        with conditions.refresh_lock():
            for note in registry.recover(store):
                log({"event": "recover", "note": note})
            try:
                result = _refresh(store, resolve_base(model), policy, config,
                                  gate_config or GateConfig(), log, force)
            finally:  # versions trained on forgotten answers go, even after a failed run
                for note in _purge_forgotten(store):
                    log({"event": "recover", "note": note})
            return log.result(result)
    except conditions.RefreshBusy as exc:
        return log.result(RefreshResult("busy", str(exc)))


def _refresh(store: Store, base: registry.Base, policy: RefreshPolicy, config: TrainConfig,
             gate_config: GateConfig, log: _Log, force: bool) -> RefreshResult:
    if not force and (why := skip_reason(store, policy)):
        return RefreshResult("skipped", why)
    snapshot = build_snapshot(store, policy, data_config(store))
    gauge = cold_start(store, policy, snapshot)
    n, new = gauge.count, gauge.new
    active = store.active_adapter()
    forgotten = (_forgotten_ids(store) & _trained_ids(active)) | (
        _trained_ids(active, "memory_ids") - set(snapshot.memory_ids) - _current_memories(store))
    counts = {"accepted": n, "new": new, "forgotten_in_active": len(forgotten),
              **{f"examples_{k}": v for k, v in snapshot.counts().items()}}
    stale = _stale(store, log)
    if not gauge.reached:
        if forgotten and active is not None:
            store.set_active_adapter(None)
            return RefreshResult("deactivated", f"adapter {active['id']} was trained on "
                                 f"{len(forgotten)} forgotten answer(s) and only {n}/"
                                 f"{policy.min_accepted} accepted answers remain to retrain; "
                                 "the base model serves", counts=counts)
        return RefreshResult("cold_start", gauge.reason, counts=counts)
    if not force and not forgotten and not stale:
        if not gauge.enough_new:
            return RefreshResult("up_to_date", gauge.reason, counts=counts)
        if (same := _same_run(store, snapshot, config)) is not None:
            return RefreshResult("up_to_date", f"{same['id']} was already trained on exactly "
                                 f"this data ({same['status']}): accept more answers",
                                 version=same["id"], counts=counts)
    log({"event": "plan", "line": plan_line(snapshot, new, _latest_trained(store), config,
                                            forgotten, force, stale)})
    result = train_and_judge(store, base, snapshot, config, gate_config, log,
                             trust_active=not forgotten)
    if forgotten and active is not None and result.status == "rejected":
        store.set_active_adapter(None)
        result.status = "deactivated"
        result.reason += (f"; {active['id']} was trained on forgotten answers, so the base "
                          "model serves now")
    result.counts.update(counts)
    return result


def data_config(store: Store) -> DataConfig:
    """The user's DataConfig (setting adapters.data), defaults otherwise."""
    value = store.get_setting("adapters.data")
    return DataConfig.from_dict(value if isinstance(value, dict) else {})


def build_snapshot(store: Store, policy: RefreshPolicy, data: DataConfig) -> Snapshot:
    """The store's accepted answers and current memories as an augmented snapshot."""
    _, system = store.active_system_prompt()
    return make_snapshot(store.accepted_examples(), policy.valid_fraction, policy.min_valid,
                         memories=store.list_memories(), data=data, system_prompt=system)


def _current_memories(store: Store) -> set[str]:
    return {str(m.id) for m in store.list_memories()}


def plan_line(snapshot: Snapshot, new: int, latest: dict[str, Any] | None, config: TrainConfig,
              forgotten: set[str], force: bool, stale: str | None = None) -> str:
    """One line: what this refresh will train on and for how long, and why it trains now."""
    c = snapshot.counts()
    since = f"since {latest['id']}" if latest else "(first adapter)"
    why = ("forced" if force else f"{len(forgotten)} forgotten source(s) in the active adapter"
           if forgotten else f"stale ({stale})" if stale else "enough new answers" if latest
           else "cold start reached")
    steps, budget = config.plan(len(snapshot.train), snapshot.mean_tokens())
    return (f"plan: {len(snapshot)} accepted ({new} new {since}), {c['memories']} memories -> "
            f"{c['train']} training examples ({c['rewrite']} rewrites, {c['memory'] + c['repeat']} "
            f"from memories, {c['anchor']} everyday anchors), {c['valid']} held out, "
            f"{c['quiz']} quiz phrasings; {steps} steps, "
            f"budget {budget}; training because: {why}")


def _stale(store: Any, log: _Log) -> str | None:
    """Run the drift monitor; a stale serving adapter is retrained without waiting for
    `min_new_accepted` new answers."""
    try:
        drift.check(store, embedder=getattr(store, "embedder", None))
        reason = drift.stale_reason(store)
    except Exception as exc:  # noqa: BLE001 - the monitor must never stop a refresh
        log({"event": "warning", "note": f"drift check failed: {exc}"})
        return None
    if reason:
        log({"event": "stale", "note": reason})
    return reason


@dataclass(frozen=True)
class ColdStart:
    """How far the store is from the next training, counted the way `refresh` decides (the
    app's gauge shows this record, so the gauge and the refresh cannot disagree)."""

    count: int
    """Accepted or edited answers in the dataset (deduplicated, forgotten ones left out)."""
    needed: int
    """Below this many nothing is trained (`RefreshPolicy.min_accepted`)."""
    new: int
    """Of those, answers the latest trained version (kept or not) was not trained on."""
    new_needed: int
    """New answers a refresh waits for after a trained version (`min_new_accepted`)."""
    latest: str | None
    """The latest trained version (None: none yet)."""
    reason: str
    """One line saying where this leaves the next refresh."""

    @property
    def reached(self) -> bool:
        """Enough accepted answers to train at all."""
        return self.count >= self.needed

    @property
    def enough_new(self) -> bool:
        """Enough new answers to train again (always, before the first version)."""
        return self.latest is None or self.new >= self.new_needed


def cold_start(store: Store, policy: RefreshPolicy | None = None,
               snapshot: Snapshot | None = None) -> ColdStart:
    """The cold-start count: the dataset a refresh would build now, against `policy` (the
    user's stored one by default) and the latest trained version."""
    policy = policy or settings(store)[2]
    if snapshot is None:
        snapshot = make_snapshot(store.accepted_examples(), policy.valid_fraction,
                                 policy.min_valid)
    latest = _latest_trained(store)  # new data counts from the last version trained, kept or not
    n = len(snapshot)
    new = len(set(snapshot.message_ids) - _trained_ids(latest))
    if n < policy.min_accepted:
        reason = (f"{n}/{policy.min_accepted} accepted answers: the adapter trains from "
                  "there; prompt examples and retrieval personalise until then")
    elif latest is not None and new < policy.min_new_accepted:
        reason = (f"{new}/{policy.min_new_accepted} new accepted answers since {latest['id']} "
                  f"({latest['status']}): nothing to retrain")
    elif latest is None:
        reason = f"{n} accepted answers: enough to train the first adapter"
    else:
        reason = f"{new} new accepted answers since {latest['id']}: enough to retrain"
    return ColdStart(n, int(policy.min_accepted), new, int(policy.min_new_accepted),
                     None if latest is None else str(latest["id"]), reason)


def skip_reason(store: Store, policy: RefreshPolicy) -> str | None:
    """Why not to train now (battery, an active user), or None."""
    if policy.skip_on_battery and conditions.on_battery():
        return "on battery power: refresh waits for mains (or run `hearth refresh --force`)"
    if policy.skip_if_active_minutes > 0:
        idle = conditions.minutes_since_activity(store)
        if idle is not None and idle < policy.skip_if_active_minutes:
            return (f"you chatted {idle:.0f} min ago (< {policy.skip_if_active_minutes:g}): "
                    "refresh waits so the chat stays fast (or use --force)")
    return None


def _purge_forgotten(store: Store) -> list[str]:
    """Delete retired/rejected versions trained on forgotten answers (never the active one)."""
    if not _forgotten_ids(store):
        return []
    try:
        return registry.purge_forgotten(store, runs=False)
    except AttributeError:  # a store without forget tracking
        return []


def _latest_trained(store: Store) -> dict[str, Any] | None:
    """The newest version that finished training and still has its files."""
    for row in reversed(store.list_adapter_versions()):
        if registry.has_files(row) and row.get("status") in ("active", "candidate", "rejected", "retired"):
            return dict(row)
    return None


def _trained_ids(row: Mapping[str, Any] | None, key: str = "message_ids") -> set[str]:
    if not row or not registry.has_files(row):
        return set()
    return registry.trained_on(row["id"], key)


def _forgotten_ids(store: Store) -> set[str]:
    try:
        return {str(r["message_id"]) for r in store.forgotten_since(None)}
    except AttributeError:  # a store without forget tracking: fall back to flags
        return {str(a.message_id) for a in store.accepted_examples(include_forgotten=True)
                if a.forgotten}


def _config_hash(config: TrainConfig) -> str:
    blob = json.dumps(config.to_dict(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _same_run(store: Store, snapshot: Snapshot, config: TrainConfig) -> dict[str, Any] | None:
    for row in reversed(store.list_adapter_versions()):
        if (row.get("dataset_snapshot") == snapshot.snapshot_id
                and row.get("hyperparams") == config.to_dict()
                and row.get("status") in ("active", "candidate", "rejected", "retired")):
            return dict(row)
    return None


def train_and_judge(store: Store, base: registry.Base, snapshot: Snapshot, config: TrainConfig,
                    gate_config: GateConfig, log: _Log, trust_active: bool = True) -> RefreshResult:
    """Train a candidate on `snapshot`, measure, gate and record it.

    The reference is the served adapter, or the base when `trust_active` is False (the active
    adapter learned forgotten answers and must not set the bar).
    """

    run_dir = registry.runs_root() / f"{snapshot.snapshot_id}-{_config_hash(config)}"
    registry.clear_runs(keep=run_dir)  # a killed run of other data: its copies go
    snapshot.write(run_dir)
    version = registry.begin(store, base, snapshot.snapshot_id, len(snapshot.train),
                             len(snapshot.valid), config.to_dict())
    log({"event": "training", "version": version, "n_train": len(snapshot.train),
         "n_valid": len(snapshot.valid)})
    try:
        model, tokenizer = _load(base)
        trained = train_adapter(model, tokenizer, run_dir, config, progress=log)
        verdict, metrics, reference = judge(store, base, model, tokenizer, snapshot,
                                            gate_config, log, trust_active)
        chosen, chosen_step, last = trained.adapter_dir, trained.best_step, verdict
        for earlier in trained.earlier if moved_too_far(verdict, gate_config) else []:
            step = int(json.loads((earlier / "best.json").read_text())["step"])
            log({"event": "step back", "step": step, "why": last.reason})
            evaluate.use_adapter(model, earlier)
            again, again_metrics, _ = judge(store, base, model, tokenizer, snapshot, gate_config,
                                            log, trust_active, reference)
            last = again
            if again.promote:
                again_metrics["stepped_back"] = {"from_step": trained.best_step, "to_step": step,
                                                 "rejected": verdict.reason}
                verdict, metrics, chosen, chosen_step = again, again_metrics, earlier, step
                break
        metrics["train"] = {"best_val_loss": trained.best_val_loss, "best_step": chosen_step,
                            "steps": trained.steps, "iters": trained.iters,
                            "stopped_early": trained.stopped_early,
                            "tokens_per_second": round(trained.tokens_per_second, 1)}
        lineage = {"base_model_id": base.id, "base_checksum": base.checksum,
                   "dataset_snapshot": snapshot.snapshot_id, "message_ids": snapshot.message_ids,
                   "memory_ids": snapshot.memory_ids, "examples": snapshot.counts(),
                   "hyperparams": config.to_dict(), "created_at": now_iso()}
        folder = registry.write_folder(version, chosen, lineage)
        registry.record(store, version, folder, verdict.promote, verdict.word, verdict.reason,
                        metrics)
    except BaseException as exc:
        registry.fail(store, version, f"{type(exc).__name__}: {exc}")
        raise
    files.remove_tree(run_dir)  # holds copies of the user's answers; the lineage stays
    status: RefreshStatus = "promoted" if verdict.promote else "rejected"
    return RefreshResult(status, f"{version} {status}: {verdict.reason}", version, verdict)


def moved_too_far(verdict: Verdict, gate_config: GateConfig) -> bool:
    """Rejected although the personal gain was there: the general checks failed, so an earlier,
    less trained best of the same run may pass.

    >>> from adapters.training.gate import Scores
    >>> s = Scores(1.0, 4.0, n_valid=5)
    >>> moved_too_far(Verdict(False, "probe", s, s, checks={"personal_gain": 0.7}), GateConfig())
    True
    >>> moved_too_far(Verdict(False, "gain", s, s, checks={"personal_gain": 0.01}), GateConfig())
    False
    """
    return (not verdict.promote
            and verdict.checks.get("personal_gain", -math.inf) >= gate_config.min_improvement)


def _load(base: registry.Base) -> tuple[Any, Any]:
    from agent.llm import weights  # lazy: imports MLX

    try:
        return weights.load_model(base.path)  # the chat runtime's own loader
    except ModelError as exc:
        raise AdapterError(f"cannot load the base model at {base.path} ({exc}); "
                           "run `hearth doctor`") from exc


@dataclass
class Reference:
    """What a candidate is judged against, measured once per refresh: the reference's scores
    (active adapter, else base), the base's probe NLL and its probe log-probs (for the KL)."""

    scores: gate.Scores
    base_probe: float
    base_logprobs: Any


def judge(store: Store, base: registry.Base, model: Any, tokenizer: Any, snapshot: Snapshot,
          gate_config: GateConfig, log: _Log, trust_active: bool = True,
          reference: Reference | None = None) -> tuple[Verdict, dict[str, Any], Reference]:
    """Measure the candidate (loaded in `model`) and, unless `reference` is given (a step back
    in the same refresh), its reference; ask the gate. `model` is left serving the reference
    when it was measured here, else the candidate."""

    valid = [e.messages for e in snapshot.valid]
    log({"event": "evaluate", "what": "candidate"})
    candidate = gate.measure(model, tokenizer, valid, "candidate")
    candidate_logprobs = evaluate.probe_logprobs(model, tokenizer)
    if reference is None:
        reference = _measure_reference(store, base, model, tokenizer, valid, log, trust_active)
    kl = evaluate.mean_kl(reference.base_logprobs, candidate_logprobs)
    del candidate_logprobs
    candidate = replace(candidate, probe_kl=kl)
    verdict = gate.decide(candidate, reference.scores, gate_config, reference.base_probe)
    log({"event": "verdict", "promote": verdict.promote, "reason": verdict.reason})
    metrics = {**verdict.to_dict(), "probe": evaluate.probe_digest()}
    return verdict, metrics, reference


def _measure_reference(store: Store, base: registry.Base, model: Any, tokenizer: Any,
                       valid: list[evaluate.Messages], log: _Log, trust_active: bool) -> Reference:
    reference_dir, problems = registry.serving_path(store, base.checksum)
    if not trust_active:
        reference_dir = None
    for problem in problems:
        log({"event": "warning", "note": problem})
    log({"event": "evaluate", "what": reference_dir.name if reference_dir else "base"})
    base_probe = _cached_base_probe(store, base)
    evaluate.use_adapter(model, None)
    base_logprobs = evaluate.probe_logprobs(model, tokenizer)
    if base_probe is None:
        base_probe = evaluate.probe_nll(model, tokenizer).mean
        store.set_setting(BASE_PROBE_KEY, {"checksum": base.checksum, "nll": base_probe,
                                           "probe": evaluate.probe_digest()})
    if reference_dir is None:
        scores = gate.measure(model, tokenizer, valid, "base", probe=base_probe)
    else:
        evaluate.use_adapter(model, reference_dir)
        scores = gate.measure(model, tokenizer, valid, reference_dir.name,
                              probe=_recorded_probe(store, reference_dir.name))
    return Reference(scores, base_probe, base_logprobs)


def settings(store: Store) -> tuple[TrainConfig, GateConfig, RefreshPolicy]:
    """The user's settings stored under adapters.train / adapters.gate / adapters.refresh."""
    def get(key: str) -> dict[str, Any]:
        value = store.get_setting(key)
        return value if isinstance(value, dict) else {}

    return (TrainConfig.from_dict(get("adapters.train")), GateConfig.from_dict(get("adapters.gate")),
            RefreshPolicy.from_dict(get("adapters.refresh")))


def _recorded_probe(store: Store, version: str) -> float | None:
    """The probe NLL measured when `version` was judged, if the probe has not changed since."""

    try:
        metrics = store.get_adapter_version(version).get("metrics") or {}
        if metrics.get("probe") == probe_digest():
            return float(metrics["candidate"]["probe_nll"])
    except Exception:  # noqa: BLE001 - a missing row or number just means "measure it"
        return None
    return None


def _cached_base_probe(store: Store, base: registry.Base) -> float | None:
    cached = store.get_setting(BASE_PROBE_KEY)
    if (isinstance(cached, dict) and cached.get("checksum") == base.checksum
            and cached.get("probe") == probe_digest()):
        return float(cached["nll"])
    return None
