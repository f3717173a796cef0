"""Where Hearth keeps its files, resolved in one place.

`HEARTH_HOME` relocates everything (tests and scripts point it at a temp dir). Otherwise the
platform's usual places are used: XDG data/cache dirs on Linux, ~/Library/Application Support
and ~/Library/Caches on macOS. Directories are created private (0700) and files 0600.

This module only computes and creates paths; it does not open databases or models.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

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
