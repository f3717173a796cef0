"""Schedule files: generated content, systemd-analyze verify where available, install/remove."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.jobs import schedule
from adapters.training.errors import AdapterError


def test_service_runs_the_refresh_at_low_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_HOME", "/tmp/hearth home")
    text = schedule.render_service()
    assert "Type=oneshot" in text and "Nice=10" in text and "IOSchedulingClass=idle" in text
    exec_line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    assert exec_line == f"ExecStart={sys.executable} -m agent.cli.main refresh --quiet"
    assert 'Environment="HEARTH_HOME=/tmp/hearth home"' in text


def test_timer_is_nightly_and_persistent() -> None:
    text = schedule.render_timer("02:15")
    assert "OnCalendar=*-*-* 02:15:00" in text and "Persistent=true" in text
    assert "Unit=hearth-refresh.service" in text and "WantedBy=timers.target" in text
    with pytest.raises(AdapterError, match="HH:MM"):
        schedule.render_timer("2am")
    with pytest.raises(AdapterError, match="out of range"):
        schedule.render_timer("25:00")


def test_launchd_plist() -> None:
    data = plistlib.loads(schedule.render_plist("04:05", log_dir=Path("/logs")))
    assert data["Label"] == "com.hearth.refresh"
    assert data["ProgramArguments"] == schedule.command()
    assert data["StartCalendarInterval"] == {"Hour": 4, "Minute": 5}
    assert data["Nice"] == 10 and data["LowPriorityIO"] is True
    assert data["StandardErrorPath"] == "/logs/schedule.err.log"


def verify(folder: Path, timer: str, service: str) -> subprocess.CompletedProcess[str]:
    (folder / "hearth-refresh.service").write_text(service)
    (folder / "hearth-refresh.timer").write_text(timer)
    runtime = folder / "runtime"
    runtime.mkdir(exist_ok=True)
    return subprocess.run(["systemd-analyze", "verify", "--user",
                           str(folder / "hearth-refresh.timer"), str(folder / "hearth-refresh.service")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    good = verify(tmp_path, schedule.render_timer(), schedule.render_service())
    assert good.returncode == 0, good.stdout + good.stderr
    assert "hearth-refresh" not in good.stdout + good.stderr
    # the check has teeth: a broken calendar spec is caught
    bad = verify(tmp_path, schedule.render_timer().replace("*-*-* 03:30:00", "nightly-ish"),
                 schedule.render_service())
    assert bad.returncode != 0 and "calendar" in bad.stderr


def test_install_status_remove_write_files_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(schedule, "_try", lambda cmd, report: report.lines.append("tried") or False)
    report = schedule.install("01:00", kind="linux")
    service, timer = report.files
    assert service.parent == tmp_path / "systemd" / "user"
    assert "01:00:00" in timer.read_text() and report.enabled is False
    assert "tried" in report.lines  # enabling was attempted; failure is reported, not raised
    assert "installed" in schedule.status(kind="linux").lines[0]
    assert "removed" in schedule.remove(kind="linux").lines[0]
    assert not service.exists() and not timer.exists()
    assert "not installed" in schedule.status(kind="linux").lines[0]


def test_macos_install_writes_the_plist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    monkeypatch.setattr(schedule, "_try", lambda cmd, report: False)
    report = schedule.install(kind="macos")
    [plist] = report.files
    assert plist == tmp_path / "Library" / "LaunchAgents" / "com.hearth.refresh.plist"
    assert plistlib.loads(plist.read_bytes())["Label"] == "com.hearth.refresh"
    schedule.remove(kind="macos")
    assert not plist.exists()
