"""When a refresh may run: the lock, battery detection, recent activity."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from adapters.jobs import conditions


def supply(root: Path, name: str, **values: str) -> None:
    (root / name).mkdir(parents=True)
    for key, value in values.items():
        (root / name / key).write_text(value + "\n")


def test_sysfs_mains_decides(tmp_path: Path) -> None:
    supply(tmp_path, "AC", type="Mains", online="0")
    supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    assert conditions._sysfs_on_battery(tmp_path) is True
    (tmp_path / "AC" / "online").write_text("1\n")
    assert conditions._sysfs_on_battery(tmp_path) is False


def test_sysfs_battery_status_without_mains(tmp_path: Path) -> None:
    supply(tmp_path, "BAT1", type="Battery", status="Charging")
    assert conditions._sysfs_on_battery(tmp_path) is False
    (tmp_path / "BAT1" / "status").write_text("Discharging\n")
    assert conditions._sysfs_on_battery(tmp_path) is True


def test_no_power_supply_information_means_unknown(tmp_path: Path) -> None:
    assert conditions._sysfs_on_battery(tmp_path / "missing") is None
    assert conditions._sysfs_on_battery(tmp_path) is None


def test_pmset_output() -> None:
    assert conditions.parse_pmset("Now drawing from 'Battery Power'\n -InternalBattery-0") is True
    assert conditions.parse_pmset("Now drawing from 'AC Power'\n") is False
    assert conditions.parse_pmset("") is None


def test_minutes_since_activity() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    stamp = (now - timedelta(minutes=7)).isoformat().replace("+00:00", "Z")
    store = SimpleNamespace(list_conversations=lambda limit=None: [SimpleNamespace(updated_at=stamp)])
    assert conditions.minutes_since_activity(store, now) == pytest.approx(7)
    empty = SimpleNamespace(list_conversations=lambda limit=None: [])
    assert conditions.minutes_since_activity(empty, now) is None


def test_the_lock_admits_one_holder_across_processes(tmp_path: Path) -> None:
    lock = tmp_path / "refresh.lock"
    with (conditions.refresh_lock(lock), pytest.raises(conditions.RefreshBusy, match="another refresh"),
          conditions.refresh_lock(lock)):
        pass
    code = ("import sys, time; from adapters.jobs.conditions import refresh_lock\n"
            f"with refresh_lock(__import__('pathlib').Path({str(lock)!r})):\n"
            "    print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(conditions.RefreshBusy, match=f"pid {proc.pid}"), conditions.refresh_lock(lock):
            pass
    finally:
        proc.kill()
        proc.wait()
    with conditions.refresh_lock(lock):  # a killed holder never blocks the next refresh
        pass
