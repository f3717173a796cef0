"""`hearth adapters ...`, `hearth refresh`, `hearth schedule ...` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapter_helpers import pairs, register, seed

from adapters.training import registry
from agent.cli.main import main


@pytest.fixture
def two_versions(store: Any, tiny_model_dir: Path, tmp_path: Path) -> registry.Base:
    from agent.llm import models

    ref = models.resolve(str(tiny_model_dir))
    base = registry.Base(ref.id, ref.path, ref.checksum)
    register(store, tiny_model_dir, base, tmp_path, seed=1)
    register(store, tiny_model_dir, base, tmp_path, seed=2)
    return base


def test_list_show_activate_rollback_delete(two_versions: registry.Base, tiny_model_dir: Path,
                                            capsys: pytest.CaptureFixture[str], store: Any) -> None:
    model = ["--model", str(tiny_model_dir)]
    assert main(["adapters", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  v1\tretired") and lines[2].startswith("* v2\tactive")
    assert main(["adapters", "show", "v1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == "v1" and shown["files"] == "ok" and shown["base_checksum"] == two_versions.checksum
    assert main([*model, "adapters", "activate", "v1"]) == 0
    assert "v1 is active" in capsys.readouterr().out
    assert main([*model, "adapters", "rollback"]) == 0
    assert "now serving v2" in capsys.readouterr().out
    assert main(["adapters", "delete", "v2"]) == 1
    assert "rollback` first, or pass --force" in capsys.readouterr().err
    assert main(["adapters", "delete", "v2", "--force"]) == 0
    assert store.active_adapter() is None  # v1 was rolled back by hand: not a fallback


def test_activate_refuses_another_base_in_one_line(two_versions: registry.Base, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   tokenizer_dir: Path) -> None:
    from adapter_helpers import write_tiny_model

    other = write_tiny_model(tmp_path / "other-model", tokenizer_dir, seed=7)
    (other / "config.json").write_text((other / "config.json").read_text().replace("10000.0", "20000.0"))
    assert main(["--model", str(other), "adapters", "activate", "v1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained for another base model" in err[0]


def test_refresh_reports_cold_start(store: Any, tiny_model_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    seed(store, pairs(3))
    store.close()
    assert main(["--model", str(tiny_model_dir), "refresh", "--quiet", "--force"]) == 0
    assert capsys.readouterr().out.strip() == (
        "cold_start: 3/20 accepted answers: the adapter trains from there; prompt examples "
        "and retrieval personalise until then")


def test_schedule_status_install_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.jobs import schedule

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(schedule, "platform", lambda: "linux")
    monkeypatch.setattr(schedule, "_try", lambda cmd, report: False)
    assert main(["schedule", "status"]) == 0
    assert "not installed" in capsys.readouterr().out
    assert main(["schedule", "install", "--at", "02:00"]) == 0
    assert "nightly refresh at 02:00" in capsys.readouterr().out
    assert (tmp_path / "systemd" / "user" / "hearth-refresh.timer").is_file()
    assert main(["schedule", "remove"]) == 0
    assert "removed" in capsys.readouterr().out


def test_imported_answers_are_not_chatting_and_refresh_says_its_plan(
        store: Any, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "completion": a}) + "\n" for q, a in pairs(24)))
    store.set_setting("adapters.train", {"num_layers": 2, "iters": 4, "learning_rate": 1e-2,
                                         "steps_per_eval": 2, "steps_per_save": 2})
    store.set_setting("adapters.gate", {"max_probe_regression": 50.0, "max_probe_kl": 50.0,
                                        "max_probe_regression_vs_base": 50.0, "min_improvement": -1})
    store.set_setting("adapters.refresh", {"skip_on_battery": False})
    store.close()
    assert main(["memory", "import", "--training", str(data)]) == 0
    capsys.readouterr()
    # no --force: the import just now is not "you chatted 0 min ago"
    assert main(["--model", str(tiny_model_dir), "refresh", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("promoted: v1 promoted"), out
    plan = [line for line in err.splitlines() if line.startswith("plan: ")]
    assert len(plan) == 1 and "24 accepted (24 new (first adapter)), 0 memories" in plan[0], err
    assert "4 steps, budget 12 min; training because: cold start reached" in plan[0]
    # a real chat turn is activity again
    from memory.embed import HashEmbedder
    from memory.store import Store

    with Store.open(embedder=HashEmbedder()) as again:
        conv = again.new_conversation()
        again.add_message(conv, "user", "hello")
    assert main(["--model", str(tiny_model_dir), "refresh", "--quiet"]) == 0
    assert "skipped: you chatted 0 min ago" in capsys.readouterr().out


def test_refresh_says_when_it_steps_back(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli.adapters_cmds import _bar

    _bar()({"event": "step back", "step": 179,
            "why": "general probe regressed 21.2% > allowed 15.0%; personal NLL 5.190 -> 1.474"})
    err = capsys.readouterr().err.strip()
    assert err == ("not this one (general probe regressed 21.2% > allowed 15.0%); trying the "
                   "run's earlier best, step 179")
