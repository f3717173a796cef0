"""Crash safety (issue 7 §3): SIGKILL a child at many points while it saves accepted answers
and while it ingests; after each kill the database passes `PRAGMA integrity_check`, every
acknowledged answer is there with its feedback, and no document is half-ingested.

Training/promotion kills live in tests/adapters/test_crash.py, conversion kills in
tests/agent/test_convert_crash.py. HEARTH_KILL_POINTS scales the number of kills here.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("children.py")
ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("HEARTH_KILL_POINTS", "12"))
CHAT_KILLS = max(2, KILLS // 5)  # each Chat child imports MLX (~15 s on a busy 2-core box)


def start(hearth_home: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start a child; its stdout lines are collected by a thread. Returns after 'ready'."""
    env = {**os.environ, "HEARTH_HOME": str(hearth_home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(CHILD), *args], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(120):
        proc.kill()
        pytest.fail(f"child did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, lines


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def open_store():  # type: ignore[no-untyped-def]
    from memory.embed import HashEmbedder
    from memory.store import Store

    return Store.open(embedder=HashEmbedder())


@pytest.mark.slow
def test_kill9_while_saving_accepted_answers(tiny_model_dir: Path, hearth_home: Path) -> None:
    rng = random.Random(7)
    acked: dict[str, str] = {}
    for _ in range(CHAT_KILLS):
        t0 = time.monotonic()
        proc, lines = start(hearth_home, "chat", str(tiny_model_dir))
        t1 = time.monotonic()
        while len(lines) < 2 and proc.poll() is None and time.monotonic() - t1 < 60:
            time.sleep(0.01)  # the first turn warms up; kill among later writes
        print(f"start {t1 - t0:.1f}s, first turn {time.monotonic() - t1:.1f}s")
        time.sleep(rng.uniform(0.0, 2.0))
        kill(proc)
        time.sleep(0.05)  # let the reader thread drain what the child wrote before dying
        for line in lines[1:]:
            mid, kind = line.split()
            acked[mid] = kind
        with open_store() as store:
            assert store.integrity_check() == "ok"
    assert len(acked) >= CHAT_KILLS, f"the child acknowledged only {len(acked)} answers"
    check_acknowledged(acked)
    print(f"kill points: {CHAT_KILLS}, acknowledged answers kept: {len(acked)}/{len(acked)}")


def test_kill9_while_writing_turns_and_feedback(hearth_home: Path) -> None:
    """The same writes as a chat turn (user, assistant with its prompt, feedback) without the
    model, so many more kill points fit in the time: each lands at a random moment."""
    rng = random.Random(3)
    acked: dict[str, str] = {}
    for _ in range(KILLS):
        proc, lines = start(hearth_home, "writer", "100000")
        time.sleep(rng.uniform(0.0, 0.4))
        kill(proc)
        time.sleep(0.05)
        acked |= {line.split()[1]: "accepted" for line in lines if line.startswith("ack ")}
        with open_store() as store:
            assert store.integrity_check() == "ok"
    assert len(acked) >= KILLS
    check_acknowledged(acked)
    print(f"kill points: {KILLS}, acknowledged answers kept: {len(acked)}/{len(acked)}")


def check_acknowledged(acked: dict[str, str]) -> None:
    with open_store() as store:
        accepted = {a.message_id for a in store.accepted_examples()}
        for mid, kind in acked.items():
            msg = store.get_message(mid)
            assert msg.role == "assistant" and msg.feedback == kind, (mid, kind, msg.feedback)
            if kind == "edited":
                assert msg.edited_text and msg.edited_text.startswith("edited answer")
            if kind in ("accepted", "edited"):
                assert mid in accepted


def chunk_count(data: bytes) -> int:
    from memory.ingest import chunk_text, decode

    return len(chunk_text(decode(data)[0]))


def wait_for(lines: list[str], line: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while line not in lines:
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"child never printed {line!r}: {lines[-3:]}")
        time.sleep(0.002)


def test_kill9_while_ingesting_leaves_no_half_document(tmp_path: Path, hearth_home: Path) -> None:
    """Each stored document must match one whole version of its file: the content hash of a
    version the test wrote, and exactly that version's chunk count.

    Every file changes before each run, so a run writes every document. The child prints
    "file i" before file i, i.e. after files 0..i-1 were committed, and pauses between
    files; each kill waits for a random "file i" (i >= 1), so it provably lands after
    documents of that run were written (at least i of them are at the new version
    afterwards), and at least one kill must leave the run half done (some files new, some old).
    """
    import hashlib

    rng = random.Random(11)
    n_files = 30
    docs = tmp_path / "docs"
    docs.mkdir()
    versions: dict[str, int] = {}  # sha256 of every version written -> its chunk count
    current: dict[str, str] = {}  # resolved path -> sha256 of its content now

    def write(path: Path, text: str, mode: str = "w") -> None:
        with path.open(mode) as fh:
            fh.write(text)
        data = path.read_bytes()
        current[str(path.resolve())] = digest = hashlib.sha256(data).hexdigest()
        versions[digest] = chunk_count(data)

    for i in range(n_files):
        para = f"Note {i}: the heron came back to the pond at dawn. " * (40 + 25 * (i % 7))
        write(docs / f"note{i:02}.md", f"# Note {i}\n\n{para}\n")
    interrupted = 0
    for k in range(KILLS):
        proc, lines = start(hearth_home, "ingest", str(docs), "0.02")
        after = rng.randint(1, n_files - 1)
        wait_for(lines, f"file {after}", proc)
        time.sleep(rng.uniform(0.0, 0.02))  # now and then inside a file's transaction
        kill(proc)
        with open_store() as store:
            assert store.integrity_check() == "ok"
            documents = store.list_documents()
            for doc in documents:
                assert doc.content_hash in versions, f"kill {k}: {doc.path} matches no version"
                assert doc.n_chunks == versions[doc.content_hash], f"kill {k}: {doc.path}"
            fresh = sum(doc.content_hash == current[doc.path] for doc in documents)
        assert fresh >= after, f"kill {k}: files written before 'file {after}' are missing"
        interrupted += fresh < n_files
        for i in range(n_files):  # every file changes: the next run rewrites (updates) each
            write(docs / f"note{i:02}.md",
                  f"\nAppended after kill {k}: the heron left again. " * rng.randint(1, 30), "a")
    assert interrupted >= 1, "no kill landed in the middle of a run"
    print(f"ingest kills: {KILLS}, landed mid-run: {interrupted}")
    with open_store() as store:
        store.ingest(docs)
        documents = store.list_documents()
        assert len(documents) == 30
        assert all(d.n_chunks == chunk_count(Path(d.path).read_bytes()) for d in documents)
        assert any("heron" in h.text for h in store.search("heron at the pond", k=3))
