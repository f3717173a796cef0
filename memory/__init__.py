"""Hearth's memory: one private SQLite file and everything read from or written to it.

`from memory.store import Store` is the entry point (see docs/architecture.md). The modules:
`db` (opening the file safely, transactions, purging freed bytes), `migrations` (the schema),
`history` (conversations, messages, feedback, training examples), `memories` (facts and
preferences, and the rule-based suggester), `registry` (system prompts, adapter versions,
settings), `embed` (embedders), `vectors` (stored and in-memory vectors), `fts` (safe,
bounded BM25), `retrieval` (hybrid search), `ingest`, `forget`, `export` (JSONL, mlx-lm
import, backup), `records` (typed rows), `errors`; ids and timestamps come from `agent.foundation.ids`.

Nothing outside this package writes SQL. Importing it does not import torch.
"""
