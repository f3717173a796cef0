"""One preference refresh: DPO on top of the serving supervised adapter, the same offline
gate, then (if it passed) an A/B trial against the serving adapter.

`preference_refresh(store, model)` takes the refresh lock, builds the pairs from the user's
rejected and edited answers (`adapters.training.preference`), loads the base with the active adapter,
trains the DPO step, measures it with the shared gate against the active adapter on the
same held-out accepted answers a supervised refresh uses, records the version (never
activating it directly) and starts the trial. This module orchestrates; it holds no maths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.jobs import conditions
from adapters.jobs.refresh import Progress, RefreshResult, _load, _Log, judge, resolve_base
from adapters.training import experiments, files, registry
from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig
from adapters.training.dataset import make_snapshot
from adapters.training.errors import AdapterError
from adapters.training.preference import PreferenceConfig, preference_pairs, train_dpo

MIN_PAIRS = 4


def _sft_config(folder: Path) -> TrainConfig:
    try:
        data = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"cannot read {folder.name}'s adapter_config.json ({exc})") from exc
    return TrainConfig.from_dict(data.get("hearth_train_config") or {
        "num_layers": data.get("num_layers", 8), **(data.get("lora_parameters") or {})})


def preference_refresh(store: Any, model: Any = None, config: PreferenceConfig | None = None,
                       gate_config: GateConfig | None = None, policy: RefreshPolicy | None = None,
                       progress: Progress | None = None, trial: bool = True,
                       min_pairs: int = MIN_PAIRS) -> RefreshResult:
    """Train, gate and (if it passed) put on trial a DPO candidate; see the module docstring."""
    log = _Log(progress)
    try:
        with conditions.refresh_lock():
            return log.result(_run(store, model, config or PreferenceConfig(),
                                   gate_config or GateConfig(), policy or RefreshPolicy(), log,
                                   trial, min_pairs))
    except conditions.RefreshBusy as exc:
        return log.result(RefreshResult("busy", str(exc)))


def _run(store: Any, model: Any, config: PreferenceConfig, gate_config: GateConfig,
         policy: RefreshPolicy, log: _Log, trial: bool, min_pairs: int) -> RefreshResult:
    from adapters.training.train import load_into, prepare_model

    base = resolve_base(model)
    active = store.active_adapter()
    if active is None:
        return RefreshResult("cold_start", "no supervised adapter serves yet: preference "
                             "training starts from one (`hearth refresh`)")
    pairs = preference_pairs(store)
    counts = {"pairs": len(pairs), "edits": sum(p.source == "edit" for p in pairs)}
    if len(pairs) < min_pairs:
        return RefreshResult("cold_start", f"{len(pairs)}/{min_pairs} preference pairs (rejected "
                             "or edited answers): reject or edit more", counts=counts)
    sft_folder = registry.servable(active, base.checksum)
    sft_config = _sft_config(sft_folder)
    snapshot = make_snapshot(store.accepted_examples(), policy.valid_fraction, policy.min_valid)
    version = registry.begin(store, base, f"{snapshot.snapshot_id}-dpo", len(pairs),
                             len(snapshot.valid), {**sft_config.to_dict(),
                                                   "preference": config.to_dict(),
                                                   "on_top_of": active["id"]})
    run_dir = registry.root() / ".runs" / f"{version}-dpo"
    log({"event": "training", "version": version, "kind": "preference", **counts})
    try:
        net, tokenizer = _load(base)
        prepare_model(net, sft_config)
        load_into(net, sft_folder / "adapters.safetensors")
        result = train_dpo(net, tokenizer, pairs, run_dir, sft_config, config)
        log({"event": "dpo", "first_loss": result.first_loss, "last_loss": result.last_loss})
        verdict, metrics, _ = judge(store, base, net, tokenizer, snapshot, gate_config, log)
        metrics["preference"] = {"pairs": len(pairs), "first_loss": result.first_loss,
                                 "last_loss": result.last_loss, "on_top_of": active["id"]}
        lineage = {"base_model_id": base.id, "base_checksum": base.checksum,
                   "dataset_snapshot": snapshot.snapshot_id, "message_ids": snapshot.message_ids,
                   "preference_message_ids": [p.message_id for p in pairs],
                   "hyperparams": sft_config.to_dict(), "created_at": registry.now_iso()}
        folder = registry.write_folder(version, run_dir, lineage)
        registry.record(store, version, folder, verdict.promote, verdict.word, verdict.reason,
                        metrics, activate=False)
    except BaseException as exc:
        registry.fail(store, version, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        files.remove_tree(run_dir)
    if not verdict.promote:
        return RefreshResult("rejected", f"{version} rejected by the gate: {verdict.reason}",
                             version, verdict, counts)
    reason = f"{version} passed the gate: {verdict.reason}"
    if trial:
        eid = experiments.start_adapter_trial(store, version, base.checksum,
                                              note=f"preference step on {active['id']}")
        reason += f"; on trial against {active['id']} (experiment {eid})"
    return RefreshResult("trial" if trial else "candidate", reason, version, verdict, counts)
