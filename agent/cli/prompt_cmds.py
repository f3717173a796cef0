"""`hearth prompts list|show|add|activate|diff`: the system prompt's stored versions.

Every answer records the version that produced it; adding a version makes it active, and
activating an older one switches back without losing anything. Output is plain text; the
stored text is printed with control characters made visible.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path
from typing import Any

from agent.foundation.errors import HearthError
from memory.store import Store

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def register(sub: Any) -> None:
    prompts = sub.add_parser("prompts", help="system-prompt versions: list, show, add, activate, diff")
    psub = prompts.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    psub.add_parser("list", help="every version, the active one marked").set_defaults(handler=cmd_list)
    show = psub.add_parser("show", help="a version's full text (default: the active one)")
    show.add_argument("version", nargs="?", type=int)
    show.set_defaults(handler=cmd_show)
    add = psub.add_parser("add", help="store a new version and make it active")
    add.add_argument("text", nargs="?", help="the prompt text (or use --file)")
    add.add_argument("--file", type=Path, help="read the text from this UTF-8 file")
    add.set_defaults(handler=cmd_add)
    act = psub.add_parser("activate", help="make an existing version the active one")
    act.add_argument("version", type=int)
    act.set_defaults(handler=cmd_activate)
    diff = psub.add_parser("diff", help="what changed between two versions (default: active vs previous)")
    diff.add_argument("a", nargs="?", type=int)
    diff.add_argument("b", nargs="?", type=int)
    diff.set_defaults(handler=cmd_diff)


def visible(text: str) -> str:
    """Control characters (escapes included) shown as `\\xNN`, newlines and tabs kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _store() -> Store:
    return Store.open()


def _versions(store: Store) -> dict[int, dict[str, Any]]:
    return {int(row["version"]): row for row in store.system_prompts()}


def _get(versions: dict[int, dict[str, Any]], version: int) -> dict[str, Any]:
    if version not in versions:
        raise HearthError(f"no system-prompt version {version}; see `hearth prompts list`")
    return versions[version]


def cmd_list(args: argparse.Namespace) -> int:
    with _store() as store:
        for row in store.system_prompts():
            mark = "*" if row["active"] else " "
            flat = " ".join(row["text"].split())
            flat = flat if len(flat) <= 70 else flat[:69] + "…"
            print(f"{mark} {row['version']}\t{row['created_at'][:10]}\t{row['answers']} answers\t"
                  f"{visible(flat)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _store() as store:
        version = args.version if args.version is not None else store.active_system_prompt()[0]
        print(visible(_get(_versions(store), version)["text"]))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HearthError(f"cannot read {args.file} as UTF-8 text ({exc})") from None
    elif args.text is not None:
        text = args.text
    else:
        raise HearthError("give the prompt text, or --file PATH")
    with _store() as store:
        version = store.add_system_prompt(text.strip())
    print(f"system prompt version {version} is now active")
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    with _store() as store:
        store.activate_system_prompt(args.version)
    print(f"system prompt version {args.version} is now active")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    with _store() as store:
        versions = _versions(store)
        active = store.active_system_prompt()[0]
    if args.a is None:
        older = [v for v in versions if v < active]
        if not older:
            raise HearthError(f"version {active} has no earlier version to compare with")
        a, b = max(older), active
    else:
        a, b = args.a, args.b if args.b is not None else active
    lines = difflib.unified_diff(
        _get(versions, a)["text"].splitlines(), _get(versions, b)["text"].splitlines(),
        f"version {a}", f"version {b}", lineterm="",
    )
    out = "\n".join(visible(line) for line in lines)
    print(out or f"versions {a} and {b} are the same")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `hearth prompts`")
