"""Crash safety of a whole refresh (issue 7 §3): SIGKILL the refresh worker at events across
training, gating and promotion; after each kill the database passes integrity_check, the
active adapter (if any) verifies and loads, and the next refresh recovers and finishes.

The registry's own pause points (copied/renamed/recorded) and a kill inside the training loop
with resume are in tests/adapters/test_crash.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALL_POINTS = ("training", "checkpoint", "verdict")
# each point costs a worker start (~15-60 s on 2 busy cores): CI kills at the gate; set
# HEARTH_REFRESH_KILLS=training,checkpoint,verdict to try all three
KILL_AT = tuple(os.environ.get("HEARTH_REFRESH_KILLS", "verdict").split(","))


@pytest.mark.slow
def test_kill9_during_refresh_keeps_database_and_adapter_servable(
    tiny_model_dir: Path, hearth_home: Path, tiny_runtime: object
) -> None:
    from adapters.training import registry
    from agent.llm import models
    from memory.embed import HashEmbedder
    from memory.store import Store

    with Store.open(embedder=HashEmbedder()) as store:
        for i in range(12):
            conv = store.new_conversation()
            store.add_message(conv, "user", f"Q{i}: who keeps the lighthouse?")
            mid = store.add_message(conv, "assistant", f"Orla ({i})", prompt_messages=[
                {"role": "user", "content": f"Q{i}: who keeps the lighthouse?"}])
            store.add_feedback(mid, "accepted")
        store.set_setting("adapters.training.train", {"num_layers": 1, "iters": 8, "steps_per_eval": 4,
                                             "steps_per_save": 2, "batch_size": 2})
        store.set_setting("adapters.training.gate", {"max_probe_regression": 50.0,
                                            "max_probe_regression_vs_base": 50.0,
                                            "min_improvement": 0.0})
        store.set_setting("adapters.jobs.refresh", {"min_accepted": 8, "skip_on_battery": False,
                                               "skip_if_active_minutes": 0})
    checksum = models.resolve(str(tiny_model_dir)).checksum
    env = {**os.environ, "HEARTH_HOME": str(hearth_home)}
    cmd = [sys.executable, "-m", "adapters.jobs.worker", "refresh", "--force", "--no-nice",
           "--model", str(tiny_model_dir)]
    killed = []
    for event_name in KILL_AT:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if json.loads(line).get("event") == event_name:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed.append(event_name)
                    break
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        with Store.open(embedder=HashEmbedder()) as store:
            assert store.integrity_check() == "ok"
            path, problems = registry.serving_path(store, checksum)
            if path is not None:
                registry.verify(path, checksum)
                tiny_runtime.set_adapter(path)  # type: ignore[attr-defined]
    assert killed, "the worker finished before any kill point"
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with Store.open(embedder=HashEmbedder()) as store:
        assert store.integrity_check() == "ok"
        statuses = [r["status"] for r in store.list_adapter_versions()]
        assert "training" not in statuses, statuses  # the crashed runs were recovered
        assert statuses.count("active") <= 1
        path, problems = registry.serving_path(store, checksum)
        assert path is not None and problems == [], (statuses, problems)
        registry.verify(path, checksum)
        tiny_runtime.set_adapter(path)  # type: ignore[attr-defined]
    assert not list(registry.root().glob(".tmp-*"))
    print(f"refresh kill points: {killed}")
