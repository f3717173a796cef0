"""Ingest text files into documents and chunks.

`ingest_path` takes a file or a folder (text, Markdown, code; hidden and tool folders such as
.git or node_modules are skipped; a symlink whose target lies outside the folder is never
followed, only reported), and for each file: skips it if its content hash is unchanged,
skips and reports binary files (a NUL byte anywhere, or mostly undecodable bytes), decodes
invalid UTF-8 with replacement characters and reports it, splits the text into ~800-character
chunks on paragraph boundaries with a little overlap, and writes the document and its chunks
in one transaction, so Ctrl-C never leaves a file half-ingested. A file name that is not
valid UTF-8 is stored with its odd bytes written as `\\xNN` (stable, so re-ingest still
matches it). A progress hook sees each file (the CLI draws a bar from it).

It does not embed (the store drains the embedding queue afterwards) and does not remove
documents whose files were deleted (forget them explicitly).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from agent.foundation.ids import new_id, now_iso
from memory.db import write
from memory.errors import NotFoundError
from memory.records import DocumentRecord
from memory.vectors import Progress

TEXT_SUFFIXES = frozenset(
    [
        ".txt",
        ".md",
        ".markdown",
        ".rst",
        ".org",
        ".tex",
        ".csv",
        ".tsv",
        ".log",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".xml",
        ".html",
        ".htm",
        ".css",
        ".scss",
        ".py",
        ".pyi",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".mjs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".m",
        ".mm",
        ".rs",
        ".go",
        ".java",
        ".kt",
        ".kts",
        ".scala",
        ".swift",
        ".rb",
        ".php",
        ".pl",
        ".lua",
        ".r",
        ".jl",
        ".sh",
        ".bash",
        ".zsh",
        ".fish",
        ".ps1",
        ".sql",
        ".el",
        ".clj",
        ".hs",
        ".ml",
        ".ex",
        ".exs",
        ".erl",
        ".dart",
        ".vue",
        ".svelte",
        ".proto",
        ".graphql",
        ".tf",
        ".ipynb",
        ".bib",
        ".srt",
        ".vtt",
    ]
)
SKIP_DIRS = frozenset(
    [
        "node_modules",
        "__pycache__",
        "venv",
        "site-packages",
        "dist",
        "build",
        "target",
        ".git",
        ".hg",
        ".svn",
    ]
)
MAX_BYTES = 10 * 1024 * 1024
CHUNK_CHARS = 800
OVERLAP_CHARS = 120
BLANK_LINES = re.compile(r"\n[ \t]*\n+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


@dataclass
class IngestReport:
    """What happened to each file (paths as strings)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped_unchanged: list[str] = field(default_factory=list)
    skipped_binary: list[str] = field(default_factory=list)
    replaced_invalid_utf8: list[str] = field(default_factory=list)
    skipped_outside: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.skipped_unchanged)} unchanged",
            f"{len(self.skipped_binary)} binary skipped",
            f"{len(self.errors)} errors",
        ]
        if self.replaced_invalid_utf8:
            parts.append(f"{len(self.replaced_invalid_utf8)} with invalid UTF-8 replaced")
        if self.skipped_outside:
            parts.append(f"{len(self.skipped_outside)} links leading outside skipped")
        return ", ".join(parts) + f" ({self.chunks} chunks)"


@dataclass(frozen=True)
class IngestProgress:
    phase: str  # "files" then "embedding"
    done: int
    total: int
    path: str | None = None


ProgressHook = Callable[[IngestProgress], None]


def embed_progress(progress: ProgressHook | None) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total: progress(IngestProgress("embedding", done, total))


def display_name(path: Path | str) -> str:
    """A path as valid UTF-8 text: bytes that are not UTF-8 become `\\xNN`.

    >>> display_name(Path(os.fsdecode(b"caf\\xe9.txt")))
    'caf\\\\xe9.txt'
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, with every symlink resolved, lies in the resolved `root`."""
    return path.resolve().is_relative_to(root.resolve())


