"""Issue 11 §4e and §9 (agent side): the crash log holds no user text, and hostile argv
(invalid UTF-8, `--seed -1`) gives a one-line error, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.foundation import paths
from agent.foundation.crashlog import log_crash, redact_argv

ROOT = Path(__file__).resolve().parents[2]
PIN = "my PIN is 4321-secret"


def test_crash_log_keeps_the_command_shape_not_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/hearth", "ask", PIN, "--seed=7", "--json"])
    try:
        raise ValueError(f"could not handle {PIN!r}")  # an exception quoting the input
    except ValueError as exc:
        where = log_crash(exc, "cli", words={"ask"})
    text = Path(where).read_text()
    assert "4321-secret" not in text and "my PIN is" not in text
    assert "hearth ask … --seed … --json" in text and "ValueError" in text


def test_redact_argv_keeps_flags_and_commands_only() -> None:
    assert redact_argv(["hearth", "memory", "add", "Ada 1234", "--pin"], {"memory", "add"}) == \
        "hearth memory add … --pin"
    assert redact_argv(["hearth", "-1", "--model", "/home/me/secret model"]) == "hearth … --model …"


def hearth(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "agent.cli.main", *args], env=env,
                          capture_output=True, timeout=120, cwd=ROOT)


def test_invalid_utf8_in_argv_is_one_line() -> None:
    out = hearth("memory", "add", b"caf\xe9 " + PIN.encode())
    err = out.stderr.decode()
    assert out.returncode == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "UTF-8" in err
    log = paths.logs_dir() / "crash.log"
    assert not log.exists() or "4321" not in log.read_text()


def test_the_crash_logger_survives_undecodable_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["hearth", "ask", "caf\udce9", "--x\udce9"])
    where = log_crash(RuntimeError("boom"), "cli", words={"ask"})
    assert Path(where).is_file() and "boom" in Path(where).read_text()


def test_negative_seed_is_a_usage_error() -> None:
    out = hearth("ask", PIN, "--seed", "-1")
    err = out.stderr.decode()
    assert out.returncode == 2 and "Traceback" not in err
    assert "--seed: -1 is out of range" in err.splitlines()[-1]
    assert not (paths.logs_dir() / "crash.log").exists()
