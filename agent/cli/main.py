"""`hearth` entry point: parser, common options, one-line errors, exit codes.

Exit codes: 0 ok, 1 a Hearth error (the message says what to do), 2 usage, 130 Ctrl-C.
While a command runs, stdout and stderr pass through `agent.foundation.textsafe` (no stored text can
send escape sequences to the terminal), and a crash is logged without the user's text.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from agent.cli.chat_cmds import open_app
from agent.cli.options import add_model_options
from agent.foundation import blas, offline, paths
from agent.foundation.crashlog import log_crash
from agent.foundation.errors import is_user_error
from agent.foundation.textsafe import SafeStream

Handler = Callable[[argparse.Namespace], int]

COMMAND_MODULES = (
    "agent.cli.chat_cmds",
    "agent.cli.doctor",
    "agent.cli.models_cmds",
    "agent.cli.memory_cmds",
    "agent.cli.adapters_cmds",
    "agent.cli.eval_cmds",
    "agent.cli.prompt_cmds",
    "agent.cli.experiments_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="A private assistant that lives on this machine and learns you. "
        "With no command, opens the chat app.",
        epilog="Data lives in $HEARTH_HOME if set, else the platform's data directory "
        "(see `hearth doctor`). Nothing leaves this machine unless you pass --allow-download.",
    )
    add_model_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a command group not built yet
            raise
        module.register(sub)
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return open_app(args)
    return handler(args)


def quiet_libraries() -> None:
    """Keep library progress bars and warnings off the user's terminal."""

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging  # lazy: imports transformers

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def command_words(parser: argparse.ArgumentParser) -> set[str]:
    """Every subcommand name under `parser` (kept in the crash log; all else is redacted)."""
    words: set[str] = set()
    for action in parser._actions:  # argparse keeps subparsers here, with no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words |= {name, *command_words(sub)}
    return words


def main(argv: Sequence[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)  # type: ignore[assignment]
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: Sequence[str] | None) -> int:
    paths.private_umask()
    blas.ensure()  # before anything imports MLX
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "allow_download", False):
        offline.enable()  # before quiet_libraries imports transformers / huggingface_hub
    quiet_libraries()
    try:
        return run(args, parser)
    except KeyboardInterrupt:
        print("hearth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except UnicodeEncodeError as exc:
        if "surrogates not allowed" not in str(exc):
            where = log_crash(exc, "cli", command_words(parser))
            print(f"hearth: internal error: {type(exc).__name__} (details in {where})",
                  file=sys.stderr)
            return 1
        print("hearth: an argument is not valid UTF-8 text; type it again in UTF-8",
              file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        if is_user_error(exc):
            print(f"hearth: {exc}", file=sys.stderr)
        else:
            where = log_crash(exc, "cli", command_words(parser))
            print(f"hearth: internal error: {type(exc).__name__}: {exc} (details in {where})",
                  file=sys.stderr)
        return 1


def entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

