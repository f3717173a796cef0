"""`hearth prompts list|show|add|activate|diff` on a temp store, and answers keep recording
the version that produced them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main
from memory.embed import HashEmbedder
from memory.migrations import DEFAULT_SYSTEM_PROMPT, V1_SYSTEM_PROMPT
from memory.store import Store


@pytest.fixture(autouse=True)
def fast_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("memory.store.Embedder", HashEmbedder)


def out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_prompts_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    listed = out(capsys, "prompts", "list").splitlines()
    assert len(listed) == 2 and listed[1].startswith("* 2") and listed[0].startswith("  1")
    assert out(capsys, "prompts", "show").strip() == DEFAULT_SYSTEM_PROMPT
    assert out(capsys, "prompts", "show", "1").strip() == V1_SYSTEM_PROMPT
    assert "version 3 is now active" in out(capsys, "prompts", "add", "Be terse.\x1b[31m")
    assert out(capsys, "prompts", "show").strip() == "Be terse.\\x1b[31m"  # no raw escape
    diff = out(capsys, "prompts", "diff")
    assert f"-{DEFAULT_SYSTEM_PROMPT}" in diff and "+Be terse." in diff
    file = tmp_path / "p.txt"
    file.write_text("From a file.\n", encoding="utf-8")
    out(capsys, "prompts", "add", "--file", str(file))
    assert "version 2 is now active" in out(capsys, "prompts", "activate", "2")
    listed = out(capsys, "prompts", "list").splitlines()
    assert [line[0] for line in listed] == [" ", "*", " ", " "]
    with Store.open(embedder=HashEmbedder()) as store:
        assert store.active_system_prompt() == (2, DEFAULT_SYSTEM_PROMPT)


@pytest.mark.parametrize("argv", [["prompts", "activate", "9"], ["prompts", "show", "0"],
                                  ["prompts", "add", "   "], ["prompts", "add"],
                                  ["prompts", "diff", "1", "7"]])
def test_prompts_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("hearth: ") and err.count("\n") == 1


def test_answers_record_the_active_version(tiny_runtime, hearth_home: Path) -> None:  # type: ignore[no-untyped-def]
    from agent.core.turn import Chat
    from agent.llm.runtime import SamplingOptions

    with Store.open(embedder=HashEmbedder()) as store:
        chat = Chat(tiny_runtime, store, options=SamplingOptions(temperature=0.0, max_tokens=2))
        first = chat.ask("hi")
        store.activate_system_prompt(1)
        second = chat.ask("hello")
        records = [store.get_message(d.message_id or "") for d in (first, second)]
        assert [r.prompt_version for r in records] == [2, 1]
        assert (records[1].prompt_messages or [{}])[0]["content"] == V1_SYSTEM_PROMPT
        assert {r["version"]: r["answers"] for r in store.system_prompts()} == {1: 1, 2: 1}
