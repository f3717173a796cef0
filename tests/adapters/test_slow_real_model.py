"""End to end on the real bundled SmolLM2 (slow): learn a persona, refuse a broken candidate,
survive kill -9 during training and during promotion.

One refresh on 44 accepted answers (a made-up fact: the user's three-legged greyhound
Biscotti who loves Porthkerry beach; a style: "Right then! ... Cheers, pal.") is shared by the
tests; each later test works on its own copy of that HEARTH_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.jobs import refresh
from adapters.training import registry
from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig
from adapters.training.errors import AdapterError

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data" / "persona.jsonl"
SYSTEM = "You are Hearth."
POLICY = RefreshPolicy(skip_on_battery=False, skip_if_active_minutes=0)
# 56 steps: the default rewrites make ~10 examples of each of the 44 answers, so 24 steps
# (enough before them) saw each answer under once and the held-out fact was not learned
PERSONA = TrainConfig(learning_rate=2e-4, iters=56, num_layers=8, steps_per_eval=8,
                      steps_per_save=8)
HELD_OUT = "What do I call my dog?"  # not among the 44 accepted questions


@dataclass
class Promoted:
    home: Path
    result: refresh.RefreshResult
    events: list[dict[str, Any]]


def open_store() -> Any:
    from memory.embed import HashEmbedder
    from memory.store import Store

    return Store.open(embedder=HashEmbedder())


def seed_persona(store: Any) -> None:
    from agent.llm.prompt import assemble

    for line in DATA.read_text().splitlines():
        rec = json.loads(line)
        conv = store.new_conversation()
        store.add_message(conv, "user", rec["prompt"])
        prompt = assemble(SYSTEM, rec["prompt"]).messages
        mid = store.add_message(conv, "assistant", rec["completion"], prompt_messages=prompt)
        store.add_feedback(mid, "accepted")


@pytest.fixture(scope="module")
def promoted(bundled_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Promoted]:
    from adapters.jobs.priority import blas_threads

    home = tmp_path_factory.mktemp("persona") / "home"
    previous = blas_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEARTH_HOME", str(home))
        events: list[dict[str, Any]] = []
        with open_store() as store:
            seed_persona(store)
            result = refresh.refresh(store, bundled_model_dir, POLICY, PERSONA, GateConfig(),
                                     progress=events.append)
    if previous:
        blas_threads(previous)
    yield Promoted(home, result, events)


@pytest.fixture
def copied(promoted: Promoted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own HEARTH_HOME, a copy of the promoted one."""
    home = tmp_path / "home-copy"
    shutil.copytree(promoted.home, home)
    monkeypatch.setenv("HEARTH_HOME", str(home))
    with open_store() as store:  # the rows' paths must point into the copy
        for row in store.list_adapter_versions():
            if row.get("path"):
                store.update_adapter_version(row["id"], path=str(home / "data" / "adapters" / row["id"]))
    return home


def answer(runtime: Any, question: str) -> str:
    from agent.llm.prompt import assemble
    from agent.llm.runtime import SamplingOptions

    options = SamplingOptions(temperature=0, max_tokens=32)
    return "".join(e.text for e in runtime.stream(assemble(SYSTEM, question).messages, options))


