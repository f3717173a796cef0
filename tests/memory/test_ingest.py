"""Ingest: text, Markdown, code, binary, invalid UTF-8, re-ingest, chunking, Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import ingest as ingest_mod
from memory.errors import NotFoundError
from memory.ingest import IngestProgress, chunk_text
from memory.store import Store


def make_folder(root: Path) -> Path:
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "plain.txt").write_text("The boiler is serviced every October.\n")
    (root / "notes" / "guide.md").write_text(
        "# Garden\n\nWater the tomatoes daily.\n\n## Bees\n\nThe hive is by the shed.\n"
    )
    (root / "notes" / "tool.py").write_text("def greet(name):\n    return f'hello {name}'\n")
    (root / "notes" / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (root / "notes" / "blob.txt").write_bytes(b"abc\x00def")
    (root / "notes" / "latin1.txt").write_bytes("café au lait is my favourite".encode("latin-1"))
    (root / "notes" / ".hidden.md").write_text("hidden")
    (root / "notes" / ".git").mkdir()
    (root / "notes" / ".git" / "config").write_text("[core]")
    return root / "notes"


def test_ingest_folder_reports_each_kind(store: Store, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    seen: list[IngestProgress] = []
    report = store.ingest(folder, progress=seen.append)
    names = lambda xs: sorted(Path(x).name for x in xs)  # noqa: E731
    assert names(report.added) == ["guide.md", "latin1.txt", "plain.txt", "tool.py"]
    assert names(report.skipped_binary) == ["blob.txt"]  # .png is not a text suffix
    assert names(report.replaced_invalid_utf8) == ["latin1.txt"]
    assert report.errors == [] and report.chunks == 4
    assert seen[0] == IngestProgress("files", 0, 5, str(folder / "blob.txt"))
    assert IngestProgress("files", 5, 5, None) in seen
    assert any(p.phase == "embedding" for p in seen)
    assert "caf\ufffd au lait" in store.document_chunks(str((folder / "latin1.txt").resolve()))[0]
    hits = store.search("when is the boiler serviced", kinds=["document"])
    assert hits[0].source == "doc plain.txt #1"
    assert store.db.execute("SELECT count(*) FROM embed_queue").fetchone()[0] == 0


def test_reingest_skips_unchanged_and_updates_changed(store: Store, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    store.ingest(folder)
    before = {d.path: d for d in store.list_documents()}
    (folder / "plain.txt").write_text("The boiler is serviced every March now.\n")
    report = store.ingest(folder)
    assert [Path(p).name for p in report.updated] == ["plain.txt"]
    assert sorted(Path(p).name for p in report.skipped_unchanged) == [
        "guide.md",
        "latin1.txt",
        "tool.py",
    ]
    assert report.added == []
    after = {d.path: d for d in store.list_documents()}
    plain = str((folder / "plain.txt").resolve())
    assert (
        after[plain].id == before[plain].id
        and after[plain].content_hash != before[plain].content_hash
    )
    assert "March" in store.document_chunks(plain)[0]
    assert store.search("October boiler", kinds=["document"])[0].text.find("October") == -1


def test_single_file_and_missing_path(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "README"
    f.write_text("plain words without a suffix")
    assert len(store.ingest(f).added) == 1
    with pytest.raises(NotFoundError):
        store.ingest(tmp_path / "nope")


def test_unreadable_file_is_reported(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok.txt").write_text("fine")
    (tmp_path / "locked.txt").write_text("secret")
    real = ingest_mod._read_regular

    def read_regular(path: Path) -> tuple[object, bytes | None]:
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(ingest_mod, "_read_regular", read_regular)
    report = store.ingest(tmp_path)
    assert report.errors == [(str(tmp_path / "locked.txt"), "Permission denied")]
    assert [Path(p).name for p in report.added] == ["ok.txt"]


def test_interrupt_leaves_nothing_half_ingested(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path)
    real = ingest_mod.chunk_text
    calls = {"n": 0}

    def chunk_then_interrupt(text: str, *a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C while the second file is being processed
            raise KeyboardInterrupt
        return real(text, *a, **k)

    monkeypatch.setattr(ingest_mod, "chunk_text", chunk_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        store.ingest(folder)
    docs = store.list_documents()
    assert len(docs) == 1 and all(d.n_chunks > 0 for d in docs)
    (orphans,) = store.db.execute(
        "SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)"
    ).fetchone()
    assert orphans == 0 and not store.db.conn.in_transaction


def test_interrupt_inside_transaction_rolls_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "a.txt"
    f.write_text("\n\n".join(f"para {i} " + "word " * 100 for i in range(4)))
    real_new_id = ingest_mod.new_id
    calls = {"n": 0}

    def new_id_then_interrupt() -> str:
        calls["n"] += 1
        if calls["n"] == 3:  # document id, first chunk id, then Ctrl-C
            raise KeyboardInterrupt
        return real_new_id()

    monkeypatch.setattr(ingest_mod, "new_id", new_id_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        store.ingest(f)
    assert store.list_documents() == []
    assert store.db.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0


def test_chunking_paragraphs_overlap_and_long_text() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 40 for i in range(10)]
    chunks = chunk_text("\n\n".join(paragraphs), size=500, overlap=60)
    assert all(len(c) <= 500 + 60 + 2 for c in chunks)
    assert len(chunks) >= 3
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert prev[-40:].split()[-1] in nxt[:80]  # overlap carries the tail forward
    joined = " ".join(chunks)
    assert all(f"Paragraph {i}" in joined for i in range(10))
    long = "x" * 2000
    assert [len(c) for c in chunk_text(long, size=800, overlap=0)] == [800, 800, 400]
    assert chunk_text("") == [] and chunk_text("\n\n  \n") == []


def test_symlinks_leading_outside_the_folder_are_not_followed(
    store: Store, tmp_path: Path
) -> None:
    """Issue 11 defect 8: `ln -s /etc/shadow docs/notes` was ingested."""
    secret_dir = tmp_path / "elsewhere"
    secret_dir.mkdir()
    (secret_dir / "shadow").write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    (secret_dir / "more.md").write_text("outside folder text\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "real.md").write_text("inside the folder\n")
    (docs / "notes").symlink_to(secret_dir / "shadow")
    (docs / "linked-dir").symlink_to(secret_dir, target_is_directory=True)
    (docs / "alias.md").symlink_to(docs / "real.md")  # inside: fine to follow
    report = store.ingest(docs)
    assert sorted(Path(p).name for p in report.skipped_outside) == ["linked-dir", "notes"]
    assert "2 links leading outside skipped" in report.summary()
    assert [Path(d.path).name for d in store.list_documents()] == ["real.md"]
    assert store.search("secret hash", kinds=["document"]) == []


def test_a_link_swapped_in_after_discovery_is_not_read(store: Store, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "secret.txt").write_text("outside secret\n")
    (docs / "a.md").write_text("fine\n")
    report = ingest_mod.IngestReport()
    (docs / "a.md").unlink()
    (docs / "a.md").symlink_to(tmp_path / "secret.txt")
    ingest_mod.ingest_file(store.db, docs / "a.md", report, root=docs)
    assert report.skipped_outside == [str(docs / "a.md")] and store.list_documents() == []


def test_a_file_name_that_is_not_utf8_does_not_abort_the_folder(
    store: Store, tmp_path: Path
) -> None:
    """Issue 11 defect 9: one non-UTF-8 file name aborted the whole folder ingest."""
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    odd = Path(os.fsdecode(bytes(docs) + b"/caf\xe9.txt"))
    odd.write_text("a note about the cafe\n")
    (docs / "z-ok.txt").write_text("a later file\n")
    report = store.ingest(docs)
    assert sorted(Path(p).name for p in report.added) == ["caf\\xe9.txt", "z-ok.txt"]
    assert all(p.encode("utf-8") for p in report.added)
    assert store.ingest(docs).skipped_unchanged  # the stored name is stable
    assert len(store.list_documents()) == 2
    assert store.document_chunks(str(odd)) == ["a note about the cafe"]  # by its real path
    store.forget_document(str(odd))
    assert len(store.list_documents()) == 1


def test_a_nul_byte_after_the_first_8_kb_is_binary(store: Store, tmp_path: Path) -> None:
    """Issue 11 defect 12: the NUL check read only the first 8 KB."""
    (tmp_path / "late.txt").write_bytes(b"plain text " * 2000 + b"\x00\x01\x02 tail")
    report = store.ingest(tmp_path / "late.txt")
    assert [Path(p).name for p in report.skipped_binary] == ["late.txt"]
    assert store.list_documents() == []


def test_ingest_exits_non_zero_when_it_reported_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 defect 12: `ingest` exited 0 after reporting errors."""
    from agent.cli.main import main
    from memory import embed
    from memory import store as store_module

    monkeypatch.setattr(store_module, "Embedder", embed.HashEmbedder)
    monkeypatch.setattr(ingest_mod, "MAX_BYTES", 10)
    (tmp_path / "big.txt").write_text("more than ten bytes of text")
    (tmp_path / "ok.txt").write_text("short")
    assert main(["ingest", str(tmp_path)]) == 1
    assert "big.txt" in capsys.readouterr().err
    (tmp_path / "big.txt").unlink()
    assert main(["ingest", str(tmp_path)]) == 0
