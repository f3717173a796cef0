"""When a refresh may run: the single-refresh lock, battery power, recent user activity.

Small, separately testable probes. `refresh_lock()` is an exclusive, non-blocking
`fcntl.flock` on a file in the adapters directory: the kernel drops it when the holder dies,
so a killed refresh never blocks the next one. `on_battery()` reads Linux sysfs or macOS
`pmset`; unknown means "not on battery". `minutes_since_activity()` asks the store when a
conversation last changed. Nothing here trains or decides policy (see `refresh`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.training.errors import AdapterError
from agent.foundation import paths

if TYPE_CHECKING:
    from memory.store import Store

POWER_SUPPLY = Path("/sys/class/power_supply")


class RefreshBusy(AdapterError):
    """Another refresh holds the lock."""


@contextlib.contextmanager
def refresh_lock(path: Path | None = None) -> Iterator[Path]:
    """Hold the refresh lock for the block; RefreshBusy at once if another process holds it."""
    if path is None:
        path = paths.adapters_dir() / ".refresh.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RefreshBusy(f"another refresh is running (pid {holder}); wait for it to "
                              "finish or see `hearth adapters list`") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the lock


def on_battery(power_supply: Path = POWER_SUPPLY) -> bool | None:
    """True on battery, False on mains, None when it cannot be told (desktops, containers)."""
    if sys.platform == "darwin":
        return _pmset_on_battery()
    return _sysfs_on_battery(power_supply)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _sysfs_on_battery(power_supply: Path) -> bool | None:
    """Mains 'online' decides when present; else a battery's status 'Discharging'.

    Fake sysfs trees work: a folder per supply with `type`, `online` / `status` files.
    """
    if not power_supply.is_dir():
        return None
    mains, batteries = [], []
    for supply in sorted(power_supply.iterdir()):
        kind = _read(supply / "type")
        if kind in ("Mains", "USB", "USB_C", "USB_PD") and (online := _read(supply / "online")):
            mains.append(online == "1")
        elif kind == "Battery" and (status := _read(supply / "status")):
            batteries.append(status)
    if mains:
        return not any(mains)
    if batteries:
        return any(s == "Discharging" for s in batteries)
    return None


def _pmset_on_battery() -> bool | None:
    try:
        out = subprocess.run(["pmset", "-g", "batt"], capture_output=True, text=True,
                             timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_pmset(out)


def parse_pmset(output: str) -> bool | None:
    """Read `pmset -g batt`'s first line.

    >>> parse_pmset("Now drawing from 'Battery Power'\\n -InternalBattery-0 80%")
    True
    >>> parse_pmset("Now drawing from 'AC Power'")
    False
    """
    if "'Battery Power'" in output:
        return True
    if "'AC Power'" in output or "'UPS Power'" in output:
        return False
    return None


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def minutes_since_activity(store: Store, now: datetime | None = None) -> float | None:
    """Minutes since the most recently changed conversation (None: no conversations)."""
    try:
        latest = store.list_conversations(limit=1)
    except AttributeError:
        return None
    if not latest:
        return None
    stamp = getattr(latest[0], "updated_at", None) or getattr(latest[0], "created_at", None)
    if not stamp:
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (now - parse_iso(stamp)).total_seconds() / 60)
