"""Nightly refresh schedules: a systemd user service + timer on Linux, a launchd agent on macOS.

`render_*` build the file contents (pure; tests read them), `install` writes them and then
*tries* to enable them (`systemctl --user enable --now`, `launchctl load -w`), reporting a
failure instead of raising: on a machine without a user session bus the files are still
right and start working at the next login. `remove` undoes both; `status` says what is there.

The job runs `<python> -m agent.cli.main refresh --quiet` at low priority (Nice=10, idle I/O)
with Persistent=true, so a night the laptop was off is caught up at the next boot. The refresh
itself skips on battery or while the user chats. This module never trains anything.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from adapters.training.errors import AdapterError
from agent.foundation import paths

NAME = "hearth-refresh"
LABEL = "com.hearth.refresh"
DEFAULT_TIME = "03:30"


@dataclass
class Report:
    """What install / remove / status did or found, line by line for the user."""

    files: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    enabled: bool | None = None


def platform() -> str:
    return "macos" if sys.platform == "darwin" else "linux"


def command() -> list[str]:
    """The command the schedule runs (this interpreter, so the same environment)."""
    return [sys.executable, "-m", "agent.cli.main", "refresh", "--quiet"]


def parse_time(value: str) -> tuple[int, int]:
    """'03:30' -> (3, 30); AdapterError on anything else.

    >>> parse_time("23:05")
    (23, 5)
    """
    try:
        hour, minute = (int(x) for x in value.split(":"))
    except ValueError:
        raise AdapterError(f"time {value!r} is not HH:MM (e.g. 03:30)") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise AdapterError(f"time {value!r} is out of range; use 00:00 to 23:59")
    return hour, minute


def _systemd_quote(arg: str) -> str:
    if arg and not any(c in arg for c in ' \t"\'\\$%;'):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _environment() -> dict[str, str]:
    """Variables the scheduled run needs to find the same data (HEARTH_HOME when set)."""
    return {k: os.environ[k] for k in ("HEARTH_HOME",) if os.environ.get(k)}


def render_service(cmd: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    cmd = cmd or command()
    env = _environment() if env is None else env
    lines = [
        "[Unit]",
        "Description=Hearth: refresh the personal adapter",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={' '.join(_systemd_quote(a) for a in cmd)}",
        "Nice=10",
        "IOSchedulingClass=idle",
        "CPUSchedulingPolicy=batch",
    ]
    lines += [f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in sorted(env.items())]
    return "\n".join(lines) + "\n"


def render_timer(at: str = DEFAULT_TIME) -> str:
    hour, minute = parse_time(at)
    return "\n".join([
        "[Unit]",
        "Description=Hearth: nightly personal adapter refresh",
        "",
        "[Timer]",
        f"OnCalendar=*-*-* {hour:02d}:{minute:02d}:00",
        "Persistent=true",
        "RandomizedDelaySec=10min",
        f"Unit={NAME}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]) + "\n"


def render_plist(at: str = DEFAULT_TIME, cmd: list[str] | None = None,
                 env: dict[str, str] | None = None, log_dir: Path | None = None) -> bytes:
    hour, minute = parse_time(at)
    env = _environment() if env is None else env
    plist: dict[str, object] = {
        "Label": LABEL,
        "ProgramArguments": cmd or command(),
        "StartCalendarInterval": {"Hour": hour, "Minute": minute},
        "Nice": 10,
        "LowPriorityIO": True,
        "ProcessType": "Background",
        "RunAtLoad": False,
    }
    if env:
        plist["EnvironmentVariables"] = env
    if log_dir is not None:
        plist["StandardOutPath"] = str(log_dir / "schedule.out.log")
        plist["StandardErrorPath"] = str(log_dir / "schedule.err.log")
    return plistlib.dumps(plist)


def systemd_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def launchd_dir() -> Path:
    return Path.home() / "Library" / "LaunchAgents"


def unit_files(kind: str | None = None) -> list[Path]:
    if (kind or platform()) == "macos":
        return [launchd_dir() / f"{LABEL}.plist"]
    return [systemd_dir() / f"{NAME}.service", systemd_dir() / f"{NAME}.timer"]


def _try(cmd: list[str], report: Report) -> bool:
    if shutil.which(cmd[0]) is None:
        report.lines.append(f"{cmd[0]} not found; the files are written but not enabled")
        return False
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        report.lines.append(f"`{' '.join(cmd)}` failed: {exc}")
        return False
    if out.returncode != 0:
        why = (out.stderr or out.stdout).strip().splitlines()
        report.lines.append(f"`{' '.join(cmd)}` failed: {why[-1] if why else out.returncode}")
        return False
    return True


def install(at: str = DEFAULT_TIME, kind: str | None = None, enable: bool = True) -> Report:
    """Write the schedule files and try to enable them."""

    kind = kind or platform()
    report = Report(unit_files(kind))
    report.files[0].parent.mkdir(parents=True, exist_ok=True)
    if kind == "macos":
        report.files[0].write_bytes(render_plist(at, log_dir=paths.logs_dir()))
        if enable:
            _try(["launchctl", "unload", str(report.files[0])], Report())
            report.enabled = _try(["launchctl", "load", "-w", str(report.files[0])], report)
    else:
        report.files[0].write_text(render_service())
        report.files[1].write_text(render_timer(at))
        if enable:
            report.enabled = (_try(["systemctl", "--user", "daemon-reload"], report) and
                              _try(["systemctl", "--user", "enable", "--now", f"{NAME}.timer"], report))
    report.lines.insert(0, f"nightly refresh at {at}: wrote {', '.join(map(str, report.files))}")
    if report.enabled:
        report.lines.append("enabled")
    return report


def remove(kind: str | None = None, disable: bool = True) -> Report:
    """Disable (best effort) and delete the schedule files."""
    kind = kind or platform()
    report = Report(unit_files(kind))
    if disable and any(f.exists() for f in report.files):
        if kind == "macos":
            _try(["launchctl", "unload", "-w", str(report.files[0])], report)
        else:
            _try(["systemctl", "--user", "disable", "--now", f"{NAME}.timer"], report)
    removed = [f for f in report.files if f.exists()]
    for f in removed:
        f.unlink()
    if kind != "macos" and disable and removed:
        _try(["systemctl", "--user", "daemon-reload"], report)
    report.lines.insert(0, f"removed {', '.join(map(str, removed))}" if removed
                        else "no schedule was installed")
    return report


def status(kind: str | None = None) -> Report:
    """Which files exist and, where the service manager answers, whether it is enabled."""
    kind = kind or platform()
    report = Report(unit_files(kind))
    present = [f for f in report.files if f.exists()]
    if not present:
        report.lines.append("not installed (`hearth schedule install`)")
        report.enabled = False
        return report
    report.lines.append(f"installed: {', '.join(map(str, present))}")
    if kind == "linux" and shutil.which("systemctl"):
        out = subprocess.run(["systemctl", "--user", "is-enabled", f"{NAME}.timer"],
                             capture_output=True, text=True, timeout=30, check=False)
        state = (out.stdout or out.stderr).strip() or "unknown"
        report.enabled = state == "enabled"
        report.lines.append(f"timer: {state}")
    return report
