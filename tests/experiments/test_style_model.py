"""The two-style model of the experiments benchmark: its pre-training data follows Hearth's own
prompt layout and mixes the liked and disliked openers at the asked share, and the folder it
writes is an mlx-lm model that is reused, not retrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adapters.eval import style_model
from adapters.eval.simulated_user import CONTENT, HELD_OUT, QUESTIONS, StyleRater
from agent.llm import prompt
from memory.migrations import DEFAULT_SYSTEM_PROMPT


def test_questions_are_held_out_and_every_one_has_an_answer() -> None:
    assert not set(QUESTIONS) & set(HELD_OUT)
    assert set(CONTENT) == set(QUESTIONS) | set(HELD_OUT)
    rater = StyleRater("Aye")
    assert rater.likes(style_model.styled("Aye", HELD_OUT[0]))
    assert not rater.likes(style_model.styled("Nay", HELD_OUT[0]))


def test_rows_mix_the_styles_in_hearths_prompt_layout(tiny_model_dir: Path) -> None:
    from mlx_lm import load

    _, tokenizer = load(str(tiny_model_dir))
    rows = style_model._rows(tokenizer, DEFAULT_SYSTEM_PROMPT, "Aye", "Nay", 0.4, 400,
                             np.random.default_rng(0))
    answers = [tokenizer.decode(tokens[offset:]) for tokens, offset in rows]
    liked = sum(a.startswith("Aye,") for a in answers)
    assert sum(a.startswith("Nay,") for a in answers) == len(answers) - liked
    assert 0.33 < liked / len(answers) < 0.47
    head = tokenizer.decode(rows[0][0][:rows[0][1]])
    assert head.count(DEFAULT_SYSTEM_PROMPT) == 1
    assert all(m["content"] in head for m in prompt.PRIMER[:2])  # the primer, as Chat sends it


def test_the_model_folder_loads_and_is_reused(tmp_path: Path) -> None:
    from mlx_lm import load

    folder = style_model.two_style_model(tmp_path / "m", DEFAULT_SYSTEM_PROMPT, steps=2,
                                         batch_size=2)
    info = json.loads((folder / "two_style.json").read_text())
    assert info["steps"] == 2 and info["last_loss"] < info["first_loss"] + 1.0
    load(str(folder))
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    style_model.two_style_model(folder, DEFAULT_SYSTEM_PROMPT, steps=2, batch_size=2)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
