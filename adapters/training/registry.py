"""Adapter versions: lineage, atomic promotion, activate / rollback / delete, safe serving.

Every version is a row in the Store's registry (`add_adapter_version` & co.; the SQL lives in
memory/) and, once trained, a folder `adapters/<version>/` holding the mlx-lm adapter plus
`hearth-adapter.json` (lineage, the message ids trained on, and a sha256 per file).

Promotion survives kill -9 at any instant: the folder is written under a temporary name in
the adapters directory, fsynced, renamed into place, and only then is the row updated and,
last, made active (one Store transaction). A crash leaves either the old active adapter or
the new one, never a half. Leftovers (`.tmp-*`, rows stuck in 'training') are cleaned by
`recover()` under the refresh lock.

An adapter is bound to its base model's checksum (`ModelRef.checksum`) and refused for any
other base; a rejected candidate is kept for inspection and never served. This module does
not train or evaluate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from adapters.training import files
from adapters.training.errors import AdapterError
from agent.foundation import paths
from agent.foundation.ids import now_iso

MANIFEST = "hearth-adapter.json"
FORMAT_VERSION = 1
ADAPTER_FILES = ("adapter_config.json", "adapters.safetensors")
HISTORY_KEY = "adapters.activation_history"
_VERSION = re.compile(r"^v(\d+)$")


class RegistryStore(Protocol):
    """The Store methods this module uses (memory.store.Store)."""

    def add_adapter_version(self, **fields: Any) -> str: ...
    def update_adapter_version(self, id: str, **fields: Any) -> None: ...
    def get_adapter_version(self, id: str) -> Mapping[str, Any]: ...
    def list_adapter_versions(self) -> Sequence[Mapping[str, Any]]: ...
    def active_adapter(self) -> Mapping[str, Any] | None: ...
    def set_active_adapter(self, id: str | None) -> None: ...
    def get_setting(self, key: str, default: Any = None) -> Any: ...
    def set_setting(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class Base:
    """The base model an adapter is bound to (agent.llm.models.ModelRef fits)."""

    id: str
    path: Path
    checksum: str


def root() -> Path:
    return paths.adapters_dir()


# -- versions and lineage --------------------------------------------------------------------


def next_version(store: RegistryStore) -> str:
    """`v<n>` one past the highest version in the registry or on disk."""
    numbers = [0]
    names = [row["id"] for row in store.list_adapter_versions()]
    names += [p.name for p in root().iterdir()]
    for name in names:
        if m := _VERSION.match(name):
            numbers.append(int(m.group(1)))
    return f"v{max(numbers) + 1}"


def begin(store: RegistryStore, base: Base, snapshot_id: str, n_train: int, n_valid: int,
          hyperparams: dict[str, Any]) -> str:
    """Register a version that is being trained (status 'training'); returns its id."""
    version = next_version(store)
    store.add_adapter_version(
        id=version, base_model_id=base.id, base_checksum=base.checksum,
        dataset_snapshot=snapshot_id, n_train=n_train, n_valid=n_valid,
        hyperparams=hyperparams, status="training",
    )
    return version


def write_folder(version: str, adapter_dir: Path, lineage: dict[str, Any]) -> Path:
    """Copy a trained adapter into `adapters/<version>/` atomically; returns the folder."""
    target = root() / version
    if target.exists():
        raise AdapterError(f"{target} already exists; delete it or run `hearth refresh` again")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root()))
    try:
        for name in ADAPTER_FILES:
            shutil.copyfile(adapter_dir / name, tmp / name)
        manifest = {"format_version": FORMAT_VERSION, "version": version,
                    "files": {n: files.sha256_file(tmp / n) for n in ADAPTER_FILES}, **lineage}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        for f in tmp.iterdir():
            os.chmod(f, 0o600)
        files.fsync_tree(tmp)
        os.rename(tmp, target)
        files.fsync_dir(root())
    except BaseException:
        files.remove_tree(tmp)
        raise
    return target


def record(store: RegistryStore, version: str, folder: Path, promote: bool, verdict: str,
           reason: str, metrics: dict[str, Any], activate: bool = True) -> None:
    """Store the outcome on the row; a promoted version becomes active last (unless
    `activate` is False: it waits as a gated candidate, e.g. for an A/B trial)."""
    status = "candidate" if promote else "rejected"
    store.update_adapter_version(version, path=str(folder), status=status, verdict=verdict,
                                 reason=reason, metrics=metrics)
    if promote and activate:
        _activate_row(store, version)


def fail(store: RegistryStore, version: str, reason: str) -> None:
    """Mark a version whose training or evaluation failed."""
    store.update_adapter_version(version, status="failed", reason=reason)


# -- reading and verifying -------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"adapter {folder.name} has no readable manifest ({exc}); "
                           "delete it with `hearth adapters delete`") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise AdapterError(f"adapter {folder.name} has format {manifest.get('format_version')}, "
                           f"this Hearth reads {FORMAT_VERSION}; retrain with `hearth refresh`")
    return manifest


def verify(folder: Path, base_checksum: str | None = None) -> dict[str, Any]:
    """Check an adapter folder (manifest, file hashes, base binding); returns its manifest."""
    manifest = read_manifest(folder)
    for name, digest in manifest["files"].items():
        f = folder / name
        if not f.is_file() or files.sha256_file(f) != digest:
            raise AdapterError(f"adapter {folder.name} is corrupt ({name} changed or missing); "
                               "run `hearth adapters rollback`")
    if base_checksum is not None and manifest.get("base_checksum") != base_checksum:
        raise AdapterError(
            f"adapter {folder.name} was trained for base model "
            f"{manifest.get('base_model_id')} ({str(manifest.get('base_checksum'))[:12]}), not "
            "the one loaded; switch back to that model or retrain with `hearth refresh`"
        )
    return manifest


def get(store: RegistryStore, version: str) -> Mapping[str, Any]:
    try:
        return store.get_adapter_version(version)
    except Exception as exc:  # the Store raises its own NotFoundError
        raise AdapterError(f"no adapter version {version!r}; see `hearth adapters list`") from exc


def servable(row: Mapping[str, Any], base_checksum: str | None) -> Path:
    """The row's folder if it may be served on this base; AdapterError says why not."""
    if row.get("status") in ("rejected", "training", "failed") or not row.get("path"):
        raise AdapterError(f"adapter {row['id']} is {row.get('status')} and is never served; "
                           "pick another with `hearth adapters list`")
    if base_checksum and row.get("base_checksum") and row["base_checksum"] != base_checksum:
        raise AdapterError(f"adapter {row['id']} was trained for another base model "
                           f"({row.get('base_model_id')}); retrain with `hearth refresh`")
    folder = Path(row["path"])
    verify(folder, base_checksum)
    return folder


