"""Child processes for the kill -9 and concurrency tests (run as `python children.py KIND ...`).

`chat MODEL_DIR`: Chat turns on the tiny model, each followed by feedback; prints
"ID KIND" to stdout only after `feedback` has returned (the acknowledgement the test holds
the store to). `ingest FOLDER [PAUSE]`: ingests the folder in a loop, printing "file I" before
each file (pausing PAUSE seconds there) and "pass N" after each pass.
`writer SECONDS [PAUSE [STOP_FILE]]`: store writes shaped like chat turns (user, assistant,
feedback) PAUSE seconds apart for SECONDS and until STOP_FILE exists, printing each
acknowledged id and "errors N" at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agent.foundation import blas, offline, paths

KINDS = ("accepted", "edited", "rejected")


def chat(model_dir: str) -> None:
    from agent.core.turn import Chat
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.embed import HashEmbedder
    from memory.store import Store

    store = Store.open(embedder=HashEmbedder())
    runtime = Runtime.load(ModelRef("tiny", Path(model_dir), "tiny-checksum"))
    chat = Chat(runtime, store, options=SamplingOptions(max_tokens=2))
    print("ready", flush=True)
    i = 0
    while True:
        done = chat.ask(f"turn {i}: what did I say about the garden?")
        kind = KINDS[i % 3]
        chat.feedback(kind, edited_text=f"edited answer {i}" if kind == "edited" else None)
        print(f"{done.message_id} {kind}", flush=True)
        i += 1
        if i % 5 == 0:
            chat.new_conversation()


def ingest(folder: str, pause: str = "0") -> None:
    from memory.embed import HashEmbedder
    from memory.ingest import IngestProgress
    from memory.store import Store

    def progress(p: IngestProgress) -> None:
        if p.phase == "files":  # called before file p.done: files before it are committed
            print(f"file {p.done}", flush=True)
            time.sleep(float(pause))

    store = Store.open(embedder=HashEmbedder())
    print("ready", flush=True)
    for n in range(1_000_000):
        store.ingest(Path(folder), progress=progress)
        print(f"pass {n}", flush=True)


def writer(seconds: str, pause: str = "0", stop_file: str = "") -> None:
    import sqlite3

    from memory.embed import HashEmbedder
    from memory.store import Store

    store = Store.open(embedder=HashEmbedder())
    end, i, errors = time.monotonic() + float(seconds), 0, 0
    print("ready", flush=True)
    while time.monotonic() < end or (stop_file and not Path(stop_file).exists()):
        try:
            conv = store.new_conversation(title=f"stress {i}")
            store.add_message(conv, "user", f"stress question {i}")
            mid = store.add_message(conv, "assistant", f"stress answer {i}",
                                    prompt_messages=[{"role": "user", "content": f"stress question {i}"}])
            store.add_feedback(mid, "accepted")
        except (sqlite3.Error, Exception) as exc:  # noqa: BLE001 - counted, reported, test fails
            errors += 1
            print(f"error {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"ack {mid}", flush=True)
        i += 1
        time.sleep(float(pause))
    print(f"errors {errors}", flush=True)


if __name__ == "__main__":
    paths.private_umask()
    blas.ensure()
    offline.enable()
    {"chat": chat, "ingest": ingest, "writer": writer}[sys.argv[1]](*sys.argv[2:])
