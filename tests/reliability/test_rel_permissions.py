"""Permissions (issue 7 §2): data dir 0700; database, WAL, SHM, exports, backups and adapter
files 0600 after real operations, even under a permissive umask; `hearth doctor --fix`
repairs every one of them."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.foundation import paths


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def loose_entries(root: Path) -> list[str]:
    """Every entry under `root` (included) that is not 0700 (dirs) / 0600 (files)."""
    bad = []
    for p in [root, *root.rglob("*")]:
        want = 0o700 if p.is_dir() else 0o600
        if not p.is_symlink() and mode(p) != want:
            bad.append(f"{p.relative_to(root)}: {oct(mode(p))}")
    return bad


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_library_keeps_db_wal_shm_exports_backups_private_under_umask_022(tmp_path: Path) -> None:
    from memory.embed import HashEmbedder
    from memory.store import Store

    with umask(0o022):
        store = Store.open(embedder=HashEmbedder())
        conv = store.new_conversation()
        store.add_feedback(store.add_message(conv, "assistant", "private answer"), "accepted")
        store.add_memory("my PIN is not here")
        db = paths.db_path()
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()  # checked while the connection is open
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        export = tmp_path / "out" / "all.jsonl"
        store.export_jsonl(export)
        backup = store.backup(tmp_path / "backups")
        store.close()
    assert mode(paths.data_dir()) == 0o700
    assert mode(export) == 0o600 and mode(export.parent) == 0o700
    assert mode(backup) == 0o600
    assert loose_entries(paths.data_dir()) == []


def test_the_cli_under_umask_022_leaves_nothing_readable(tmp_path: Path, hearth_home: Path) -> None:
    env = {**os.environ, "HEARTH_HOME": str(hearth_home)}
    script = (
        "import os, sys; os.umask(0o022); from agent.cli.main import main; "
        "rc = main(['memory', 'add', 'I keep bees']) or main(['memory', 'export', sys.argv[1]]) "
        "or main(['backup', sys.argv[2]]); sys.exit(rc)"
    )
    export, backups = tmp_path / "export.jsonl", tmp_path / "bk"
    backups.mkdir()  # an existing folder: the backup goes inside it
    proc = subprocess.run([sys.executable, "-c", script, str(export), str(backups)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert loose_entries(hearth_home / "data") == []
    assert mode(export) == 0o600
    assert [mode(p) for p in backups.iterdir()] == [0o600]


def test_adapter_files_are_private_and_doctor_fixes_every_kind(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.jobs import refresh
    from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig
    from memory.embed import HashEmbedder
    from memory.store import Store

    with umask(0o022), Store.open(embedder=HashEmbedder()) as store:
        for i in range(10):
            conv = store.new_conversation()
            store.add_message(conv, "user", f"Q{i}: who keeps the lighthouse?")
            mid = store.add_message(conv, "assistant", f"Orla ({i})", prompt_messages=[
                {"role": "user", "content": f"Q{i}: who keeps the lighthouse?"}])
            store.add_feedback(mid, "accepted")
        result = refresh.refresh(
            store, tiny_model_dir,
            RefreshPolicy(min_accepted=8, skip_on_battery=False, skip_if_active_minutes=0),
            TrainConfig(num_layers=1, iters=2, steps_per_eval=2, steps_per_save=2, batch_size=2),
            GateConfig(max_probe_regression=50.0, max_probe_regression_vs_base=50.0), force=True)
        assert result.trained, result.reason
        exports = paths.data_dir() / "exports"
        store.export_jsonl(exports / "me.jsonl")
        (paths.data_dir() / "backups").mkdir(mode=0o700)
        store.backup(paths.data_dir() / "backups")
    data = paths.data_dir()
    adapter_files = [p for p in paths.adapters_dir().rglob("*") if p.is_file()]
    assert any(p.name == "adapters.safetensors" for p in adapter_files)
    assert loose_entries(data) == []

    loosened = [*adapter_files, *exports.iterdir(), *(data / "backups").iterdir(), paths.db_path()]
    for p in loosened:
        p.chmod(0o644)
    paths.adapters_dir().chmod(0o755)
    data.chmod(0o755)
    assert main(["doctor"]) == 1
    assert "FAIL data directory" in capsys.readouterr().out
    main(["doctor", "--fix"])
    assert "ok   data directory" in capsys.readouterr().out
    assert loose_entries(data) == []
