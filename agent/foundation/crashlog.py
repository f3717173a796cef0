"""The crash log: a crash's traceback in logs/crash.log without any of the user's text.

`log_crash` reduces the command line to its subcommand and flag names (`redact_argv`) and
cuts any argument's text that still appears in the traceback (an exception message quoting
it). It never raises, whatever argv holds. The CLI and the TUI both use it.

It does not decide what is a crash (`agent.foundation.errors.is_user_error` does).
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from agent.foundation import paths

_FLAG = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*")


def redact_argv(argv: Sequence[str], words: Collection[str] = ()) -> str:
    """The command line with no user text: the program's name, arguments found in `words`
    (subcommand names) and flag names (without `=value`); anything else becomes `…`.

    >>> redact_argv(["/venv/bin/hearth", "ask", "my PIN is 4321", "--seed=-1", "-1"], {"ask"})
    'hearth ask … --seed … …'
    """
    out = [os.path.basename(argv[0]) if argv else "hearth"]
    for arg in argv[1:]:
        flag = _FLAG.match(arg)
        if arg in words:
            out.append(arg)
        elif flag:
            out.append(flag.group(0) + (" …" if "=" in arg else ""))
        else:
            out.append("…")
    return " ".join(out)


def _scrub(text: str, argv: Sequence[str], words: Collection[str]) -> str:
    """Cut every argument's text (other than command words and flags) out of `text`: whole
    arguments first, then each of their words of 4+ characters (an exception message may
    quote only part of what the user typed)."""
    parts: set[str] = set()
    for arg in argv[1:]:
        if arg in words or _FLAG.fullmatch(arg):
            continue
        value = arg.partition("=")[2] if _FLAG.match(arg) else arg
        parts |= {value, *(w for w in value.split() if len(w) >= 4)}
    for part in sorted(parts, key=len, reverse=True):
        if len(part) >= 3:
            text = text.replace(part, "…")
    return text


def log_crash(exc: BaseException, origin: str = "cli", words: Collection[str] = ()) -> str:
    """Append the traceback to logs/crash.log without user text (see the module docstring);
    returns its path (or a note if unwritable). Never raises, whatever argv holds."""
    argv = list(sys.argv)
    try:
        log = paths.logs_dir() / "crash.log"
        body = _scrub("".join(traceback.format_exception(exc)), argv, words)
        with log.open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"--- {datetime.now(UTC).isoformat()} {origin} {redact_argv(argv, words)}\n")
            fh.write(body)
        paths.make_private(log)
        return str(log)
    except (OSError, ValueError):
        return "(the crash log could not be written)"
