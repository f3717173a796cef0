"""Opening the file: permissions, pragmas, corrupt files, migrations."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mem_helpers import db_files

from memory.db import open_database
from memory.embed import HashEmbedder
from memory.errors import CorruptDatabaseError, StoreError
from memory.migrations import MIGRATIONS, migrate
from memory.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_path_is_private(store: Store, hearth_home: Path) -> None:
    assert store.path == hearth_home / "data" / "hearth.db"
    store.add_memory("something to write so the WAL exists")
    files = db_files(store.path)
    assert len(files) == 3
    assert all(mode(p) == 0o600 for p in files), [oct(mode(p)) for p in files]
    assert mode(store.path.parent) == 0o700


def test_new_folder_is_created_private(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "h.db"
    with Store.open(target, embedder=HashEmbedder()) as s:
        assert s.path == target
    assert mode(target.parent) == 0o700
    assert mode(target) == 0o600


def test_pragmas(store: Store) -> None:
    db = store.db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


@pytest.mark.parametrize(
    "content", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_corrupt_file_gives_store_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(content)
    with pytest.raises(CorruptDatabaseError) as info:
        Store.open(bad, embedder=HashEmbedder())
    assert "hearth backup" in str(info.value)
    assert isinstance(info.value, StoreError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        Store.open(tmp_path, embedder=HashEmbedder())


def test_closed_store_says_so(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_memories()


def test_blank_database_migrates_to_latest(tmp_path: Path) -> None:
    db = open_database(tmp_path / "blank.db")
    applied = migrate(db)
    assert applied == [fn.__name__ for fn in MIGRATIONS]
    assert migrate(db) == []
    names = set(db.table_names())
    for table in (
        "conversations",
        "messages",
        "feedback",
        "memories",
        "documents",
        "chunks",
        "embeddings",
        "system_prompts",
        "adapter_versions",
        "settings",
        "deletions",
        "forgotten_examples",
        "memories_fts",
        "chunks_fts",
        "messages_fts",
    ):
        assert table in names
    assert db["memories"].detect_fts() == "memories_fts"


def test_upgrade_from_first_schema_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = open_database(path)
    assert migrate(db, upto="m001_initial") == ["m001_initial"]
    assert "chunks" not in db.table_names()
    db.execute(
        "INSERT INTO memories (id, text, kind, created_at, updated_at) "
        "VALUES ('M1', 'I keep bees in the garden', 'fact', '2025-01-01T00:00:00.000Z', "
        "'2025-01-01T00:00:00.000Z')"
    )
    db.close()
    with Store.open(path, embedder=HashEmbedder()) as s:
        assert [m.text for m in s.list_memories()] == ["I keep bees in the garden"]
        hits = s.search("bees", kinds=["memory"])
        assert [h.id for h in hits] == ["M1"]  # FTS and embeddings were built for old rows


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store.open(path, embedder=HashEmbedder()).close()
    db = open_database(path)
    db.execute("INSERT INTO _migrations VALUES ('m999_future', '2099-01-01T00:00:00Z')")
    db.close()
    with pytest.raises(StoreError, match="newer Hearth"):
        Store.open(path, embedder=HashEmbedder())


def test_open_does_not_import_torch(hearth_home: Path) -> None:
    code = (
        "import sys; from memory.store import Store; s = Store.open(); s.add_memory('x y z'); "
        "s.list_memories(); print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    env = {**os.environ, "HEARTH_HOME": str(hearth_home)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert out.stdout.split() == ["False", "False"]


def test_two_stores_share_the_file(store: Store) -> None:
    other = Store.open(store.path, embedder=HashEmbedder())
    try:
        mid = other.add_memory("the spare key is under the blue pot")
        assert [h.id for h in store.search("spare key", kinds=["memory"])] == [mid]
        other.forget_memory(mid, purge=False)
        assert store.search("spare key", kinds=["memory"]) == []
    finally:
        other.close()


def test_threads_share_one_store(store: Store) -> None:
    import threading

    cid = store.new_conversation()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.add_message(cid, "user", f"thread {n} message {i} about gardening")
                store.search("gardening", k=3)
        except BaseException as exc:  # pragma: no cover - the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.conversation_messages(cid)) == 80


def test_two_processes_write_at_once(hearth_home: Path) -> None:
    Store.open(embedder=HashEmbedder()).close()  # create and migrate first
    code = (
        "import sys; from memory.store import Store; from memory.embed import HashEmbedder\n"
        "s = Store.open(embedder=HashEmbedder())\n"
        "for i in range(40): s.add_memory(f'process {sys.argv[1]} fact {i}')\n"
        "s.search('fact'); s.close()"
    )
    env = {**os.environ, "HEARTH_HOME": str(hearth_home)}
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(n)],
            env=env,
            cwd=root,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with Store.open(embedder=HashEmbedder()) as s:
        assert len(s.list_memories()) == 80
        # A search embeds at most SEARCH_EMBED_LIMIT queued texts, and two searching at once
        # may take the same ones, so some can stay queued (it failed ~1 run in 3 asserting
        # an empty queue here); what must hold is that the queue is whole and drains once.
        queued = s.stats()["embed_queue"]
        assert s.embed_pending() == queued  # each queued text embedded once, none lost
        assert s.stats()["embed_queue"] == 0
        assert {h.text for h in s.search("process 0 fact 39", k=3)} >= {"process 0 fact 39"}


def test_set_active_adapter_is_one_transaction(store: Store) -> None:
    a = store.add_adapter_version()
    b = store.add_adapter_version()
    store.set_active_adapter(a)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    store.set_active_adapter(b)
    store.db.conn.set_trace_callback(None)
    writes = [s.split()[0].upper() for s in statements if s.split()[0].upper() != "SELECT"]
    assert writes == ["BEGIN", "UPDATE", "UPDATE", "COMMIT"]


def test_integrity_check_finds_a_broken_fts_index(store: Store) -> None:
    store.add_memory("bees make honey")
    assert store.integrity_check() == "ok"
    assert store.integrity_check(full=True) == "ok"
    store.db.execute("DELETE FROM memories_fts_data WHERE id > 10")  # damage the index
    assert "memories_fts" in store.integrity_check(full=True)
