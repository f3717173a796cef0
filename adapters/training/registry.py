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
other base (a missing checksum is refused too); a rejected candidate is kept for inspection
and never served, and no version trained on an answer the user has since forgotten is ever
served again (`purge_forgotten` deletes their files). A version's folder is always
`folder_for(id)`: derived from an id that must read `v<n>`, under the adapters root; the
stored `path` column is never trusted for reading or deleting. This module does not train or
evaluate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from adapters.training import files
from adapters.training.errors import AdapterError
from agent.foundation import paths
from agent.foundation.errors import AdapterLoadError
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
    def forgotten_since(self, since: str | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Base:
    """The base model an adapter is bound to (agent.llm.models.ModelRef fits)."""

    id: str
    path: Path
    checksum: str


def root() -> Path:
    return paths.adapters_dir()


def folder_for(version: str) -> Path:
    """`adapters/<version>/` for a valid version id (`v<n>`); AdapterError for anything else.

    >>> folder_for("../../etc")  # doctest: +SKIP
    Traceback (most recent call last):
    AdapterError: adapter id '../../etc' is not a Hearth version (v1, v2, ...); ...
    """
    if not isinstance(version, str) or not _VERSION.match(version):
        raise AdapterError(f"adapter id {version!r} is not a Hearth version (v1, v2, ...); "
                           "its row is ignored (delete it with `hearth adapters delete`)")
    return root() / version


def has_files(row: Mapping[str, Any]) -> bool:
    """Whether a row's version finished training and its folder was not deleted."""
    return bool(row.get("path")) and bool(_VERSION.match(str(row.get("id"))))


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
    target = folder_for(version)
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
    if base_checksum is not None and (not manifest.get("base_checksum")
                                      or manifest.get("base_checksum") != base_checksum):
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


def forgotten_ids(store: RegistryStore) -> set[str]:
    """Message ids of accepted answers the user has forgotten (the store's record)."""
    return {str(r["message_id"]) for r in store.forgotten_since(None)}


def trained_on(version: str, key: str = "message_ids") -> set[str]:
    """The ids (`message_ids` or `memory_ids`) a version's manifest says it was trained on
    (empty if unreadable)."""
    try:
        return {str(m) for m in read_manifest(folder_for(version)).get(key, [])}
    except AdapterError:
        return set()


def servable(row: Mapping[str, Any], base_checksum: str | None,
             forgotten: set[str] | None = None) -> Path:
    """The row's folder if it may be served on this base; AdapterError says why not.

    Checked every time: a valid id, a serveable status, the base binding (on the row and in
    the manifest; a missing checksum fails), every file's hash against the manifest, and,
    given `forgotten`, that it learned none of those answers.
    """
    folder = folder_for(str(row.get("id")))
    if row.get("status") in ("rejected", "training", "failed") or not row.get("path"):
        raise AdapterError(f"adapter {row['id']} is {row.get('status')} and is never served; "
                           "pick another with `hearth adapters list`")
    if base_checksum is not None and row.get("base_checksum") != base_checksum:
        raise AdapterError(f"adapter {row['id']} was trained for another base model "
                           f"({row.get('base_model_id')}); retrain with `hearth refresh`")
    manifest = verify(folder, base_checksum)
    if forgotten and forgotten & {str(m) for m in manifest.get("message_ids", [])}:
        raise AdapterError(f"adapter {row['id']} learned answers you have since forgotten and "
                           "is never served again; `hearth refresh` trains a replacement")
    return folder


def candidates(store: RegistryStore, first: str | None = None) -> list[str]:
    """Versions to try serving, in order: `first` (an A/B arm) or the active one, then
    (should it fail) previously active ones. None when nothing is asked for: the base serves."""
    active = store.active_adapter()
    lead = first or (active["id"] if active else None)
    if lead is None:
        return []
    rest = ([active["id"]] if first and active else []) + list(reversed(history(store)))
    return [lead] + [v for i, v in enumerate(rest) if v != lead and v not in rest[:i]]


def serve(store: RegistryStore, base_checksum: str | None,
          load: Callable[[Path | None], None],
          first: str | None = None) -> tuple[str | None, list[str]]:
    """Verify and `load` the first sound candidate, falling back for real: a version that
    fails verification *or* loading is skipped, and the base (`load(None)`) serves when none
    is left. Returns (the version now served or None, the problems met, for the user)."""
    problems: list[str] = []
    forgotten = forgotten_ids(store)
    for version in candidates(store, first):
        try:
            folder = servable(get(store, version), base_checksum, forgotten)
            load(folder)
            return version, problems
        except (AdapterError, AdapterLoadError) as exc:
            problems.append(str(exc))
    load(None)
    return None, problems


def serving_path(store: RegistryStore, base_checksum: str | None) -> tuple[Path | None, list[str]]:
    """What `serve` would load: the active adapter if sound, else the newest sound previously
    active one, else the base (None); plus the problems met on the way."""
    chosen: list[Path | None] = []
    _, problems = serve(store, base_checksum, chosen.append)
    return chosen[0], problems


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
    folder = servable(get(store, version), base_checksum, forgotten_ids(store))
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
    forgotten = forgotten_ids(store)
    for version in reversed(remaining):
        try:
            servable(get(store, version), base_checksum, forgotten)
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
    if _VERSION.match(version):  # the stored path is never used: a row cannot aim elsewhere
        files.remove_tree(folder_for(version))
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
            if _VERSION.match(str(row["id"])):  # any other id names no folder of ours
                files.remove_tree(folder_for(row["id"]))
            fail(store, row["id"], "interrupted before it was evaluated (the run resumes on "
                 "the next refresh)")
            done.append(f"marked {row['id']} failed")
    for folder in root().iterdir():
        if _VERSION.match(folder.name) and folder.name not in known:
            files.remove_tree(folder)
            done.append(f"removed unregistered {folder.name}")
    return done


# -- forgetting -----------------------------------------------------------------------------


def runs_root() -> Path:
    """`adapters/.runs/`: training runs in progress (they hold copies of accepted answers)."""
    return root() / ".runs"


def clear_runs(keep: Path | None = None) -> list[str]:
    """Delete every training run folder except `keep` (the run about to resume)."""
    done = []
    if runs_root().is_dir():
        for run in runs_root().iterdir():
            if keep is None or run.name != keep.name:
                files.remove_tree(run)
                done.append(f"removed run {run.name}")
    return done


def purge_forgotten(store: RegistryStore, runs: bool = True) -> list[str]:
    """After something was forgotten: delete every training run (with `runs`: their data may
    quote it) and the files of every version, other than the active one, trained on a
    forgotten answer. The active one is no longer served (`servable` refuses it) and the next
    refresh replaces or deactivates it, then calls this again (runs=False: its own run folder
    is kept for a resume) and its files go too."""
    done = clear_runs() if runs else []
    forgotten = forgotten_ids(store)
    if not forgotten:
        return done
    active = store.active_adapter()
    for row in store.list_adapter_versions():
        if (row.get("status") == "active" or (active and row["id"] == active["id"])
                or not has_files(row) or not (trained_on(row["id"]) & forgotten)):
            continue
        files.remove_tree(folder_for(row["id"]))
        store.update_adapter_version(row["id"], path=None,
                                     reason=f"deleted {now_iso()}: trained on forgotten answers")
        store.set_setting(HISTORY_KEY, [v for v in history(store) if v != row["id"]])
        done.append(f"deleted {row['id']} (trained on forgotten answers)")
    return done
