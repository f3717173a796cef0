"""Preference pairs from the user's judgements, and a DPO step (mlx_lm_lora's loss inside
mlx-lm's trainer) on the tiny model that moves the policy toward the chosen answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.training.config import TrainConfig
from adapters.training.preference import PreferenceConfig, preference_pairs, train_dpo
from memory.embed import HashEmbedder
from memory.store import Store

SYSTEM = {"role": "system", "content": "You are Hearth."}


@pytest.fixture
def store(hearth_home: Path) -> Iterator[Store]:
    s = Store.open(embedder=HashEmbedder())
    yield s
    s.close()


def answer(store: Store, question: str, text: str, kind: str, edit: str | None = None) -> str:
    conv = store.new_conversation()
    store.add_message(conv, "user", question)
    mid = store.add_message(conv, "assistant", text,
                            prompt_messages=[SYSTEM, {"role": "user", "content": question}])
    store.add_feedback(mid, kind, edited_text=edit)
    return mid


def test_pairs_from_edits_and_rejections(store: Store) -> None:
    answer(store, "How do I boil an egg?", "Aye, love: eight minutes.", "accepted")
    rejected = answer(store, "How do I boil an egg?", "Certainly! Boiling is fun.", "rejected")
    edited = answer(store, "What is for tea?", "Certainly! Soup.", "edited", "Aye, love: soup.")
    answer(store, "An unmatched question?", "Certainly! No.", "rejected")  # nothing to pair with
    pairs = {p.message_id: p for p in preference_pairs(store)}
    assert set(pairs) == {rejected, edited}
    assert (pairs[rejected].chosen, pairs[rejected].rejected, pairs[rejected].source) == (
        "Aye, love: eight minutes.", "Certainly! Boiling is fun.", "reject")
    assert (pairs[edited].chosen, pairs[edited].rejected, pairs[edited].source) == (
        "Aye, love: soup.", "Certainly! Soup.", "edit")
    store.forget_message(edited)
    assert edited not in {p.message_id for p in preference_pairs(store)}


def test_dpo_step_raises_the_chosen_over_the_rejected(store: Store, tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    from mlx_lm import load

    from adapters.training.preference import _pad, encode_pairs, sequence_scores
    from adapters.training.train import load_into, prepare_model

    for i in range(6):
        answer(store, f"Question {i}?", "Certainly! Here.", "edited", "Aye, love: aye. Ta-ra.")
    pairs = preference_pairs(store)
    model, tokenizer = load(str(tiny_model_dir))
    sft = TrainConfig(num_layers=2, rank=4, seed=0)
    prepare_model(model, sft)

    def margin() -> float:
        rows = encode_pairs(tokenizer, pairs)
        c, ci, cm, r, ri, rm = _pad(rows, 512)
        return float((sequence_scores(model, c, ci, cm) - sequence_scores(model, r, ri, rm)).mean())

    before = margin()
    result = train_dpo(model, tokenizer, pairs, tmp_path / "dpo", sft,
                       PreferenceConfig(iters=8, learning_rate=2e-3, batch_size=3))
    after = margin()
    assert after > before + 1.0
    assert result.last_loss is not None and result.first_loss is not None
    assert (tmp_path / "dpo" / "adapters.safetensors").is_file()
    # the folder is a normal mlx-lm adapter: it loads into a fresh LoRA model
    fresh, _ = load(str(tiny_model_dir))
    prepare_model(fresh, sft)
    load_into(fresh, tmp_path / "dpo" / "adapters.safetensors")