def discover(root: Path, outside: list[str] | None = None) -> list[Path]:
    """The files to ingest under `root` (or `[root]` for a file), sorted. Symlinks (to files
    or folders) whose target lies outside `root` are not followed; their names are added
    to `outside` when given."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise NotFoundError(f"{root} does not exist; give a file or folder to ingest.")
    found = []
    skipped = outside if outside is not None else []
    for folder, dirs, files in os.walk(root):
        keep = []
        for d in sorted(dirs):
            if d.startswith(".") or d in SKIP_DIRS:
                continue
            if (Path(folder) / d).is_symlink():  # os.walk does not follow it: say so
                if not inside(Path(folder) / d, root):
                    skipped.append(display_name(Path(folder) / d))
                continue
            keep.append(d)
        dirs[:] = keep
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") or not (path.suffix.lower() in TEXT_SUFFIXES or not path.suffix):
                continue
            if path.is_symlink() and not inside(path, root):
                skipped.append(display_name(path))
            elif path.is_file():
                found.append(path)
    return sorted(found)


def _split_long(piece: str, size: int) -> list[str]:
    """Split a paragraph longer than `size` at sentence ends, then at spaces."""
    out: list[str] = []
    for sentence in SENTENCE_END.split(piece):
        while len(sentence) > size:
            cut = sentence.rfind(" ", size // 2, size)
            cut = cut if cut > 0 else size
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence.strip():
            out.append(sentence.strip())
    return out


def _tail(text: str, overlap: int) -> str:
    """The last ~`overlap` characters of `text`, starting at a word boundary."""
    if overlap <= 0 or len(text) <= overlap:
        return text if overlap > 0 else ""
    tail = text[-overlap:]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail


def chunk_text(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[str]:
    """Pack paragraphs into chunks of about `size` characters; each chunk after the first
    starts with the last ~`overlap` characters of the one before.

    >>> chunk_text("one\\n\\ntwo", size=20)
    ['one\\n\\ntwo']
    >>> all(len(c) <= 20 + 10 for c in chunk_text("word " * 30, size=20, overlap=10))
    True
    """
    pieces: list[str] = []
    for paragraph in BLANK_LINES.split(text.replace("\r\n", "\n")):
        paragraph = paragraph.strip()
        if paragraph:
            pieces += [paragraph] if len(paragraph) <= size else _split_long(paragraph, size)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > size:
            chunks.append(current)
            carry = _tail(current, overlap)
            current = f"{carry}\n\n{piece}" if carry else piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


class BinaryFile(Exception):
    pass


def decode(data: bytes) -> tuple[str, bool]:
    """Text from bytes: (text, had_invalid_utf8). Raises BinaryFile for binary data."""
    if b"\0" in data:
        raise BinaryFile("contains NUL bytes")
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        if text.count("\ufffd") > max(16, len(text) // 10):
            raise BinaryFile("mostly not UTF-8 text") from None
        return text, True


def _read_regular(real: Path) -> tuple[os.stat_result, bytes | None]:
    """Stat and read an already-resolved path without following a link put there since
    (O_NOFOLLOW); the bytes are None when the file is over MAX_BYTES."""
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if info.st_size > MAX_BYTES:
            return info, None
        return info, f.read(MAX_BYTES + 1)


def ingest_file(
    db: Database, path: Path, report: IngestReport, root: Path | None = None
) -> None:
    """Ingest one file into `report` (one transaction; errors are recorded, not raised).
    With `root`, a file that has become a link leading outside it is skipped, not read."""
    name = display_name(path)
    real = path.resolve()
    if root is not None and not real.is_relative_to(root.resolve()):
        report.skipped_outside.append(name)
        return
    try:
        info, data = _read_regular(real)
    except OSError as exc:
        report.errors.append((name, exc.strerror or str(exc)))
        return
    if data is None:
        report.errors.append((name, f"larger than {MAX_BYTES // 2**20} MB; split it first"))
        return
    try:
        text, replaced = decode(data)
    except BinaryFile:
        report.skipped_binary.append(name)
        return
    digest = hashlib.sha256(data).hexdigest()
    resolved = display_name(real)
    existing = db.execute(
        "SELECT id, content_hash FROM documents WHERE path = ?", [resolved]
    ).fetchone()
    if existing and existing[1] == digest:
        report.skipped_unchanged.append(name)
        return
    if replaced:
        report.replaced_invalid_utf8.append(name)
    chunks = chunk_text(text)
    now = now_iso()
    with write(db):
        if existing:
            doc_id = existing[0]
            db.execute("DELETE FROM chunks WHERE document_id = ?", [doc_id])
            db.execute(
                "UPDATE documents SET content_hash = ?, mtime = ?, size = ?, updated_at = ? "
                "WHERE id = ?",
                [digest, info.st_mtime, info.st_size, now, doc_id],
            )
        else:
            doc_id = new_id()
            db.execute(
                "INSERT INTO documents (id, path, content_hash, mtime, size, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [doc_id, resolved, digest, info.st_mtime, info.st_size, now, now],
            )
        db.conn.executemany(
            "INSERT INTO chunks (id, document_id, ordinal, text) VALUES (?, ?, ?, ?)",
            [(new_id(), doc_id, i, chunk) for i, chunk in enumerate(chunks)],
        )
    (report.updated if existing else report.added).append(name)
    report.chunks += len(chunks)


def ingest_path(
    db: Database,
    root: Path,
    progress: ProgressHook | None = None,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> IngestReport:
    """Ingest a file or every text file under a folder; `guard()` is held around each file."""
    root = root.expanduser()
    report = IngestReport()
    files = discover(root, report.skipped_outside)
    within = root if root.is_dir() else None
    for i, path in enumerate(files):
        if progress:
            progress(IngestProgress("files", i, len(files), display_name(path)))
        with guard():
            ingest_file(db, path, report, within)
    if progress:
        progress(IngestProgress("files", len(files), len(files), None))
    return report


def list_documents(db: Database) -> list[DocumentRecord]:
    rows = db.query(
        "SELECT d.*, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS n_chunks "
        "FROM documents d ORDER BY d.path"
    )
    return [DocumentRecord(**row) for row in rows]


def document_chunks(db: Database, document: str) -> list[str]:
    """The chunk texts of a document (by id or path), in order."""
    document = display_name(document)
    row = db.execute(
        "SELECT id FROM documents WHERE id = ? OR path = ?", [document, document]
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"No document {document}; give its id or the full path it was ingested from."
        )
    rows = db.execute("SELECT text FROM chunks WHERE document_id = ? ORDER BY ordinal", [row[0]])
    return [r[0] for r in rows]
