"""`hearth eval` from the command line: the --json shape, --out files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.eval import CONDITIONS, report
from agent.cli.main import main


def _data(path: Path, n: int = 16) -> Path:
    rows = [{"prompt": f"What is fact number {i}?", "completion": f"Fact {i} is {i * 7}."}
            for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_json_shape_and_out_files(tmp_path: Path, tiny_model_dir: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["eval", "--data", str(_data(tmp_path / "d.jsonl")), "--model", str(tiny_model_dir),
                 "--limit", "2", "--iters", "2", "--max-tokens", "4", "--json", "--out", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == list(CONDITIONS) == ["base", "rag", "adapter", "both"]
    for name in CONDITIONS:
        cond = result[name]
        assert {"nll", "f1", "rougeL", "content_f1", "probe_nll"} <= set(cond)
        assert cond["nll"] > 0 and 0 <= cond["f1"] <= 1 and 0 <= cond["rougeL"] <= 1
        assert cond["n"] == 2
    assert result["rag"]["probe_nll"] == result["base"]["probe_nll"]  # same weights
    saved = json.loads((out / "results.json").read_text())
    assert saved["conditions"] == result and len(saved["items"]) == 2
    assert saved["meta"]["train"]["steps"] == 2 and saved["meta"]["config"]["limit"] == 2
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.load(out / "results.json").conditions() == result  # saved, versioned, reloadable


def test_table_is_markdown(tmp_path: Path, tiny_model_dir: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--data", str(_data(tmp_path / "d.jsonl")), "--model", str(tiny_model_dir),
                 "--limit", "1", "--iters", "1", "--max-tokens", "2", "--no-probe"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| condition | NLL/token")
    assert [line.split("|")[1].strip().split(" ")[0] for line in lines[2:6]] == list(CONDITIONS)
    assert "probe" in lines[0] and lines[2].rstrip().endswith("| — |")  # probe skipped


def test_too_few_accepted_answers_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "accepted answers" in err and "--demo" in err


def test_bad_data_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "only a question"}\n')
    assert main(["eval", "--data", str(bad)]) == 1
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_default_is_your_accepted_answers(tmp_path: Path, tiny_model_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from memory.store import Store

    with Store.open() as store:
        store.import_training_jsonl(_data(tmp_path / "mine.jsonl", 12))
        store.add_system_prompt("You are Tam's assistant.")
    code = main(["eval", "--model", str(tiny_model_dir), "--limit", "2", "--iters", "1",
                 "--max-tokens", "2", "--no-probe", "--json", "--out", str(tmp_path / "out")])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["both"]["n"] == 2
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["meta"]["n_train"] + saved["meta"]["n_heldout"] == 12
    first = saved["items"][0]["question"]
    assert first.startswith("What is fact number")  # asked afresh, as in the chat


def test_fact_quiz_and_augmented_training(tmp_path: Path, tiny_model_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    quiz = tmp_path / "quiz.jsonl"
    quiz.write_text(json.dumps({"question": "Tell me fact 3, please.", "facts": ["21"]}) + "\n"
                    + json.dumps({"question": "Which number is fact 5?", "facts": ["35"]}) + "\n")
    out = tmp_path / "out"
    code = main(["eval", "--data", str(_data(tmp_path / "d.jsonl")), "--model", str(tiny_model_dir),
                 "--limit", "1", "--iters", "1", "--max-tokens", "2", "--no-probe",
                 "--quiz", str(quiz), "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Fact quiz (2 questions" in text and "| adapter | " in text.split("Fact quiz")[1]
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert set(meta["quiz"]["conditions"]) == set(CONDITIONS) and meta["quiz"]["n"] == 2
    item = meta["quiz"]["items"][0]
    assert item["facts"] == ["21"] and isinstance(item["both"]["hit"], bool)
    assert item["base"]["hit"] == ("21" in item["base"]["answer"].split())
    assert meta["adapter_examples"]["rewrite"] > 0  # trained on other phrasings, as refresh does
    assert (out / "chart.png").exists()
    assert main(["eval", "--data", str(_data(tmp_path / "d.jsonl")), "--model",
                 str(tiny_model_dir), "--limit", "1", "--iters", "1", "--max-tokens", "2",
                 "--no-probe", "--no-quiz", "--phrasings", "0", "--json", "--out", str(out)]) == 0
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert "quiz" not in meta and meta["adapter_examples"]["rewrite"] == 0


def test_a_bad_quiz_line_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quiz = tmp_path / "quiz.jsonl"
    quiz.write_text('{"question": "Where?"}\n')
    assert main(["eval", "--data", str(_data(tmp_path / "d.jsonl")), "--quiz", str(quiz)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "quiz.jsonl:1" in err and "facts" in err
