"""Open Hearth's SQLite file safely, run write transactions, and purge freed bytes.

`open_database` creates the file 0600 (its directory 0700 when it creates it), turns on WAL,
foreign keys, a busy timeout and `secure_delete`, and turns "this is not a database" into a
`CorruptDatabaseError` that says how to restore. `write` is the one way this package opens a
write transaction (`BEGIN IMMEDIATE`, so two processes never deadlock upgrading a read lock).
`purge_disk` makes deleted content leave the files (FTS optimize, WAL checkpoint and
truncation; VACUUM when much of the file is free).

It does not create tables (see `migrations`) or know any table but the FTS ones it is given.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from agent.foundation import paths
from memory.errors import CorruptDatabaseError, StoreError

BUSY_TIMEOUT_MS = 10_000
SIDE_FILES = ("-wal", "-shm")
VACUUM_FREE_FRACTION = 0.25


def corrupt_error(path: Path, exc: BaseException) -> CorruptDatabaseError:
    return CorruptDatabaseError(
        f"{path} is not a readable Hearth database ({exc}). Move it aside and copy your latest "
        f"backup (made with `hearth backup PATH`) to {path}, or move it aside to start empty."
    )


def _prepare_file(path: Path) -> None:
    """Create the parent directory (0700 if new) and an empty 0600 file if none exists."""
    if not path.parent.exists():
        paths.ensure_private_dir(path.parent)
    if not path.exists():
        path.touch(mode=paths.FILE_MODE)
    elif path.is_dir():
        raise StoreError(f"{path} is a directory; give the path of a database file instead.")


def fix_permissions(path: Path) -> None:
    """Make the database and its -wal/-shm files 0600 when present."""
    for suffix in ("", *SIDE_FILES):
        paths.make_private(Path(str(path) + suffix))


def open_database(path: Path) -> Database:
    """Open (creating if needed) the database at `path` with Hearth's settings."""
    path = Path(path)
    _prepare_file(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        db = Database(conn, execute_plugins=False)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(
                f"{path} is locked by another program; close other Hearth windows and retry."
            ) from None
        raise corrupt_error(path, exc) from None
    fix_permissions(path)
    return db


@contextmanager
def write(db: Database) -> Iterator[Database]:
    """A write transaction: `BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any exception
    (KeyboardInterrupt included). Nested use becomes a savepoint."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def checkpoint(db: Database) -> bool:
    """Copy the WAL into the database and truncate it to zero bytes.

    Returns False when another connection's open read kept part of the WAL alive.
    """
    busy, _log, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0


def purge_disk(db: Database, fts_tables: Iterable[str] = (), vacuum: bool | None = None) -> bool:
    """Make deleted rows' bytes leave every file.

    `secure_delete` has already zeroed the deleted cells and freed pages; this merges the
    given FTS5 indexes into one segment (old segments still hold deleted terms, and freeing
    them zeroes them), then checkpoints and truncates the WAL (which held older copies of
    the pages). VACUUM only compacts the file: it runs when asked, or by default when more
    than VACUUM_FREE_FRACTION of the pages are free (deleted content is gone either way).

    Returns True when the WAL could be truncated (False if another process held it open;
    the next checkpoint finishes the job).
    """
    if db.conn.in_transaction:
        raise StoreError("purge_disk cannot run inside a transaction; commit first.")
    for table in dict.fromkeys(fts_tables):
        with write(db):
            db.execute(f"INSERT INTO [{table}]([{table}]) VALUES ('optimize')")
    if vacuum is None:
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        vacuum = free > VACUUM_FREE_FRACTION * pages
    done = checkpoint(db)
    if vacuum:
        db.execute("VACUUM")
        done = checkpoint(db)
    return done
