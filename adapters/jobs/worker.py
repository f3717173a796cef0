"""`python -m adapters.jobs.worker`: one refresh (or a bare training run) in its own low-priority process.

The chat and the TUI start this instead of training in their own process, so the model they
serve stays responsive: the worker lowers its priority (`os.nice(10)`), puts the optimised
BLAS in front of MLX, and writes progress as JSON lines to `logs/refresh.jsonl` (one object
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
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.jobs import refresh
from adapters.jobs.priority import set_low_priority
from adapters.training.config import TrainConfig
from adapters.training.errors import AdapterError
from adapters.training.train import train_adapter
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
        p.add_argument("--blas-threads", type=int, default=1,
                       help="BLAS threads (default 1: leaves a core to the chat; 0 = library default)")
    return parser


def _printer(log: Path | None) -> Any:
    def emit(event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str)
        if log is not None:
            with log.open("a") as fh:
                fh.write(line + "\n")
        print(line, flush=True)

    return emit


def run_refresh(args: argparse.Namespace) -> int:
    from memory.store import Store  # lazy: imports numpy and sqlite-utils

    with Store.open() as store:
        config, gate_config, policy = refresh.settings(store)
        result = refresh.refresh(store, args.model, policy, config, gate_config,
                                 progress=_printer(args.log), force=args.force)
    print(f"{result.status}: {result.reason}", file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from mlx_lm import load  # lazy: imports MLX


    model, tokenizer = load(args.model)[:2]
    config = TrainConfig.from_dict(json.loads(args.config))
    result = train_adapter(model, tokenizer, args.run_dir, config, progress=_printer(args.log))
    print(f"trained: best val loss {result.best_val_loss} at step {result.best_step}",
          file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths.private_umask()
    offline.enable()  # the worker is its own process: the chat's guard does not cover it
    if not args.no_nice:
        set_low_priority(args.blas_threads or None)
    blas.ensure()

    try:
        return run_refresh(args) if args.command == "refresh" else run_train(args)
    except AdapterError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return 1


def spawn(*extra: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `python -m adapters.jobs.worker refresh ...` detached (its own session), quietly."""
    cmd = [sys.executable, "-m", "adapters.jobs.worker", "refresh", *extra]
    if log is not None:
        cmd += ["--log", str(log)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=os.getcwd())


if __name__ == "__main__":
    sys.exit(main())
