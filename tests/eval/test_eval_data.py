"""What `hearth eval` learns from and scores: record formats, the split, the demo persona."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.eval import data
from adapters.training.errors import AdapterError

OPENER, SIGN_OFF = "Aye, love:", "Ta-ra."


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    return path


def test_three_mlx_lm_formats(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Cat?", "completion": "Pickle."},
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                      {"role": "user", "content": "Dog?"}, {"role": "assistant", "content": "None."}]},
        {"text": "Tam swims at Gaddings Dam on Sundays."},
        {"prompt": "Cat?", "completion": "Pickle."},  # a duplicate, kept once
    ]
    items = data.from_jsonl(_write(tmp_path / "d.jsonl", rows))
    assert len(items) == 3
    pc, chat, note = items
    assert (pc.question, pc.reference, pc.system, pc.history) == ("Cat?", "Pickle.", None, ())
    assert (chat.question, chat.reference, chat.system) == ("Dog?", "None.", "Be brief.")
    assert [m["content"] for m in chat.history] == ["Hi", "Hello"]
    assert not note.scorable and note.record() == {"text": note.reference}
    assert chat.record()["messages"][-2:] == [{"role": "user", "content": "Dog?"},
                                              {"role": "assistant", "content": "None."}]


@pytest.mark.parametrize("bad", ['{"prompt": "no answer"}', "[1, 2]", "not json",
                                 '{"messages": [{"role": "user", "content": "q"}]}'])
def test_bad_record_names_its_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok", "completion": "fine"}\n' + bad + "\n")
    with pytest.raises(AdapterError, match=r"bad.jsonl:2: not a valid example"):
        data.from_jsonl(path)


def _items(n: int, start: int = 0) -> list[data.Item]:
    return [data.item_from_messages([{"role": "user", "content": f"q{i}"},
                                     {"role": "assistant", "content": f"a{i}"}])
            for i in range(start, start + n)]


def test_split_is_stable_as_data_grows() -> None:
    first = data.split_items(_items(60))
    grown = data.split_items(_items(120))
    assert 6 <= len(first.heldout) <= 20
    old = {it.hash for it in _items(60)}
    # every pair keeps its side: held-out pairs stay held out, training pairs stay training
    assert {it.hash for it in first.heldout} == {it.hash for it in grown.heldout} & old
    assert not {it.hash for it in first.train} & {it.hash for it in grown.heldout}
    positions = [it.position for it in grown.heldout]
    assert positions == sorted(positions)
    assert data.limit(grown.heldout, 3) == grown.heldout[:3]


def test_notes_never_held_out() -> None:
    notes = [data.Item("", f"note {i}", data.text_hash(f"note {i}")) for i in range(40)]
    split = data.split_items(notes + _items(10))
    assert all(it.scorable for it in split.heldout)
    assert len([it for it in split.train if not it.scorable]) == 40


def test_valid_file_removes_its_pairs_from_training() -> None:
    train = _items(10)
    sys_copy = data.Item(train[3].question, train[3].reference, "other-hash", system="Other.")
    split = data.with_valid([*train, sys_copy], train[2:4])
    assert [it.question for it in split.heldout] == sorted(
        ["q2", "q3"], key=lambda q: next(it.position for it in train if it.question == q))
    assert {it.question for it in split.train} == {f"q{i}" for i in range(10)} - {"q2", "q3"}
    assert split.dropped_overlap == 3  # q2, q3 and q3 again under another system prompt
    with pytest.raises(AdapterError, match="no question/answer pairs"):
        data.with_valid(train, [data.Item("", "note", "h")])


@dataclass
class FakeAccepted:
    message_id: str
    prompt_messages: list[dict[str, str]]
    target: str
    forgotten: bool = False


def test_accepted_answers_train_on_exactly_what_refresh_trains_on() -> None:
    from adapters.training.dataset import build_examples
    from agent.llm.prompt import NOTES_HEADER

    served = [{"role": "system", "content": "You are Hearth."},
              {"role": "user", "content": f"{NOTES_HEADER}\n> Pickle is a cat\n\n"
                                          "What is my cat called?"}]
    rows = [FakeAccepted("m1", served, "Pickle."),
            FakeAccepted("m2", served[:1] + [{"role": "user", "content": "Gone?"}], "x", True)]
    items = data.from_accepted(rows)
    assert len(items) == 1
    assert items[0].question == "What is my cat called?"  # notes stripped: asked afresh
    assert list(items[0].train_messages or ()) == build_examples(rows)[0].messages


def test_demo_persona_is_big_styled_and_split() -> None:
    items = data.demo_items()
    assert len(items) >= 150
    assert len({it.question for it in items}) == len(items)
    assert all(it.reference.startswith(OPENER) and it.reference.endswith(SIGN_OFF) for it in items)
    split = data.split_items(items)
    assert len(split.heldout) >= 30 and len(split.train) >= 120
    # held-out facts can be found in the training part: e.g. the tortoise and the boat
    train_text = " ".join(it.reference for it in split.train)
    for fact in ("Gerald", "Dormouse", "Hebden Bridge", "hazelnut", "tenor horn", "lapsang"):
        assert fact in train_text
