"""`python -m adapters.jobs.worker`: one refresh (or a bare training run) in its own low-priority process.

The chat and the TUI start this instead of training in their own process, so the model they
serve stays responsive: the worker lowers its priority (`os.nice(10)`), puts the optimised
BLAS in front of MLX, holds the `refresh.running` flag (the chat then keeps to one BLAS
thread), takes the free cores while nobody chats and one thread while someone does
(`agent.foundation.blas.choose_threads`, re-checked at each progress event), and writes progress as JSON lines to `logs/refresh.jsonl` (one object
per event: start, train, val, best, checkpoint, evaluate, verdict, result) for the TUI to
tail. `spawn()` starts it detached and returns the Popen.

    python -m adapters.jobs.worker refresh [--force] [--model PATH]
    python -m adapters.jobs.worker train RUN_DIR --model PATH [--config JSON]

Exit status: 0 when the refresh ran or skipped for a stated reason, 1 on an error (the last
line of stderr and the log say what to do). This module holds no training logic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.foundation import blas, offline, paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adapters.jobs.worker",
                                     description="Train Hearth's personal adapter at low priority.")
    sub = parser.add_subparsers(dest="command", required=True)
    ref = sub.add_parser("refresh", help="refresh the personal adapter (policy, train, gate)")
    ref.add_argument("--force", action="store_true", help="ignore battery, activity and data thresholds")
    ref.add_argument("--model", help="mlx-lm model folder (default: the bundled model)")
    tr = sub.add_parser("train", help="train on RUN_DIR/train.jsonl and valid.jsonl only")
    tr.add_argument("run_dir", type=Path)
    tr.add_argument("--model", required=True, help="mlx-lm model folder")
    tr.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    for p in (ref, tr):
        p.add_argument("--log", type=Path, help="also write JSON-lines progress here")
        p.add_argument("--no-nice", action="store_true", help="keep normal priority")
        p.add_argument("--blas-threads", type=int, default=-1,
                       help="BLAS threads (default -1: the free cores while nobody chats, one "
                            "while someone does, re-checked at each progress event; "
                            "0 = library default)")
    return parser


def _printer(log: Path | None, adaptive: bool = False) -> Any:
    def emit(event: dict[str, Any]) -> None:
        if adaptive:  # someone started (or stopped) chatting: give back (or take) cores
            blas.apply_policy("refresh")
        line = json.dumps(event, default=str)
        if log is not None:
            with log.open("a") as fh:
                fh.write(line + "\n")
        print(line, flush=True)

    return emit


def run_refresh(args: argparse.Namespace) -> int:
    from adapters.jobs import refresh
    from memory.store import Store

    with Store.open() as store:
        config, gate_config, policy = refresh.settings(store)
        result = refresh.refresh(store, args.model, policy, config, gate_config,
                                 progress=_printer(args.log, args.blas_threads < 0),
                                 force=args.force)
    print(f"{result.status}: {result.reason}", file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from adapters.training.config import TrainConfig
    from adapters.training.train import train_adapter
    from agent.llm.weights import load_model  # lazy: imports MLX

    model, tokenizer = load_model(args.model)
    config = TrainConfig.from_dict(json.loads(args.config))
    result = train_adapter(model, tokenizer, args.run_dir, config,
                           progress=_printer(args.log, args.blas_threads < 0))
    print(f"trained: best val loss {result.best_val_loss} at step {result.best_step}",
          file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths.private_umask()
    offline.enable()  # the worker is its own process: the chat's guard does not cover it
    if not args.no_nice:
        from adapters.jobs.priority import set_low_priority

        set_low_priority(args.blas_threads if args.blas_threads > 0 else None)
    blas.ensure()
    if args.blas_threads < 0:
        blas.apply_policy("refresh")
    from adapters.training.errors import AdapterError

    try:
        with blas.refresh_flag():  # the chat sees it and keeps to one BLAS thread
            return run_refresh(args) if args.command == "refresh" else run_train(args)
    except AdapterError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1


def command(*args: str) -> list[str]:
    """The worker's command line: this interpreter, absolute, with `-P` so neither the caller's
    working directory nor a script folder is put in front of Hearth's own modules (PYTHONPATH
    and the installed packages still apply). Run it with `cwd=working_dir()`."""
    return [str(Path(sys.executable).absolute()), "-P", "-m", "adapters.jobs.worker", *args]


def working_dir() -> Path:
    """The fixed working directory of every process Hearth spawns: its data directory."""
    return paths.data_dir()


def spawn(*extra: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `python -P -m adapters.jobs.worker refresh ...` detached (its own session), quietly,
    in Hearth's data directory: code in the caller's current directory never runs."""
    cmd = command("refresh", *extra)
    if log is not None:
        cmd += ["--log", str(log)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=working_dir())


if __name__ == "__main__":
    sys.exit(main())
