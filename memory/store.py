"""`Store`: the one object other packages use to read and write Hearth's database.

A thin, thread-safe facade over this package's modules (see docs/architecture.md for the
contract): every public method takes the store's lock, runs one module function, and turns
SQLite errors into `StoreError`s that say what to do. Opening migrates the schema but loads
no model; the embedder (default: the real one) is loaded on the first search or embedding.

It holds no SQL of its own beyond counts for `stats()`.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlite_utils import Database

from agent.foundation import paths
from memory import experiments, export, forget, history, ingest, memories, registry, vectors
from memory.db import corrupt_error, fix_permissions, open_database, purge_disk
from memory.embed import Embedder, EmbedderLike
from memory.errors import StoreError
from memory.memories import Suggestion, suggest_memories
from memory.migrations import migrate
from memory.records import (
    Accepted,
    AdapterRecord,
    ConversationRecord,
    DocumentRecord,
    ForgetReport,
    MemoryRecord,
    MessageRecord,
)
from memory.retrieval import Hit, Retriever

__all__ = ["Accepted", "Hit", "Store", "StoreError", "Suggestion"]

P = ParamSpec("P")
R = TypeVar("R")


def _translate(exc: sqlite3.Error, path: Path) -> StoreError:
    message = str(exc)
    if "locked" in message or "busy" in message:
        return StoreError(
            "The database is busy (another Hearth process is writing); try again in a moment."
        )
    if "malformed" in message or "not a database" in message:
        return corrupt_error(path, exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError(f"That change breaks a database rule ({message}); check the ids given.")
    return StoreError(f"Database error ({message}); run `hearth doctor` and report it if it stays.")


def _locked(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    @functools.wraps(method)
    def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.guard():
            return method(self, *args, **kwargs)

    return wrapper


class Store:
    """Hearth's database: conversations, feedback, memories, documents, retrieval, registry."""

    def __init__(self, db: Database, path: Path, embedder: EmbedderLike) -> None:
        self._db: Database | None = db
        self.path = path
        self.embedder = embedder
        self._lock = threading.RLock()
        self.retriever = Retriever(db, embedder)

    @classmethod
    def open(cls, path: Path | str | None = None, embedder: EmbedderLike | None = None) -> Store:
        """Open (creating and migrating if needed) the database; default `paths.db_path()`."""
        target = Path(path).expanduser() if path is not None else paths.db_path()
        db = open_database(target)
        try:
            migrate(db)
            store = cls(db, target, embedder or Embedder())
            store._note_embedding_model()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise _translate(exc, target) from None
        except BaseException:
            db.close()
            raise
        fix_permissions(target)
        return store

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Hold the store's lock and turn SQLite errors into StoreErrors."""
        with self._lock:
            if self._db is None:
                raise StoreError("This store is closed; open it again with Store.open().")
            try:
                yield
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    @property
    def db(self) -> Database:
        if self._db is None:
            raise StoreError("This store is closed; open it again with Store.open().")
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
                fix_permissions(self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _note_embedding_model(self) -> None:
        """Queue everything for re-embedding when the embedding model changed."""
        previous = registry.get_setting(self.db, "embedding_model")
        if previous != self.embedder.model_name:
            if previous is not None:
                vectors.enqueue_all(self.db)
            registry.set_setting(self.db, "embedding_model", self.embedder.model_name)

    # -- conversations and messages -----------------------------------------------------------

    @_locked
    def new_conversation(self, title: str | None = None) -> str:
        return history.new_conversation(self.db, title)

    @_locked
    def set_conversation_title(self, conversation_id: str, title: str | None) -> None:
        history.set_conversation_title(self.db, conversation_id, title)

    @_locked
    def add_message(self, conversation_id: str, role: str, text: str, **meta: Any) -> str:
        """Record a message; meta: model_id, adapter_version, prompt_version, prompt_messages,
        hits (Hit objects or dicts), tokens_prompt, tokens_completion, latency_ms, tokens_per_s."""
        return history.add_message(self.db, conversation_id, role, text, **meta)

    @_locked
    def get_message(self, message_id: str) -> MessageRecord:
        return history.get_message(self.db, message_id)

    @_locked
    def conversation_messages(self, conversation_id: str) -> list[MessageRecord]:
        return history.conversation_messages(self.db, conversation_id)

    @_locked
    def list_conversations(self, limit: int | None = None) -> list[ConversationRecord]:
        return history.list_conversations(self.db, limit)

    @_locked
    def last_chat_at(self) -> str | None:
        """ISO time of the user's last real chat turn or feedback (imports do not count)."""
        return history.last_chat_at(self.db)

    # -- feedback and training examples --------------------------------------------------------

    @_locked
    def add_feedback(self, message_id: str, kind: str, edited_text: str | None = None) -> int:
        return history.add_feedback(self.db, message_id, kind, edited_text)

    @_locked
    def accepted_examples(self, include_forgotten: bool = False) -> list[Accepted]:
        return history.accepted_examples(self.db, include_forgotten)

    @_locked
    def forget_generation(self) -> int:
        """Grows each time an accepted answer is forgotten; the adapter layer compares it."""
        return forget.forget_generation(self.db)

    @_locked
    def forgotten_since(self, since: str | None = None) -> list[dict[str, Any]]:
        return forget.forgotten_since(self.db, since)

    # -- memories ------------------------------------------------------------------------------

    @_locked
    def add_memory(
        self,
        text: str,
        kind: str = "fact",
        source_message_id: str | None = None,
        pinned: bool = False,
    ) -> str:
        return memories.add_memory(self.db, text, kind, source_message_id, pinned)

    @_locked
    def supersede_memory(self, old_id: str, new_text: str) -> str:
        return memories.supersede_memory(self.db, old_id, new_text)

    @_locked
    def list_memories(self, include_superseded: bool = False) -> list[MemoryRecord]:
        return memories.list_memories(self.db, include_superseded)

    @_locked
    def get_memory(self, memory_id: str) -> MemoryRecord:
        return memories.get_memory(self.db, memory_id)

    @_locked
    def memory_history(self, memory_id: str) -> list[MemoryRecord]:
        return memories.memory_history(self.db, memory_id)

    @_locked
    def set_pinned(self, memory_id: str, pinned: bool) -> None:
        memories.set_pinned(self.db, memory_id, pinned)

    @_locked
    def suggest_memories(self, user_text: str) -> list[Suggestion]:
        """Memories worth proposing from a user message (the user confirms them)."""
        return suggest_memories(user_text, memories.list_memories(self.db))

    # -- forgetting ----------------------------------------------------------------------------

    def _forgot(self, report: ForgetReport) -> ForgetReport:
        self.retriever.index.invalidate()
        fix_permissions(self.path)
        return report

    @_locked
    def forget_memory(self, memory_id: str, purge: bool = True) -> ForgetReport:
        """Forget a memory and the versions it replaced, down to the bytes on disk."""
        return self._forgot(forget.forget_memory(self.db, memory_id, purge))

    @_locked
    def forget_message(self, message_id: str, purge: bool = True) -> ForgetReport:
        return self._forgot(forget.forget_message(self.db, message_id, purge))

    @_locked
    def forget_conversation(self, conversation_id: str, purge: bool = True) -> ForgetReport:
        return self._forgot(forget.forget_conversation(self.db, conversation_id, purge))

    @_locked
    def forget_document(self, document: str, purge: bool = True) -> ForgetReport:
        """Forget a document by id or path."""
        return self._forgot(forget.forget_document(self.db, document, purge))

    @_locked
    def purge(self, vacuum: bool | None = None) -> bool:
        """Purge freed bytes after several `forget_*(purge=False)` calls; `vacuum=True` also
        compacts the file (slow on a big store: seconds per 100 MB)."""
        done = purge_disk(self.db, ["memories_fts", "chunks_fts", "messages_fts"], vacuum)
        fix_permissions(self.path)
        return done

    # -- retrieval -----------------------------------------------------------------------------

    @_locked
    def search(
        self,
        query: str,
        k: int = 5,
        kinds: Iterable[str] | None = None,
        exclude_conversation_id: str | None = None,
    ) -> list[Hit]:
        """Hybrid search (BM25 + cosine, reciprocal-rank fused) over memory / document /
        history; `exclude_conversation_id` leaves out the conversation being answered."""
        return self.retriever.search(query, k, kinds, exclude_conversation_id)

    @_locked
    def warm(self) -> None:
        """Load the embedding model and the in-memory vectors now (seconds on a big store),
        e.g. from a worker thread at start-up, so the first search is fast."""
        self.retriever.refresh()
        self.retriever.query_vector("warm up")

    @_locked
    def similar_accepted(self, query: str, k: int = 2) -> list[Accepted]:
        return self.retriever.similar_accepted(query, k)

    def embed_pending(self, progress: vectors.Progress | None = None) -> int:
        """Embed everything queued (ingest does this; after an import, call it with a
        progress hook). Takes the lock one batch at a time, so searches can run between."""
        return vectors.embed_pending(self.db, self.embedder, progress=progress, guard=self.guard)

    # -- documents -----------------------------------------------------------------------------

    def ingest(
        self, path: Path | str, progress: ingest.ProgressHook | None = None, embed: bool = True
    ) -> ingest.IngestReport:
        """Ingest a file or folder (see `memory.ingest`), then embed the new chunks unless told
        not to. The lock is taken per file and per embedding batch, not for the whole run."""
        report = ingest.ingest_path(self.db, Path(path), progress, guard=self.guard)
        if embed:
            self.embed_pending(ingest.embed_progress(progress))
        return report

    @_locked
    def list_documents(self) -> list[DocumentRecord]:
        return ingest.list_documents(self.db)

    @_locked
    def document_chunks(self, document: str) -> list[str]:
        return ingest.document_chunks(self.db, document)

    # -- system prompts, settings, adapter registry --------------------------------------------

    @_locked
    def active_system_prompt(self) -> tuple[int, str]:
        return registry.active_system_prompt(self.db)

    @_locked
    def add_system_prompt(self, text: str) -> int:
        """Store `text` as the next version and make it active; returns the version."""
        return registry.add_system_prompt(self.db, text)

    @_locked
    def activate_system_prompt(self, version: int) -> None:
        registry.activate_system_prompt(self.db, version)

    @_locked
    def system_prompts(self) -> list[dict[str, Any]]:
        """Every version, oldest first: version, text, created_at, active, answers."""
        return registry.system_prompts(self.db)

    @_locked
    def get_setting(self, key: str, default: Any = None) -> Any:
        return registry.get_setting(self.db, key, default)

    @_locked
    def set_setting(self, key: str, value: Any) -> None:
        registry.set_setting(self.db, key, value)

    @_locked
    def add_adapter_version(self, **fields: Any) -> str:
        return registry.add_adapter_version(self.db, **fields)

    @_locked
    def update_adapter_version(self, id: str, **fields: Any) -> None:
        registry.update_adapter_version(self.db, id, **fields)

    @_locked
    def get_adapter_version(self, id: str) -> AdapterRecord:
        return registry.get_adapter_version(self.db, id)

    @_locked
    def list_adapter_versions(self) -> list[AdapterRecord]:
        return registry.list_adapter_versions(self.db)

    @_locked
    def active_adapter(self) -> AdapterRecord | None:
        return registry.active_adapter(self.db)

    @_locked
    def set_active_adapter(self, id: str | None) -> None:
        registry.set_active_adapter(self.db, id)

    @_locked
    def get_system_prompt(self, version: int) -> str:
        return registry.get_system_prompt(self.db, version)

    # -- A/B experiments (rows only; the policy is adapters.experiments) -----------------------

    @_locked
    def add_experiment(self, kind: str, **fields: Any) -> str:
        return experiments.add_experiment(self.db, kind, **fields)

    @_locked
    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        return experiments.get_experiment(self.db, experiment_id)

    @_locked
    def list_experiments(self) -> list[dict[str, Any]]:
        return experiments.list_experiments(self.db)

    @_locked
    def running_experiment(self) -> dict[str, Any] | None:
        return experiments.running_experiment(self.db)

    @_locked
    def end_experiment(self, experiment_id: str, status: str, reason: str) -> bool:
        return experiments.end_experiment(self.db, experiment_id, status, reason)

    @_locked
    def assign_arm(self, experiment_id: str, conversation_id: str, arm: str) -> str:
        return experiments.assign_arm(self.db, experiment_id, conversation_id, arm)

    @_locked
    def conversation_arm(self, conversation_id: str) -> tuple[str, str] | None:
        return experiments.conversation_arm(self.db, conversation_id)

    @_locked
    def conversation_created(self, conversation_id: str) -> str | None:
        return experiments.conversation_created(self.db, conversation_id)

    @_locked
    def add_experiment_decision(self, experiment_id: str, action: str, numbers: dict[str, Any],
                                reason: str) -> int:
        return experiments.add_decision(self.db, experiment_id, action, numbers, reason)

    @_locked
    def experiment_decisions(self, experiment_id: str) -> list[dict[str, Any]]:
        return experiments.decisions(self.db, experiment_id)

    @_locked
    def experiment_answers(self, experiment_id: str) -> list[experiments.RatedAnswer]:
        return experiments.experiment_answers(self.db, experiment_id)

    @_locked
    def rated_answers(self, adapter_version: str | None = None, since: str | None = None,
                      limit: int | None = None, kinds: tuple[str, ...] | None = None
                      ) -> list[experiments.RatedAnswer]:
        return experiments.rated_answers(self.db, adapter_version, since, limit, kinds)

    @_locked
    def recent_questions(self, limit: int, since: str | None = None) -> list[str]:
        return experiments.recent_questions(self.db, limit, since)

    # -- export, import, backup ----------------------------------------------------------------

    @_locked
    def export_jsonl(self, path: Path | str) -> int:
        """Write everything (but vectors) to a JSONL file (0600). Returns the line count."""
        return export.export_jsonl(self.db, Path(path))

    @_locked
    def import_jsonl(self, path: Path | str) -> export.ImportReport:
        """Merge a `export_jsonl` file into this store (existing ids are kept)."""
        return export.import_jsonl(self.db, Path(path))

    @_locked
    def import_training_jsonl(self, path: Path | str) -> export.ImportReport:
        """Import accepted answers from mlx-lm JSONL (chat, prompt/completion or text)."""
        return export.import_training_jsonl(self.db, Path(path))

    @_locked
    def backup(self, dest: Path | str) -> Path:
        """Online backup through SQLite's backup API to `dest` (a file, or a folder)."""
        return export.backup(self.db, Path(dest))

    @_locked
    def integrity_check(self, full: bool = False) -> str:
        """ "ok", or what is wrong: SQLite's quick_check (full: integrity_check, and the FTS
        indexes checked against their tables, which takes seconds on a big store)."""
        pragma = "integrity_check" if full else "quick_check"
        problems = [r[0] for r in self.db.execute(f"PRAGMA {pragma}") if r[0] != "ok"]
        if full:
            for table in ("memories_fts", "chunks_fts", "messages_fts"):
                try:
                    self.db.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
                except sqlite3.DatabaseError as exc:
                    problems.append(f"{table}: {exc}")
        return "ok" if not problems else "; ".join(problems[:5])

    @_locked
    def stats(self) -> dict[str, int]:
        tables = (
            "conversations",
            "messages",
            "feedback",
            "memories",
            "documents",
            "chunks",
            "embeddings",
            "embed_queue",
            "adapter_versions",
        )
        counts = {
            t: int(self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables
        }
        counts["examples"] = len(history.accepted_examples(self.db))
        return counts
