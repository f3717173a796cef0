"""`hearth doctor`: check the platform, MLX, BLAS, model, data directory, database, offline
status and adapters; each problem comes with a one-line fix. `--fix` repairs file modes.
"""

from __future__ import annotations

import argparse
import platform
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.training import registry
from agent.foundation import blas, offline, paths
from agent.llm import convert, models


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check this installation and say how to fix problems")
    p.add_argument("--fix", action="store_true", help="repair file permissions")
    p.add_argument("--verify", action="store_true", help="re-hash the converted model's files")
    p.set_defaults(handler=cmd_doctor)


def check_platform() -> Check:
    ok = sys.version_info >= (3, 11)
    detail = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    return Check("platform", ok, detail, None if ok else "install Python >= 3.11")


def check_mlx() -> Check:
    blas.ensure()
    try:
        import mlx.core as mx  # lazy: imports MLX

        backend = models.backend()
    except Exception as exc:  # noqa: BLE001
        return Check("mlx", False, f"cannot import MLX: {exc}", "run `bash scripts/setup.sh`")
    return Check("mlx", True, f"MLX {getattr(mx, '__version__', '?')}, device {mx.default_device()}, backend {backend}")


def check_blas() -> Check:
    rep = blas.report(measure=True)
    speed = f", {rep.gflops:.0f} GFLOP/s" if rep.gflops else ""
    return Check("blas", rep.optimised, f"{rep.library}{speed}", rep.fix)


def check_model(verify: bool) -> list[Check]:
    out = []
    try:
        gguf = convert.bundled_gguf()
        out.append(Check("bundled model", True, f"{gguf} ({gguf.stat().st_size:,} bytes)"))
    except Exception as exc:  # noqa: BLE001
        return [Check("bundled model", False, str(exc), "run `bash scripts/setup.sh`")]
    folder = models.bundled_folder(models.backend() != "cpu")
    manifest = convert.read_manifest(folder)
    if manifest is None:
        out.append(Check("converted model", True, f"not converted yet (happens on first chat) -> {folder}"))
        return out
    detail = f"{folder} ({manifest['dtype']}, source sha256 {manifest['source_sha256'][:16]}…)"
    if verify:
        bad = convert.verify_folder(folder)
        if bad:
            return out + [Check("converted model", False, f"{folder}: damaged files {bad}",
                                "run `hearth models convert --force`")]
        detail += ", checksums ok"
    return out + [Check("converted model", True, detail)]


def wrong_modes(root: Path) -> list[Path]:
    bad = []
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        want = paths.DIR_MODE if p.is_dir() else paths.FILE_MODE
        if stat.S_IMODE(p.stat().st_mode) & 0o077 or (p.is_dir() and stat.S_IMODE(p.stat().st_mode) != want):
            bad.append(p)
    return bad


def check_data(fix: bool) -> Check:
    root = paths.data_dir()
    bad = wrong_modes(root)
    if bad and fix:
        for p in bad:
            paths.make_private(p)
        bad = wrong_modes(root)
    if bad:
        return Check("data directory", False, f"{root}: {len(bad)} entries readable by others (e.g. {bad[0]})",
                     "run `hearth doctor --fix`")
    return Check("data directory", True, f"{root} (private: dirs 0700, files 0600)")


def check_database() -> Check:
    db = paths.db_path()
    if not db.exists():
        return Check("database", True, f"{db} (not created yet)")
    try:
        from memory.store import Store  # lazy: imports numpy and sqlite-utils

        store = Store.open(db)
        result = store.integrity_check() if hasattr(store, "integrity_check") else "ok"
        store.close()
    except Exception as exc:  # noqa: BLE001
        return Check("database", False, f"{db}: {exc}",
                     "restore a backup: `cp BACKUP.db " + str(db) + "` (make them with `hearth backup PATH`)")
    ok = result == "ok"
    return Check("database", ok, f"{db}: integrity {result}",
                 None if ok else "restore from a `hearth backup` copy")


def check_offline() -> Check:
    on = offline.is_enabled()
    return Check("offline", on, "network blocked for Hearth (no --allow-download)" if on
                 else "network allowed (--allow-download)",
                 None if on else "drop --allow-download to stay offline")


def check_adapter() -> Check:
    try:
        from memory.store import Store  # lazy: imports numpy and sqlite-utils

        if not paths.db_path().exists():
            return Check("adapter", True, "none yet (base model serves)")
        store = Store.open()
        row = store.active_adapter()
        store.close()
    except Exception as exc:  # noqa: BLE001
        return Check("adapter", False, f"cannot read the registry: {exc}", "see the database check")
    if not row:
        return Check("adapter", True, "none active (base model serves)")
    path = Path(row["path"])
    ok = (path / "adapters.safetensors").is_file() and (path / "adapter_config.json").is_file()
    if not ok:
        return Check("adapter", False, f"{row['id']} at {path}: files missing",
                     "run `hearth adapters rollback` (the adapter files are missing)")
    try:
        registry.verify(path)  # file hashes against the manifest written at promotion
    except Exception as exc:  # noqa: BLE001
        return Check("adapter", False, f"{row['id']} at {path}: {exc}",
                     "run `hearth adapters rollback` (the previous adapter or the base serves "
                     "meanwhile), or restore the data folder from a `hearth backup`")
    return Check("adapter", True, f"{row['id']} at {path} (checksums ok)")


def check_drift() -> Check:
    """Is the serving adapter stale (acceptance fell, or questions moved)? Not a failure:
    the next scheduled refresh retrains it."""
    try:
        from adapters.training import drift
        from memory.store import Store

        if not paths.db_path().exists():
            return Check("drift", True, "no data yet")
        with Store.open() as store:
            report = drift.check(store)  # acceptance now; the question check runs at refresh
            reason = drift.stale_reason(store)
    except Exception as exc:  # noqa: BLE001
        return Check("drift", False, f"cannot check: {exc}", "see the database check")
    if reason:
        return Check("drift", True, f"{reason}; the next refresh retrains it "
                     "(or run `hearth refresh` now)")
    return Check("drift", True, report.summary())


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = [check_platform(), check_mlx(), check_blas(), *check_model(args.verify),
              check_data(args.fix), check_database(), check_offline(), check_adapter(),
              check_drift()]
    for c in checks:
        mark = "ok  " if c.ok else "FAIL"
        print(f"{mark} {c.name}: {c.detail}")
        if c.fix and not c.ok:
            print(f"     fix: {c.fix}")
    return 0 if all(c.ok for c in checks) else 1
