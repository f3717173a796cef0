"""Issue 11 §5: the background worker runs Hearth's code, never a module planted in the
caller's current directory, and works in Hearth's data directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adapters.jobs import worker
from agent.foundation import paths

PLANTED = """
import pathlib, sys
pathlib.Path(sys.argv[0]).with_name("PWNED").write_text("ran from the cwd")
pathlib.Path({marker!r}).write_text("ran from the cwd")
"""


def test_spawned_worker_ignores_a_planted_adapters_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "downloads"
    (cwd / "adapters").mkdir(parents=True)
    marker = tmp_path / "PWNED-marker"
    (cwd / "adapters" / "__init__.py").write_text("")
    (cwd / "adapters" / "worker.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.chdir(cwd)
    proc = worker.spawn()  # a real refresh on an empty store: it stops at the cold start
    assert proc.wait(timeout=180) == 0
    assert not marker.exists(), "the worker ran ./adapters/worker.py from the caller's cwd"
    assert (paths.logs_dir() / "refresh.jsonl").read_text().count("cold_start") == 1


def test_the_command_is_absolute_and_isolated() -> None:
    cmd = worker.command("refresh")
    assert Path(cmd[0]).is_absolute() and cmd[0] == str(Path(sys.executable).absolute())
    assert cmd[1] == "-P" and cmd[2:4] == ["-m", "adapters.jobs.worker"]
    assert worker.working_dir() == paths.data_dir()


def test_the_app_starts_the_same_isolated_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from tui import refresh_runner

    seen: dict[str, object] = {}

    class Recorder:
        def __init__(self, command: list[str], **kw: object) -> None:
            seen.update(command=command, **kw)

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    refresh_runner.start_refresh(None)
    assert seen["command"] == worker.command("refresh", "--force")
    assert seen["cwd"] == paths.data_dir()
