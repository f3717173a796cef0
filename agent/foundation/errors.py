"""Hearth's base exception and the foundation's errors, and how any front end tells them
from crashes.

Every message says what to do next. `is_user_error` decides whether an exception is one
line for the user (Hearth's own errors) or a crash; `log_crash` keeps a crash's traceback in
the logs directory without any of the user's text: the command line is reduced to its
subcommand and flag names (`redact_argv`), and any argument's text that still appears in the
traceback (an exception message quoting it) is cut out. The CLI and the TUI both use these.
"""

import os
import re
import sys
import traceback
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

_FLAG = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*")


class HearthError(Exception):
    """Base class for errors Hearth reports to the user as one line."""


class ModelError(HearthError):
    """The model could not be found, converted, validated or loaded."""


class AdapterLoadError(HearthError):
    """An adapter could not be loaded onto the base model."""


class NetworkRefused(HearthError):
    """Something tried to reach the network while Hearth is offline."""


def is_user_error(exc: BaseException) -> bool:
    """True for Hearth's own errors, shown as one line.

    Every package's exception derives from `HearthError` (`memory.errors.StoreError`,
    `adapters.training.errors.AdapterError`, the ones here), so this is one `isinstance`.
    """
    return isinstance(exc, HearthError)


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
    from agent.foundation import paths  # not at the top: paths raises this module's errors

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
