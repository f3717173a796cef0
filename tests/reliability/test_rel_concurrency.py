"""Concurrency (issue 7 §4): a process writing chat turns and feedback while the refresh
worker trains and gates on the same HEARTH_HOME: zero "database is locked", zero lost rows.

HEARTH_STRESS_SECONDS sets how long the writer runs (default 20; run it for minutes locally).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("children.py")
SECONDS = float(os.environ.get("HEARTH_STRESS_SECONDS", "20"))


@pytest.mark.slow
def test_chat_writes_while_refresh_trains(tiny_model_dir: Path, hearth_home: Path) -> None:
    from memory.embed import HashEmbedder
    from memory.store import Store

    with Store.open(embedder=HashEmbedder()) as store:
        for i in range(12):
            conv = store.new_conversation()
            store.add_message(conv, "user", f"Q{i}: who keeps the lighthouse?")
            mid = store.add_message(conv, "assistant", f"Orla ({i})", prompt_messages=[
                {"role": "user", "content": f"Q{i}: who keeps the lighthouse?"}])
            store.add_feedback(mid, "accepted")
        store.set_setting("adapters.training.train", {"num_layers": 1, "iters": 6, "steps_per_eval": 3,
                                             "steps_per_save": 2, "batch_size": 2})
        store.set_setting("adapters.training.gate", {"max_probe_regression": 50.0,
                                            "max_probe_regression_vs_base": 50.0})
        store.set_setting("adapters.jobs.refresh", {"min_accepted": 8, "skip_on_battery": False,
                                               "skip_if_active_minutes": 0})
    env = {**os.environ, "HEARTH_HOME": str(hearth_home), "PYTHONPATH": str(ROOT)}
    worker_cmd = [sys.executable, "-m", "adapters.jobs.worker", "refresh", "--force", "--no-nice",
                  "--model", str(tiny_model_dir)]
    workers: list[subprocess.CompletedProcess[str]] = []
    stop = hearth_home / "stop-writer"
    writer = subprocess.Popen([sys.executable, str(CHILD), "writer", str(SECONDS), "0.05", str(stop)],
                              env=env,
                              cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + SECONDS
    while writer.poll() is None and (not workers or time.monotonic() < deadline):
        workers.append(subprocess.run(worker_cmd, env=env, cwd=ROOT, text=True,
                                      capture_output=True, timeout=300))
    stop.touch()  # the writer ran through every refresh, start to finish
    out, err = writer.communicate(timeout=SECONDS + 120)
    lines = out.splitlines()
    acked = [line.split()[1] for line in lines if line.startswith("ack ")]
    assert lines[-1] == "errors 0", [x for x in lines if x.startswith("error")][:5]
    assert "locked" not in err and writer.returncode == 0, err[-2000:]
    for w in workers:
        assert w.returncode == 0 and "locked" not in w.stderr, w.stderr[-2000:]
    results = [w.stderr.strip().splitlines()[-1] for w in workers]
    assert any(r.startswith(("promoted", "rejected", "up_to_date")) for r in results), results

    with Store.open(embedder=HashEmbedder()) as store:
        assert store.integrity_check() == "ok"
        accepted = {a.message_id for a in store.accepted_examples()}
        missing = [mid for mid in acked if mid not in accepted]
        assert not missing, f"{len(missing)} acknowledged rows lost"
        stats = store.stats()
    print(f"stress {SECONDS:.0f}s: {len(acked)} turns ({3 * len(acked)} rows: user, assistant, "
          f"feedback) written beside {len(workers)} refresh run(s) {results}; 0 locked, 0 lost; "
          f"store {stats}")
