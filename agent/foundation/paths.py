"""Where Hearth keeps its files, resolved in one place.

`HEARTH_HOME` relocates everything (tests and scripts point it at a temp dir). Otherwise the
platform's usual places are used: XDG data/cache dirs on Linux, ~/Library/Application Support
and ~/Library/Caches on macOS. Directories are created private (0700) and files 0600.

This module only computes and creates paths, and owns the one way Hearth deletes a file or
folder (`safe_remove`: resolved and checked to lie strictly inside Hearth's own data or cache
folder, refused otherwise); it does not open databases or models.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import platformdirs

from agent.foundation.errors import HearthError

APP = "hearth"
DIR_MODE = 0o700
FILE_MODE = 0o600


def home_override() -> Path | None:
    value = os.environ.get("HEARTH_HOME")
    return Path(value).expanduser().resolve() if value else None


def data_dir() -> Path:
    """The directory holding the database, adapters and logs (created 0700)."""
    home = home_override()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP, appauthor=False))
    return ensure_private_dir(path)


def cache_dir() -> Path:
    """The directory holding converted models (rebuildable; created 0700)."""
    home = home_override()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP, appauthor=False))
    return ensure_private_dir(path)


def db_path() -> Path:
    return data_dir() / "hearth.db"


def adapters_dir() -> Path:
    return ensure_private_dir(data_dir() / "adapters")


def logs_dir() -> Path:
    return ensure_private_dir(data_dir() / "logs")


def models_dir() -> Path:
    return ensure_private_dir(cache_dir() / "models")


def eval_tmp_dir() -> Path:
    """Where `hearth eval` keeps its per-run temporary folders (cleaned when stale)."""
    return ensure_private_dir(cache_dir() / "eval-tmp")


class UnsafePathError(HearthError):
    """A deletion was asked for a path outside Hearth's own folders (refused)."""


def hearth_roots() -> tuple[Path, ...]:
    """The folders Hearth owns and may delete inside: its data and cache directories."""
    return (data_dir().resolve(), cache_dir().resolve())


def check_inside(path: Path, within: Path | None = None) -> Path:
    """`path` made absolute with its parent resolved (the last component is not followed, so a
    symlink is judged, and removed, as the link itself); UnsafePathError unless it lies strictly
    inside one of `hearth_roots()` (or, given `within`, inside that work folder a caller
    handed over, e.g. a training run's folder).

    >>> check_inside(Path("/etc"))  # doctest: +SKIP
    Traceback (most recent call last):
    UnsafePathError: refusing to delete /etc: it is outside Hearth's folders ...
    """
    absolute = Path(os.path.abspath(path))
    if absolute.name in ("", ".", ".."):
        raise UnsafePathError(f"refusing to delete {path}: not a plain file or folder name")
    target = absolute.parent.resolve() / absolute.name
    roots = (within.resolve(),) if within is not None else hearth_roots()
    if not any(target != root and target.is_relative_to(root) for root in roots):
        raise UnsafePathError(
            f"refusing to delete {target}: it is outside Hearth's folders "
            f"({', '.join(map(str, roots))}); nothing was removed"
        )
    return target


def safe_remove(path: Path, within: Path | None = None) -> bool:
    """Delete a file, link or folder tree inside Hearth's folders; returns whether it existed.

    Every deletion in Hearth goes through here. The path is checked first (`check_inside`);
    a symlink is unlinked, never followed; rmtree itself never follows links inside the tree.
    """
    target = check_inside(path, within)
    if target.is_symlink() or target.is_file():
        target.unlink(missing_ok=True)
        return True
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        return True
    if target.exists():  # a socket or fifo
        target.unlink(missing_ok=True)
        return True
    return False


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and any missing parents, each 0700) and make it 0700. Returns the path."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for p in reversed(missing):  # mkdir(parents=True) would give the parents the umask's mode
        p.mkdir(mode=DIR_MODE, exist_ok=True)
        p.chmod(DIR_MODE)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def make_private(path: Path) -> None:
    """chmod a file 0600 (a directory 0700) if it exists."""
    if path.exists():
        mode = DIR_MODE if path.is_dir() else FILE_MODE
        if stat.S_IMODE(path.stat().st_mode) != mode:
            path.chmod(mode)


def private_umask() -> None:
    """Make every file this process creates readable by the user only."""
    os.umask(0o077)
