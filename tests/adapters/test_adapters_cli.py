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
