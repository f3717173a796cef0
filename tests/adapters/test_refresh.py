"""Refresh policy on the real Store and a tiny model: cold start, skips, lock, train/gate cycle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapter_helpers import make_adapter, pairs, seed

from adapters.jobs import conditions, refresh
from adapters.training import registry
from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig

QUIET = RefreshPolicy(min_accepted=20, min_new_accepted=5, skip_on_battery=False,
                      skip_if_active_minutes=0)
FAST = TrainConfig(num_layers=2, learning_rate=1e-2, iters=8, steps_per_eval=4, steps_per_save=4)
LENIENT = GateConfig(max_probe_regression=5.0, max_probe_regression_vs_base=5.0, max_probe_kl=50.0)


def test_cold_start_says_how_far_it_is(store: Any, tiny_model_dir: Path) -> None:
    seed(store, pairs(12))
    result = refresh.refresh(store, tiny_model_dir, QUIET)
    assert result.status == "cold_start" and "12/20 accepted answers" in result.reason
    assert not result.trained and store.list_adapter_versions() == []
    logged = [json.loads(x) for x in refresh.log_path().read_text().splitlines()]
    assert logged[-1]["status"] == "cold_start" and logged[-1]["accepted"] == 12


def test_skips_on_battery_unless_forced(store: Any, tiny_model_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conditions, "on_battery", lambda: True)
    policy = RefreshPolicy.from_dict({**QUIET.to_dict(), "skip_on_battery": True})
    result = refresh.refresh(store, tiny_model_dir, policy)
    assert result.status == "skipped" and "battery" in result.reason
    assert refresh.refresh(store, tiny_model_dir, policy, force=True).status == "cold_start"
    assert refresh.refresh(store, tiny_model_dir, QUIET).status == "cold_start"  # configurable


def test_skips_while_the_user_is_chatting(store: Any, tiny_model_dir: Path) -> None:
    seed(store, pairs(3))  # conversations just now
    policy = RefreshPolicy.from_dict({**QUIET.to_dict(), "skip_if_active_minutes": 10})
    result = refresh.refresh(store, tiny_model_dir, policy)
    assert result.status == "skipped" and "chatted 0 min ago" in result.reason


def test_a_second_refresh_is_refused_while_one_runs(store: Any, tiny_model_dir: Path) -> None:
    with conditions.refresh_lock():
        result = refresh.refresh(store, tiny_model_dir, QUIET)
    assert result.status == "busy" and "another refresh is running" in result.reason


def test_train_gate_promote_then_retrain_only_when_warranted(store: Any, tiny_model_dir: Path) -> None:
    ids = seed(store, pairs(24))
    first = refresh.refresh(store, tiny_model_dir, QUIET, FAST, LENIENT)
    assert first.status == "promoted", first.reason
    row = store.active_adapter()
    assert row["id"] == "v1" and row["verdict"] == "promote"
    assert first.counts["accepted"] == 24 and row["hyperparams"] == FAST.to_dict()
    assert row["n_train"] == first.counts["examples_train"] > 24 - row["n_valid"]  # + rewrites
    assert row["metrics"]["candidate"]["personal_nll"] < row["metrics"]["reference"]["personal_nll"]
    assert row["metrics"]["reference"]["label"] == "base"
    manifest = registry.verify(Path(row["path"]), row["base_checksum"])
    assert sorted(manifest["message_ids"]) == sorted(ids)
    assert not (registry.root() / ".runs").exists() or not any((registry.root() / ".runs").iterdir())

    again = refresh.refresh(store, tiny_model_dir, QUIET, FAST, LENIENT)
    assert again.status == "up_to_date" and "0/5 new accepted answers since v1 (active)" in again.reason

    seed(store, pairs(5, start=100))
    strict = GateConfig(min_improvement=0.9)
    second = refresh.refresh(store, tiny_model_dir, QUIET, FAST, strict)
    assert second.status == "rejected" and "required 90.0%" in second.reason
    assert store.get_adapter_version("v2")["status"] == "rejected"
    assert store.active_adapter()["id"] == "v1"  # the active adapter stays
    assert (registry.root() / "v2").is_dir()  # kept for inspection
    same = refresh.refresh(store, tiny_model_dir, QUIET, FAST, LENIENT)
    assert same.status == "up_to_date" and "0/5 new accepted answers since v2 (rejected)" in same.reason
    seed(store, pairs(1, start=200))  # one more answer is not enough to try again
    assert "1/5 new" in refresh.refresh(store, tiny_model_dir, QUIET, FAST, LENIENT).reason

    store.forget_message(ids[0])  # the user takes an answer back: v1 learned it
    third = refresh.refresh(store, tiny_model_dir, QUIET, FAST, LENIENT)
    assert third.status == "promoted", third.reason
    assert third.counts["forgotten_in_active"] == 1
    new = store.active_adapter()
    assert new["id"] == "v3" and new["metrics"]["reference"]["label"] == "base"
    assert ids[0] not in registry.read_manifest(Path(new["path"]))["message_ids"]


def test_forgetting_below_the_minimum_switches_the_adapter_off(
    store: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    ids = seed(store, pairs(20))
    base = refresh.resolve_base(tiny_model_dir)
    version = registry.begin(store, base, "s", 16, 4, {})
    folder = registry.write_folder(version, make_adapter(tmp_path / "a", tiny_model_dir),
                                   {"base_checksum": base.checksum, "message_ids": ids})
    registry.record(store, version, folder, True, "promote", "test", {})
    store.forget_message(ids[3])
    result = refresh.refresh(store, tiny_model_dir, QUIET)
    assert result.status == "deactivated" and "19/20" in result.reason
    assert store.active_adapter() is None


def test_the_apps_gauge_and_the_refresh_count_alike(store: Any, tiny_model_dir: Path,
                                                    tmp_path: Path) -> None:
    from tui import services

    store.set_setting("adapters.refresh", QUIET.to_dict())  # the gauge reads the stored policy
    ids = seed(store, pairs(12))
    seed(store, pairs(1))  # the same answer accepted twice counts once
    gauge = services.cold_start(store)
    result = refresh.refresh(store, tiny_model_dir, QUIET)
    assert result.status == "cold_start" and (gauge.count, gauge.needed) == (12, 20)
    assert result.counts["accepted"] == gauge.count and result.reason == gauge.reason
    assert services.cold_start_summary(gauge).startswith("Accepted answers 12/20: 8 more")

    ids += seed(store, pairs(12, start=12))
    base = refresh.resolve_base(tiny_model_dir)
    for n, promote in ((20, True), (22, False)):  # active v1 on 20; rejected v2, later, on 22
        version = registry.begin(store, base, f"s{n}", n, 0, {})
        folder = registry.write_folder(version, make_adapter(tmp_path / version, tiny_model_dir),
                                       {"base_checksum": base.checksum, "message_ids": ids[:n]})
        registry.record(store, version, folder, promote, "promote" if promote else "reject",
                        "test", {})
    gauge = services.cold_start(store)
    result = refresh.refresh(store, tiny_model_dir, QUIET)
    assert (gauge.count, gauge.new, gauge.latest) == (24, 2, "v2")  # not 4 new since active v1
    assert result.status == "up_to_date" and result.reason == gauge.reason
    assert (result.counts["accepted"], result.counts["new"]) == (gauge.count, gauge.new)
    assert services.cold_start_summary(gauge) == "Accepted answers 24: 2 new since v2 (5 retrain it)"


def test_a_best_that_moved_too_far_steps_back_to_an_earlier_best(
        store: Any, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real run and gate, with the KL limit set just under the best candidate's own KL: the
    best is rejected for general behaviour, and the earlier, less trained best that passes is
    what gets recorded and promoted."""
    from adapters.training import gate as gate_module
    from adapters.training.train import load_arrays

    seed(store, pairs(24))
    real_decide, seen = gate_module.decide, []

    def decide(candidate: Any, reference: Any, config: GateConfig, base_probe: Any = None) -> Any:
        seen.append(candidate.probe_kl)
        config = GateConfig.from_dict({**config.to_dict(), "max_probe_kl": seen[0] * 0.999})
        return real_decide(candidate, reference, config, base_probe)

    monkeypatch.setattr(gate_module, "decide", decide)
    config = TrainConfig.from_dict({**FAST.to_dict(), "iters": 12, "steps_per_eval": 3})
    result = refresh.refresh(store, tiny_model_dir, QUIET, config, LENIENT)
    assert result.status == "promoted", result.reason
    assert len(seen) >= 2 and seen[-1] < seen[0]  # the first judged is the best, rejected
    row = store.active_adapter()
    back = row["metrics"]["stepped_back"]
    assert back["to_step"] < back["from_step"] and "probe KL" in back["rejected"]
    assert row["metrics"]["train"]["best_step"] == back["to_step"]
    logged = [json.loads(x) for x in refresh.log_path().read_text().splitlines()]
    assert any(e.get("event") == "step back" for e in logged)
    served = load_arrays(Path(row["path"]) / "adapters.safetensors")
    assert served and all(float(abs(v).sum()) > 0 for k, v in served.items() if "lora_b" in k)
