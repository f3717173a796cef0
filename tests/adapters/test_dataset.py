"""Dataset snapshots: the serving prompt assembly, dedupe, forgotten rows, stable split."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig
from adapters.training.dataset import (
    build_examples,
    example_hash,
    load_jsonl,
    make_snapshot,
    normalize_record,
    snapshot_id,
    split,
)
from agent.llm.prompt import training_messages
from memory.records import Accepted

SYSTEM = {"role": "system", "content": "You are Hearth."}


def row(i: int, target: str | None = None, forgotten: bool = False) -> Accepted:
    prompt = [SYSTEM, {"role": "user", "content": f"question {i}"}]
    return Accepted(f"m{i}", prompt, target or f"answer {i}", "2026-11-01T00:00:00Z", forgotten)


def test_config_from_dict_ignores_unknown_keys_and_keeps_defaults() -> None:
    cfg = TrainConfig.from_dict({"rank": 4, "learning_rate": 1e-3, "unknown": 1})
    assert (cfg.rank, cfg.learning_rate, cfg.num_layers) == (4, 1e-3, TrainConfig().num_layers)
    assert GateConfig.from_dict(None) == GateConfig()
    assert RefreshPolicy.from_dict({"min_accepted": 5}).min_accepted == 5
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_iters_follow_epochs_within_bounds() -> None:
    cfg = TrainConfig(epochs=3, batch_size=4, min_iters=10, max_iters=50)
    assert cfg.resolved_iters(20) == 15
    assert cfg.resolved_iters(2) == 10
    assert cfg.resolved_iters(1000) == 50
    assert TrainConfig(iters=7).resolved_iters(1000) == 7


def test_examples_are_the_serving_prompt_plus_target() -> None:
    accepted = row(1, target="an edited answer")
    [example] = build_examples([accepted])
    assert example.messages == training_messages(accepted.prompt_messages, "an edited answer")
    assert example.message_id == "m1"
    assert example.hash == example_hash(example.messages)


def test_forgotten_empty_and_duplicate_rows_are_left_out() -> None:
    rows = [row(1), row(1), row(2, forgotten=True), row(3, target="  "), row(4)]
    assert [e.message_id for e in build_examples(rows)] == ["m1", "m4"]


def test_split_is_stable_and_growing_data_never_moves_training_rows_to_validation() -> None:
    small = build_examples([row(i) for i in range(30)])
    big = build_examples([row(i) for i in range(200)])
    train_s, valid_s = split(small, 0.2, 4)
    train_b, valid_b = split(big, 0.2, 4)
    assert len(valid_s) >= 4 and len(train_s) + len(valid_s) == 30
    assert not {e.hash for e in train_s} & {e.hash for e in valid_b}
    # order of arrival does not matter
    train_r, valid_r = split(list(reversed(small)), 0.2, 4)
    assert {e.hash for e in valid_r} == {e.hash for e in valid_s}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=8, max_size=60, unique=True),
       st.lists(st.integers(10_001, 20_000), max_size=60, unique=True))
def test_split_property_old_train_stays_train(old: list[int], new: list[int]) -> None:
    # from 2 * min_valid examples on (cold start needs 20), the held-out boundary only falls
    before = build_examples([row(i) for i in old])
    after = build_examples([row(i) for i in old + new])
    train_before, _ = split(before, 0.2, 4)
    _, valid_after = split(after, 0.2, 4)
    assert not {e.hash for e in train_before} & {e.hash for e in valid_after}


def test_snapshot_id_depends_on_content_not_order(tmp_path: Path) -> None:
    a = make_snapshot([row(i) for i in range(10)])
    b = make_snapshot([row(i) for i in reversed(range(10))])
    c = make_snapshot([row(i) for i in range(11)])
    assert a.snapshot_id == b.snapshot_id != c.snapshot_id
    assert snapshot_id(["b", "a"]) == snapshot_id(["a", "b"])
    a.write(tmp_path)
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    assert len(lines) == len(a.train) and "messages" in json.loads(lines[0])
    meta = json.loads((tmp_path / "snapshot.json").read_text())
    assert meta["snapshot_id"] == a.snapshot_id and len(meta["message_ids"]) == 10


def test_mlx_lm_record_formats(tmp_path: Path) -> None:
    assert normalize_record({"prompt": "p", "completion": "c"})[0] == {"role": "user", "content": "p"}
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "q"},
                                          {"role": "assistant", "content": "a"}]}) + "\n\n")
    assert load_jsonl(f)[0].messages[-1]["content"] == "a"