def serving_path(store: RegistryStore, base_checksum: str | None) -> tuple[Path | None, list[str]]:
    """What to serve: the active adapter if sound, else the newest sound previously active
    one, else the base (None). Also returns the problems met on the way, for the user."""
    problems: list[str] = []
    active = store.active_adapter()
    candidates = [active["id"]] if active else []
    candidates += [v for v in reversed(history(store)) if v not in candidates]
    for version in candidates:
        try:
            return servable(get(store, version), base_checksum), problems
        except AdapterError as exc:
            problems.append(str(exc))
    return None, problems


def history(store: RegistryStore) -> list[str]:
    """Versions in the order they were activated (most recent last), rolled-back ones removed."""
    value = store.get_setting(HISTORY_KEY, [])
    return [str(v) for v in value] if isinstance(value, list) else []


# -- user commands ---------------------------------------------------------------------------


def _activate_row(store: RegistryStore, version: str) -> None:
    store.set_active_adapter(version)  # the change the chat process acts on
    store.set_setting(HISTORY_KEY, [v for v in history(store) if v != version] + [version])


def activate(store: RegistryStore, version: str, base_checksum: str | None) -> Path:
    """Make `version` the served adapter (verified and bound to this base)."""
    folder = servable(get(store, version), base_checksum)
    _activate_row(store, version)
    return folder


def rollback(store: RegistryStore, base_checksum: str | None) -> str | None:
    """Deactivate the active adapter and serve the previously active sound one, or the base.

    Returns the version now active (None: the base model).
    """
    active = store.active_adapter()
    if active is None:
        raise AdapterError("no adapter is active (the base model serves); nothing to roll back")
    remaining = [v for v in history(store) if v != active["id"]]
    target: str | None = None
    for version in reversed(remaining):
        try:
            servable(get(store, version), base_checksum)
        except AdapterError:
            continue
        target = version
        break
    store.set_active_adapter(target)
    note = f"rolled back {now_iso()}"
    store.update_adapter_version(active["id"], reason=f"{note}; {active.get('reason') or ''}".strip("; "))
    store.set_setting(HISTORY_KEY, remaining)
    return target


def delete(store: RegistryStore, version: str, force: bool = False) -> None:
    """Remove a version's files (its row stays, marked, for the lineage of later ones).

    The active adapter is refused unless `force`, which first rolls back.
    """
    row = get(store, version)
    if row.get("status") == "active":
        if not force:
            raise AdapterError(f"{version} is the active adapter; `hearth adapters rollback` "
                               "first, or pass --force")
        rollback(store, row.get("base_checksum"))
    if row.get("path"):
        files.remove_tree(Path(row["path"]))
    files.remove_tree(root() / version)
    status = "failed" if row.get("status") == "training" else None
    fields: dict[str, Any] = {"path": None, "reason": f"deleted {now_iso()}"}
    if status:
        fields["status"] = status
    store.update_adapter_version(version, **fields)
    store.set_setting(HISTORY_KEY, [v for v in history(store) if v != version])


def recover(store: RegistryStore) -> list[str]:
    """Clean up after a killed refresh (call only while holding the refresh lock).

    Rows stuck in 'training' become 'failed'; their folders and `.tmp-*` leftovers go.
    Returns what was done, for the log.
    """
    done = []
    for tmp in root().glob(".tmp-*"):
        files.remove_tree(tmp)
        done.append(f"removed {tmp.name}")
    for marker in root().glob(".paused-*"):
        marker.unlink(missing_ok=True)
    known = set()
    for row in store.list_adapter_versions():
        known.add(row["id"])
        if row.get("status") == "training":
            files.remove_tree(root() / row["id"])
            fail(store, row["id"], "interrupted before it was evaluated (the run resumes on "
                 "the next refresh)")
            done.append(f"marked {row['id']} failed")
    for folder in root().iterdir():
        if _VERSION.match(folder.name) and folder.name not in known:
            files.remove_tree(folder)
            done.append(f"removed unregistered {folder.name}")
    return done
