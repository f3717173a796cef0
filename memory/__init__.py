"""Hearth's memory: one private SQLite file and everything read from or written to it.

`from memory.store import Store` is the entry point (see docs/architecture.md). The modules:
`db` (opening the file safely), `migrations` (the schema), `history` (conversations, messages,
feedback), `memories` (facts and preferences, and the rule-based suggester), `registry`
(system prompts, adapter versions, settings), `embed` and `vectors` (embeddings), `retrieval`
(hybrid search), `ingest`, `forget`, `export`.

Nothing outside this package writes SQL. Importing it does not import torch.
"""
