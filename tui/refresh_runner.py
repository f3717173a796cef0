"""Run a refresh (train, gate, maybe promote) in a child process and read its progress.

"Train now" starts `python -m adapters.jobs.worker refresh --force`, the same worker the nightly
timer runs, in its own session with its output in a log file, so training never slows the
UI and survives the app quitting. `follow()` tails that log; `refresh_event()` turns the
worker's JSON-lines events into text and (step, total) progress. No training happens here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.foundation import paths

if TYPE_CHECKING:
    from agent.llm.runtime import Runtime


def refresh_model(runtime: Runtime | None) -> str | None:
    """The `--model` a refresh should train on: the loaded model's folder (None: bundled)."""
    if runtime is None or runtime.ref.bundled:
        return None
    return str(runtime.ref.path)


def start_refresh(model: str | None) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a refresh now (`python -m adapters.jobs.worker refresh --force`) in its own session.

    `--force` skips the battery and recent-activity checks (the user asked), not the
    cold-start minimum. Output goes to a log file, not a pipe, so the refresh outlives the
    app: quitting does not stop training. Returns the process and the log's path.
    """

    command = [sys.executable, "-m", "adapters.jobs.worker", "refresh", "--force"]
    if model:
        command += ["--model", model]
    log = paths.logs_dir() / "refresh-app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )
    paths.make_private(log)
    return process, log


def stop_refresh(process: subprocess.Popen[bytes]) -> None:
    """Ask a running refresh to stop (Ctrl-C: the next refresh resumes its checkpoint)."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)


def follow(
    process: subprocess.Popen[bytes],
    log: Path,
    line: Callable[[str], None],
    stopped: Callable[[], bool] = lambda: False,
) -> int | None:
    """Feed each line the refresh writes to `line` until it exits; returns its exit code
    (None when `stopped()` says to stop watching; the refresh keeps running)."""
    with log.open("r", encoding="utf-8", errors="replace") as fh:
        while not stopped():
            text = fh.readline()
            if text:
                line(text.rstrip("\n"))
                continue
            if process.poll() is not None:
                for rest in fh:
                    line(rest.rstrip("\n"))
                return int(process.returncode)
            _pause.wait(0.2)
    return None


_pause = threading.Event()


def refresh_event(line: str) -> tuple[str, tuple[int, int] | None]:
    """A refresh log line as text for people, and its (step, total) progress if any.

    >>> refresh_event('{"event": "train", "step": 3, "total": 40, "loss": 2.1}')
    ('step 3/40  loss 2.100', (3, 40))
    >>> refresh_event('{"event": "result", "status": "cold_start", "reason": "3/20"}')
    ('result: cold_start (3/20)', None)
    >>> refresh_event("plain text")
    ('plain text', None)
    """
    try:
        event = json.loads(line) if line.lstrip().startswith("{") else None
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return line, None
    step, total = event.get("step"), event.get("total")
    progress = (step, total) if isinstance(step, int) and isinstance(total, int) and total else None
    return _event_text(event), progress


def _event_text(event: dict[str, Any]) -> str:
    kind = event.get("event", "?")
    if kind == "train":
        return f"step {event.get('step')}/{event.get('total')}  loss {_num(event.get('loss'))}"
    if kind == "val":
        return f"step {event.get('step')}/{event.get('total')}  validation loss {_num(event.get('val_loss'))}"
    if kind == "training":
        return (f"training {event.get('version')} on {event.get('n_train')} answers "
                f"({event.get('n_valid')} held out)")
    if kind == "evaluate":
        return f"evaluating {event.get('what')}"
    if kind == "verdict":
        return f"verdict: {'promote' if event.get('promote') else 'reject'} ({event.get('reason')})"
    if kind == "result":
        return f"result: {event.get('status')} ({event.get('reason')})"
    skip = {"event", "time"}
    rest = " ".join(f"{k}={_num(v)}" for k, v in event.items() if k not in skip)
    return f"{kind}: {rest}"


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
