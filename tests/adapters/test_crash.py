"""kill -9 during promotion and during training (tiny model, subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from adapter_helpers import register

from adapters.training import registry
from adapters.training.evaluate import use_adapter

HERE = Path(__file__).parent
PROMOTE = """
import sys
from pathlib import Path
from agent.foundation import blas; blas.ensure()
sys.path.insert(0, {here!r})
from adapter_helpers import register, stall_at
from adapters.training import registry
from memory.embed import HashEmbedder
from memory.store import Store
stall_at({stage!r})
store = Store.open(embedder=HashEmbedder())
register(store, Path({model!r}), registry.Base("tiny", Path({model!r}), {checksum!r}), Path({tmp!r}), seed=2)
"""


def wait_for(predicate: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the subprocess")
        time.sleep(0.05)


@pytest.fixture
def base(tiny_model_dir: Path) -> registry.Base:
    from agent.llm import models

    ref = models.resolve(str(tiny_model_dir))
    return registry.Base(ref.id, ref.path, ref.checksum)


@pytest.mark.parametrize("stage", ["copied", "renamed", "recorded"])
def test_kill_during_promotion_keeps_the_active_adapter(
    stage: str, store: Any, base: registry.Base, tiny_model_dir: Path, tmp_path: Path,
    tiny: tuple[Any, Any],
) -> None:
    v1 = register(store, tiny_model_dir, base, tmp_path, seed=1)
    code = PROMOTE.format(here=str(HERE), model=str(tiny_model_dir), checksum=base.checksum,
                          tmp=str(tmp_path), stage=stage)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        marker = registry.root() / f".paused-{stage}"
        wait_for(lambda: marker.exists() or proc.poll() is not None)
        assert proc.poll() is None, "the promotion subprocess died before the stage"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the chat's view right after the crash: the old adapter, loadable
    assert store.active_adapter()["id"] == v1
    path, problems = registry.serving_path(store, base.checksum)
    assert path == registry.root() / v1 and problems == []
    use_adapter(tiny[0], path)
    # the next refresh cleans up; the registry stays consistent
    registry.recover(store)
    rows = {r["id"]: r for r in store.list_adapter_versions()}
    assert not list(registry.root().glob(".tmp-*"))
    if stage == "recorded":  # passed the gate, folder complete, never activated
        assert rows["v2"]["status"] == "candidate"
        registry.verify(registry.root() / "v2", base.checksum)
    else:
        assert rows["v2"]["status"] == "failed" and not (registry.root() / "v2").exists()
    assert [r["id"] for r in rows.values() if r["status"] == "active"] == [v1]


def test_kill_during_training_then_resume(tiny_model_dir: Path, tmp_path: Path) -> None:
    from adapter_helpers import SYSTEM, pairs

    from adapters.training.dataset import make_snapshot
    from memory.records import Accepted

    rows = [Accepted(f"m{i}", [SYSTEM, {"role": "user", "content": q}], a, "t")
            for i, (q, a) in enumerate(pairs(12))]
    run = make_snapshot(rows, 0.25, 3).write(tmp_path / "run")
    config = json.dumps({"iters": 12, "num_layers": 2, "learning_rate": 1e-2,
                         "steps_per_save": 2, "steps_per_eval": 10})
    cmd = [sys.executable, "-m", "adapters.jobs.worker", "train", str(run), "--model",
           str(tiny_model_dir), "--config", config, "--no-nice"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "checkpoint" and event["step"] >= 4:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["step"] >= 4
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    events = [json.loads(x) for x in done.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["resumed"] is True
    assert events[0]["step"] == state["step"] and events[-1]["event"] == "done"
    assert (run / "best" / "adapters.safetensors").is_file()


def test_the_worker_lowers_its_own_priority() -> None:
    code = "import os; from adapters.jobs.priority import set_low_priority; set_low_priority(); print(os.nice(0))"
    before = os.nice(0)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == min(19, before + 10)
