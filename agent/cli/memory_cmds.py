"""`hearth memory ...`, `hearth ingest`, `hearth history search`, `hearth backup`.

Thin shells over `memory.store.Store`; output is plain text, one item per line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm


def register(sub: Any) -> None:
    mem = sub.add_parser("memory", help="what Hearth knows about you: facts and preferences")
    msub = mem.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    add = msub.add_parser("add", help="teach a fact or preference")
    add.add_argument("text")
    add.add_argument("--preference", action="store_true", help="store it as a preference")
    add.add_argument("--pin", action="store_true", help="always offer it to the model")
    add.set_defaults(handler=cmd_add)
    ls = msub.add_parser("list", help="list memories")
    ls.add_argument("--all", action="store_true", help="include superseded versions")
    ls.set_defaults(handler=cmd_list)
    search = msub.add_parser("search", help="hybrid search over memories, documents and history")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=8)
    search.add_argument("--kind", choices=["memory", "document", "history"], action="append")
    search.set_defaults(handler=cmd_search)
    edit = msub.add_parser("edit", help="correct a memory (the old version is kept as history)")
    edit.add_argument("id")
    edit.add_argument("text")
    edit.set_defaults(handler=cmd_edit)
    forget = msub.add_parser("forget", help="erase a memory, message, conversation or document")
    forget.add_argument("id", help="an id (or a document path with --document)")
    forget.add_argument("--what", choices=["memory", "message", "conversation", "document"],
                        default="memory")
    forget.set_defaults(handler=cmd_forget)
    exp = msub.add_parser("export", help="everything to a JSONL file")
    exp.add_argument("path", type=Path)
    exp.set_defaults(handler=cmd_export)
    imp = msub.add_parser("import", help="a Hearth export, or accepted answers in mlx-lm JSONL")
    imp.add_argument("path", type=Path)
    imp.add_argument("--training", action="store_true",
                     help='mlx-lm formats: {"messages"}, {"prompt","completion"} or {"text"}')
    imp.set_defaults(handler=cmd_import)

    ingest = sub.add_parser("ingest", help="read files or folders (text, Markdown, code) into memory")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.set_defaults(handler=cmd_ingest)
    hist = sub.add_parser("history", help="past conversations")
    hsub = hist.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    hs = hsub.add_parser("search", help="search past messages")
    hs.add_argument("query")
    hs.add_argument("-k", type=int, default=10)
    hs.set_defaults(handler=cmd_history_search)
    hl = hsub.add_parser("list", help="recent conversations")
    hl.set_defaults(handler=cmd_history_list)
    hshow = hsub.add_parser("show", help="one conversation, each answer with its details")
    hshow.add_argument("conversation_id")
    hshow.set_defaults(handler=cmd_history_show)
    backup = sub.add_parser("backup", help="an online copy of the database (SQLite backup API)")
    backup.add_argument("path", type=Path, help="a file or a folder")
    backup.set_defaults(handler=cmd_backup)


def store() -> Any:
    from memory.store import Store  # lazy: imports numpy and sqlite-utils

    return Store.open()


def one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_add(args: argparse.Namespace) -> int:
    s = store()
    mid = s.add_memory(args.text, kind="preference" if args.preference else "fact", pinned=args.pin)
    print(mid)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = store().list_memories(include_superseded=args.all)
    if not rows:
        print("no memories yet: `hearth memory add \"...\"` or /remember in chat")
    for m in rows:
        flags = ("pinned " if m.pinned else "") + ("superseded " if m.superseded_by else "")
        print(f"{m.id}\t{m.kind}\t{m.created_at[:10]}\t{flags}{one_line(m.text)}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    hits = store().search(args.query, k=args.k, kinds=args.kind)
    if not hits:
        print("nothing found")
    for h in hits:
        print(f"{h.score:.4f}\t{h.kind}\t{h.id}\t{h.source}\t{one_line(h.text, 80)}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    print(store().supersede_memory(args.id, args.text))
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from agent.core.forgetting import forget

    report = forget(store(), args.what, args.id).report
    note = "" if report.purged else " (erased; disk space is scrubbed when other Hearth processes close)"
    print(f"forgot {report.kind} {', '.join(report.ids)}{note}")
    if report.flagged_examples:
        print(f"{len(report.flagged_examples)} accepted answer(s) leave the training data")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from memory.export import export_target  # lazy: imports sqlite-utils, like store()

    dest = export_target(args.path)
    n = store().export_jsonl(dest)
    print(f"wrote {n} records to {dest}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    s = store()
    report = s.import_training_jsonl(args.path) if args.training else s.import_jsonl(args.path)
    s.embed_pending()  # imports queue their text; embed it now so search finds it
    print(report.summary())
    for line, err in report.errors[:10]:
        print(f"  line {line}: {err}", file=sys.stderr)
    if len(report.errors) > 10:
        print(f"  ... and {len(report.errors) - 10} more lines with errors", file=sys.stderr)
    return 0 if not report.errors else 1


def cmd_ingest(args: argparse.Namespace) -> int:
    s = store()
    bar = tqdm(file=sys.stderr, leave=False, dynamic_ncols=True, disable=not sys.stderr.isatty())

    def progress(p: Any) -> None:
        bar.set_description("reading files" if p.phase == "files" else "embedding")
        bar.total = p.total
        bar.n = p.done
        bar.refresh()

    status = 0
    try:
        for path in args.paths:
            if not path.exists():
                print(f"hearth: {path} does not exist", file=sys.stderr)
                status = 1
                continue
            report = s.ingest(path, progress=progress)
            bar.clear()
            print(f"{path}: {report.summary()}")
            for name in report.skipped_binary:
                print(f"  skipped (binary): {name}", file=sys.stderr)
            for name in report.replaced_invalid_utf8:
                print(f"  invalid UTF-8 replaced with U+FFFD: {name}", file=sys.stderr)
            for name in report.skipped_outside:
                print(f"  skipped (a link leading outside {path}): {name}", file=sys.stderr)
            for name, err in report.errors:
                print(f"  unreadable: {name}: {err}", file=sys.stderr)
            if report.errors:
                status = 1
    finally:
        bar.close()
    return status


def cmd_history_search(args: argparse.Namespace) -> int:
    hits = store().search(args.query, k=args.k, kinds=["history"])
    if not hits:
        print("nothing found")
    for h in hits:
        print(f"{h.created_at[:16]}\t{h.id}\t{one_line(h.text, 90)}")
    return 0


def cmd_history_list(args: argparse.Namespace) -> int:
    for c in store().list_conversations(limit=50):
        print(f"{c.updated_at[:16]}\t{c.id}\t{c.n_messages} msgs\t{one_line(c.title or '', 70)}")
    return 0


def answer_details(m: Any) -> str:
    """'adapter v3 · prompt v2 · A/B candidate · edited': what served an answer, and its rating."""
    parts = [f"adapter {m.adapter_version}" if m.adapter_version else "base model"]
    if m.prompt_version is not None:
        parts.append(f"prompt v{m.prompt_version}")
    if m.arm:
        parts.append(f"A/B {m.arm}")
    if m.feedback:
        parts.append(m.feedback)
    return " · ".join(parts)


def cmd_history_show(args: argparse.Namespace) -> int:
    for m in store().conversation_messages(args.conversation_id):
        if m.role == "user":
            print(f"you: {m.text}")
        elif m.role == "assistant":
            print(f"hearth: {m.final_text}\n  [{answer_details(m)}]")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    print(f"backup written to {store().backup(args.path)}")
    return 0
