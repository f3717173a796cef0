"""`hearth experiments list|show|start|stop` through the real entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.cli.main import main
from memory.embed import HashEmbedder
from memory.store import Store
from tests.experiments.helpers import register_adapter


def test_start_show_stop_and_refusals(tiny_model_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    with Store.open(embedder=HashEmbedder()) as store:
        incumbent = register_adapter(store, tiny_model_dir, tmp_path, seed=1, activate=True)
        candidate = register_adapter(store, tiny_model_dir, tmp_path, seed=2)
        failed = register_adapter(store, tiny_model_dir, tmp_path, seed=3, passed=False)
    from agent.llm import models

    monkeypatch.setattr(models, "resolve", lambda *a, **k: models.ModelRef(
        "tiny", tiny_model_dir, "tiny-checksum"))
    assert main(["experiments", "list"]) == 0
    assert "no experiments yet" in capsys.readouterr().out
    assert main(["experiments", "start", "--adapter", failed]) == 1
    assert "did not pass the offline gate" in capsys.readouterr().err
    assert main(["experiments", "start", "--adapter", candidate]) == 0
    assert "started experiment" in capsys.readouterr().out
    assert main(["experiments", "start", "--prompt", "Be brief."]) == 1
    assert "already running" in capsys.readouterr().err
    assert main(["experiments", "show"]) == 0
    out = capsys.readouterr().out
    assert f"{incumbent} (incumbent) vs {candidate} (candidate)" in out and "Wilson" in out
    assert main(["experiments", "stop"]) == 0
    assert main(["experiments", "list"]) == 0
    assert "\tstopped\t" in capsys.readouterr().out
    assert main(["experiments", "stop"]) == 1
    assert "no experiment is running" in capsys.readouterr().err