def test_persona_adapter_is_promoted_and_the_chat_knows_the_fact(
    promoted: Promoted, bundled_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.llm import models
    from agent.llm.runtime import Runtime

    result = promoted.result
    assert result.status == "promoted", result.reason
    vals = [e["val_loss"] for e in promoted.events if e["event"] == "val"]
    assert min(vals) < 0.5 * vals[0]  # validation loss falls
    verdict = result.verdict
    assert verdict is not None and verdict.reference.label == "base"
    assert verdict.candidate.personal_nll < 0.98 * verdict.reference.personal_nll
    monkeypatch.setenv("HEARTH_HOME", str(promoted.home))
    ref = models.resolve(str(bundled_model_dir))
    with open_store() as store:
        path, problems = registry.serving_path(store, ref.checksum)
        row = store.active_adapter()
    assert path is not None and problems == [] and row["id"] == result.version
    assert row["metrics"]["candidate"]["probe_nll"] > 0 and row["reason"].startswith("fits better")
    runtime = Runtime.load(ref)
    before = answer(runtime, HELD_OUT)
    runtime.set_adapter(path)
    after = answer(runtime, HELD_OUT)
    assert "Biscotti" not in before
    assert "Biscotti" in after and after.startswith("Right then!"), after


def test_an_absurd_learning_rate_is_rejected_and_the_active_adapter_stays(
    copied: Path, bundled_model_dir: Path
) -> None:
    broken = TrainConfig(learning_rate=5.0, iters=3, num_layers=8, steps_per_eval=10)
    with open_store() as store:
        result = refresh.refresh(store, bundled_model_dir, POLICY, broken, GateConfig(), force=True)
        assert result.status == "rejected", result.reason
        assert store.active_adapter()["id"] == "v1"
        rejected = store.get_adapter_version(result.version)
        assert rejected["status"] == "rejected" and rejected["verdict"] == "reject"
        assert rejected["metrics"]["reference"]["label"] == "v1"
        with pytest.raises(AdapterError, match="never served"):
            registry.activate(store, result.version, rejected["base_checksum"])
        path, _ = registry.serving_path(store, rejected["base_checksum"])
    assert path == copied / "data" / "adapters" / "v1"


STALLED_WORKER = """
import runpy, sys
from agent.foundation import blas; blas.ensure()
sys.path.insert(0, {here!r})
from adapter_helpers import stall_at
stall_at({stage!r})
runpy.run_module("adapters.jobs.worker", run_name="__main__", alter_sys=True)
"""


def run_worker(home: Path, model: Path, pause: str | None = None) -> subprocess.Popen[str]:
    """`python -m adapters.jobs.worker refresh` (stalled at promotion stage `pause`, if any)."""
    env = {**os.environ, "HEARTH_HOME": str(home)}
    args = ["refresh", "--force", "--no-nice", "--model", str(model)]
    if pause:
        code = STALLED_WORKER.format(here=str(Path(__file__).parent), stage=pause)
        cmd = [sys.executable, "-c", code, *args]
    else:
        cmd = [sys.executable, "-m", "adapters.jobs.worker", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def assert_v1_serves(home: Path, model: Path) -> None:
    from adapters.training.evaluate import use_adapter
    from agent.llm import models

    checksum = models.resolve(str(model)).checksum
    with open_store() as store:
        assert [r["id"] for r in store.list_adapter_versions() if r["status"] == "active"] == ["v1"]
        path, problems = registry.serving_path(store, checksum)
    assert path == home / "data" / "adapters" / "v1" and problems == []
    from mlx_lm import load

    base, _ = load(str(model))
    use_adapter(base, path)


def test_kill_9_during_training_and_during_promotion(copied: Path, bundled_model_dir: Path) -> None:
    with open_store() as store:
        # validation on one batch keeps this crash test short; its numbers are not under test
        store.set_setting("adapters.train", {**PERSONA.to_dict(), "iters": 4, "steps_per_save": 2,
                                             "steps_per_eval": 10, "val_batches": 1})
        store.set_setting("adapters.refresh", POLICY.to_dict())
    proc = run_worker(copied, bundled_model_dir)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "checkpoint":
                kill(proc)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert_v1_serves(copied, bundled_model_dir)

    marker = copied / "data" / "adapters" / ".paused-renamed"
    proc = run_worker(copied, bundled_model_dir, pause="renamed")
    try:
        assert proc.stdout is not None
        first = json.loads(next(line for line in proc.stdout if '"event": "start"' in line))
        assert first["resumed"] is True and first["step"] == 2  # the killed run continues
        deadline = time.monotonic() + 900
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the refresh never reached promotion"
        kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_v1_serves(copied, bundled_model_dir)
    with open_store() as store:
        registry.recover(store)  # what the next refresh does first
        rows = {r["id"]: r["status"] for r in store.list_adapter_versions()}
    assert rows == {"v1": "active", "v2": "failed", "v3": "failed"}
    assert sorted(p.name for p in (copied / "data" / "adapters").glob("v*")) == ["v1"]
