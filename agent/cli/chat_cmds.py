"""`hearth ask`, `hearth chat` (a plain REPL) and opening the Textual app.

Ctrl-C during an answer cancels generation and keeps (and records) the partial text; a
second Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from agent.cli.options import add_model_options, progress_bar
from agent.core.commands import run_command


def bounded(kind: type, low: float, high: float) -> Any:
    """An argparse type: a number in [low, high], else a one-line usage error."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({kind(low)} to {kind(high)})")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temperature", type=bounded(float, 0, 10), help="0 = greedy (default 0.2)")
    parser.add_argument("--top-p", type=bounded(float, 0, 1), help="nucleus sampling (default 0.9)")
    parser.add_argument("--max-tokens", type=bounded(int, 1, 1_000_000),
                        help="answer length limit (default 256)")
    parser.add_argument("--seed", type=bounded(int, 0, 2**32 - 1),
                        help="seed for reproducible sampling (0 to 4294967295)")


def register(sub: Any) -> None:
    ask = sub.add_parser("ask", help="answer one question, streamed to stdout")
    ask.add_argument("question", help="the question (use quotes)")
    ask.add_argument("--json", action="store_true", help="print one JSON object with answer and stats")
    add_sampling_options(ask)
    add_model_options(ask)
    ask.set_defaults(handler=cmd_ask)
    chat = sub.add_parser("chat", help="a plain terminal chat (the app is `hearth`)")
    add_sampling_options(chat)
    add_model_options(chat)
    chat.set_defaults(handler=cmd_chat)


def sampling(args: argparse.Namespace) -> Any:
    from agent.llm.runtime import SamplingOptions  # lazy: imports MLX

    given = {
        "temperature": args.temperature, "top_p": args.top_p,
        "max_tokens": args.max_tokens, "seed": args.seed,
    }
    return SamplingOptions.from_dict({k: v for k, v in given.items() if v is not None})


def open_chat(args: argparse.Namespace, quiet: bool = False) -> Any:
    """Resolve/convert the model (with a progress bar), load it, open the store."""
    from agent.core.turn import Chat  # lazy: imports MLX (via the runtime)
    from agent.llm.runtime import Runtime  # lazy: imports MLX
    from memory.store import Store  # lazy: imports numpy and sqlite-utils

    progress = None if quiet else progress_bar("converting the bundled model (first run)")
    runtime = Runtime.open(args.model, allow_download=args.allow_download, progress=progress)
    store = Store.open()
    return Chat(runtime, store, options=sampling(args))


@contextlib.contextmanager
def ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """First Ctrl-C sets `cancel`; a second one raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stream_answer(chat: Any, text: str, echo: bool) -> Any:
    cancel = threading.Event()
    done = None
    with ctrl_c_cancels(cancel):
        for ev in chat.send(text, cancel):
            if ev.kind == "token" and echo:
                sys.stdout.write(ev.text)
                sys.stdout.flush()
            elif ev.kind == "notice":
                print(f"[{ev.text}]", file=sys.stderr)
            elif ev.kind == "done":
                done = ev
    return done


STOP_NOTES = {
    "loop": "[stopped: the answer started repeating itself]",
    "length": "[stopped at the answer length limit; --max-tokens allows more]",
}


def stop_note(done: Any) -> str | None:
    """What to tell the user when an answer did not end by itself (None: it did)."""
    reason = done.stats.finish_reason if done is not None and done.stats else None
    return STOP_NOTES.get(reason or "")


def cmd_ask(args: argparse.Namespace) -> int:
    chat = open_chat(args, quiet=args.json)
    done = stream_answer(chat, args.question, echo=not args.json)
    stats = done.stats
    if args.json:
        print(json.dumps({
            "answer": done.text,
            "message_id": done.message_id,
            "conversation_id": chat.conversation_id,
            "model": chat.runtime.ref.id,
            "adapter": done.adapter_version,
            "arm": done.arm,
            "finish_reason": stats.finish_reason if stats else None,
            "prompt_tokens": stats.prompt_tokens if stats else None,
            "generated_tokens": stats.generated_tokens if stats else None,
            "tokens_per_s": round(stats.tokens_per_s, 2) if stats else None,
            "prompt_tps": round(stats.prompt_tps, 2) if stats else None,
            "sources": [{"kind": h.kind, "source": h.source, "text": h.text} for h in done.hits],
        }, ensure_ascii=False))
    else:
        print()
        if note := stop_note(done):
            print(note, file=sys.stderr)
        if done.hits:
            print("sources: " + "; ".join(h.source for h in done.hits), file=sys.stderr)
    return 0


HELP = """commands: /accept  /reject  /edit TEXT  /remember FACT  /yes  /new  /help  /quit
(Ctrl-C stops an answer; Ctrl-D or /quit leaves)"""


def cmd_chat(args: argparse.Namespace) -> int:
    chat = open_chat(args)
    print(f"Hearth on {chat.runtime.ref.id}. {HELP}", file=sys.stderr)
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print()
            return 0
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            if handle_slash(chat, line):
                return 0
            continue
        print("hearth> ", end="", flush=True)
        done = stream_answer(chat, line, echo=True)
        print()
        if note := stop_note(done):
            print(note, file=sys.stderr)
        if done and done.hits:
            print("  sources: " + "; ".join(h.source for h in done.hits), file=sys.stderr)


def handle_slash(chat: Any, line: str) -> bool:
    """Run a REPL slash command; returns True to quit."""

    result = run_command(chat, line)
    if result.quit:
        return True
    print(f"[{result.message}]", file=sys.stderr)
    return False


def open_app(args: argparse.Namespace) -> int:
    try:
        from tui.app import run_app  # lazy: imports Textual
    except ModuleNotFoundError:
        return cmd_chat(_chat_defaults(args))
    return int(run_app(model=args.model, allow_download=args.allow_download) or 0)


def _chat_defaults(args: argparse.Namespace) -> argparse.Namespace:
    for key in ("temperature", "top_p", "max_tokens", "seed"):
        setattr(args, key, getattr(args, key, None))
    return args
