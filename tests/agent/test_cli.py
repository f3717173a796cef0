"""The `hearth` command line: help, one-line errors, ask/--json, REPL, Ctrl-C, doctor."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.cli.main import main
from memory.embed import HashEmbedder


@pytest.fixture(autouse=True)
def fast_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("memory.store.Embedder", HashEmbedder)


def test_help_lists_every_command_group(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("ask", "chat", "doctor", "models", "memory", "ingest", "history", "backup"):
        assert cmd in out


@pytest.mark.parametrize("spec, words", [
    ("/no/such/folder", "not found"),
    ("someone/some-model", "--allow-download"),
])
def test_bad_model_is_one_clear_line(spec: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "hi", "--model", spec]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hearth: ") and words in err[0]


def test_folder_without_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "hi", "--model", str(tmp_path)]) == 1
    assert "not an mlx-lm model folder" in capsys.readouterr().err


def test_ask_json_records_the_turn_with_its_sources(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memory", "add", "My cat is called Miso."]) == 0
    capsys.readouterr()
    assert main(["ask", "What is my cat called?", "--json", "--model", str(tiny_model_dir),
                 "--max-tokens", "6", "--temperature", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["generated_tokens"] <= 6 and out["finish_reason"] in ("length", "stop")
    assert any("Miso" in s["text"] and s["kind"] == "memory" for s in out["sources"])
    from memory.store import Store

    store = Store.open(embedder=HashEmbedder())
    msg = store.get_message(out["message_id"])
    assert msg.text == out["answer"] and msg.model_id == "tiny-llama"
    assert msg.prompt_messages[0]["role"] == "system"
    assert "Miso" in msg.prompt_messages[-1]["content"]
    assert msg.hits and msg.hits[0]["kind"] == "memory"


def test_doctor_reports_and_fixes_permissions(capsys: pytest.CaptureFixture[str], hearth_home: Path) -> None:
    from agent.foundation import paths

    leak = paths.data_dir() / "notes.txt"
    leak.write_text("x")
    leak.chmod(0o644)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL data directory" in out and "hearth doctor --fix" in out
    assert "ok   blas" in out or sys.platform != "linux"
    main(["doctor", "--fix"])
    assert stat.S_IMODE(leak.stat().st_mode) == 0o600
    assert "ok   data directory" in capsys.readouterr().out


def hearth(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli.main", *args]


def test_repl_feedback_and_remember(tiny_model_dir: Path, hearth_home: Path) -> None:
    script = "Hello there\n/accept\n/remember I live in Lisbon\n/quit\n"
    proc = subprocess.run(hearth("chat", "--model", str(tiny_model_dir), "--max-tokens", "4"),
                          input=script, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HEARTH_HOME": str(hearth_home)})
    assert proc.returncode == 0, proc.stderr
    assert "marked the last answer accepted" in proc.stderr and "remembered" in proc.stderr
    from memory.store import Store

    store = Store.open(embedder=HashEmbedder())
    assert [m.text for m in store.list_memories()] == ["I live in Lisbon"]
    assert len(store.accepted_examples()) == 1


def test_ctrl_c_cancels_and_keeps_partial_answer(tiny_model_dir: Path, hearth_home: Path) -> None:
    proc = subprocess.Popen(
        # temperature 1 on the random tiny model: tokens that never repeat, so the loop guard
        # does not end the answer before the Ctrl-C does
        hearth("ask", "Tell me a long story", "--model", str(tiny_model_dir), "--max-tokens", "100000",
               "--temperature", "1", "--seed", "1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
        env={**os.environ, "HEARTH_HOME": str(hearth_home), "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.read(1)  # unbuffered: exactly one byte, the answer has started
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest, err_bytes = proc.communicate(timeout=120)
    out, err = (first + rest).decode(), err_bytes.decode()
    assert proc.returncode == 0, err
    from memory.store import Store

    store = Store.open(embedder=HashEmbedder())
    conv = store.list_conversations()[0]
    answer = [m for m in store.conversation_messages(conv.id) if m.role == "assistant"][0]
    assert answer.text and out.strip() == answer.text.strip()
    assert 0 < answer.tokens_completion < 100000
