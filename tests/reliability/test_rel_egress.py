"""Zero egress (issue 7 §1): the socket guard, `hearth doctor`'s offline line, and the whole
pipeline (conversion, chat, ingest, memory, refresh, eval) run with the guard on and zero
connection attempts."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

from agent.foundation import offline
from agent.foundation.errors import NetworkRefused


def test_guard_refuses_remote_connects_with_one_line_naming_the_caller(guard: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(NetworkRefused) as err:
        s.connect(("93.184.216.34", 443))
    message = str(err.value)
    assert "\n" not in message and "offline" in message and "--allow-download" in message
    assert "test_rel_egress.py" in message  # names the code that tried
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(NetworkRefused):
        s.connect_ex(("example.com", 80))  # a host name: resolving would already leak
    assert len(offline.attempts) == 2
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_guard_allows_loopback_and_unix_sockets(guard: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "s")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(path)
    assert offline.attempts == []


def test_allowed_lifts_the_guard_only_inside_the_block(guard: None) -> None:
    with offline.allowed():
        assert "HF_HUB_OFFLINE" not in os.environ
        with socket.socket() as s:
            offline._check(s, ("192.0.2.1", 9))  # would pass to the real connect (not made here)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with socket.socket() as s, pytest.raises(NetworkRefused):
        s.connect(("192.0.2.1", 9))


def test_doctor_states_the_offline_status(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli.main import main

    main(["doctor"])
    assert "ok   offline: network blocked for Hearth" in capsys.readouterr().out
    offline.disable()
    try:
        main(["--allow-download", "doctor"])
        out = capsys.readouterr().out
        assert "FAIL offline: network allowed" in out and "drop --allow-download" in out
    finally:
        offline.enable()


def test_the_refresh_worker_process_goes_offline_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.jobs import worker

    offline.disable()
    seen: list[bool] = []
    monkeypatch.setattr(worker, "run_refresh", lambda args: seen.append(offline.is_enabled()) or 0)
    try:
        assert worker.main(["refresh", "--no-nice"]) == 0
    finally:
        offline.enable()
    assert seen == [True]


@pytest.mark.slow
def test_whole_pipeline_makes_zero_connection_attempts(
    guard: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Conversion of the bundled model, a chat turn, ingest, memory with the real embedder,
    a refresh (training + gate) and an eval slice, all with the guard on. Refresh and eval
    run on the tiny model to stay within a few minutes on 2 cores; the code path is the same."""
    from adapters.eval import data
    from adapters.eval.experiment import ExperimentConfig, run_experiment
    from adapters.jobs import refresh
    from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig
    from agent.core.turn import Chat
    from agent.llm import models
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.embed import Embedder
    from memory.store import Store

    ref = models.ensure_bundled(quantized=False)  # real conversion into the temp HEARTH_HOME
    runtime = Runtime.load(ref)
    embedder = Embedder()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "boat.md").write_text("# Boat\nThe boat is called Marguerite and sleeps four.\n")
    (docs / "garden.txt").write_text("Tomatoes go in the south bed in May.\n")
    with Store.open(embedder=embedder) as store:
        report = store.ingest(docs)
        assert len(report.added) == 2 and report.chunks >= 2, report.summary()
        store.add_memory("My sister is called Ines.")
        hits = store.search("what is my boat called", k=3)
        assert any("Marguerite" in h.text for h in hits)
        chat = Chat(runtime, store, options=SamplingOptions(max_tokens=8))
        done = chat.ask("What is my boat called?")
        chat.feedback("accepted")
        assert done.message_id
        for i in range(12):
            conv = store.new_conversation()
            store.add_message(conv, "user", f"Question {i}: who keeps the lighthouse?")
            mid = store.add_message(conv, "assistant", f"Ahoy! Orla keeps it ({i}).", prompt_messages=[
                {"role": "system", "content": "You are Hearth."},
                {"role": "user", "content": f"Question {i}: who keeps the lighthouse?"}])
            store.add_feedback(mid, "accepted")
        result = refresh.refresh(
            store, tiny_model_dir,
            RefreshPolicy(min_accepted=8, skip_on_battery=False, skip_if_active_minutes=0),
            TrainConfig(num_layers=1, iters=2, steps_per_eval=2, steps_per_save=2, batch_size=2),
            GateConfig(max_probe_regression=50.0, max_probe_regression_vs_base=50.0, max_probe_kl=50.0),
            force=True,
        )
        assert result.status in ("promoted", "rejected"), result.reason
    tiny = Runtime.load(ModelRef("tiny", tiny_model_dir, "tiny-checksum"))
    items = data.demo_items()
    split = data.with_valid(items[:10], items[10:12])
    config = ExperimentConfig(limit=2, max_tokens=4, probe=False, bootstrap=50,
                              train=TrainConfig(num_layers=1, iters=2, steps_per_eval=2,
                                                batch_size=2))
    run_experiment(tiny, split, tmp_path / "eval", config, embedder=embedder)
    assert offline.attempts == [], offline.attempts
    assert offline.is_enabled() and socket.socket.connect is not offline._original["connect"]
