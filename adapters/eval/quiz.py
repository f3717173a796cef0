"""The fact quiz: does a condition *say* the user's facts when asked in new words?

A quiz is a JSONL file of `{"question": ..., "facts": [...]}` lines: a question that asks a
fact stated in the training part, in words none of its pairs use, and the fact's accepted
spellings ("14 March", "14th of March"). `hearth eval` asks every question under each
condition (the same prompts as the held-out pairs: with and without retrieval) and scores
a greedy answer 1 when any spelling appears in it (`says_fact`: normalised like the token
metrics, matched from a word start, so "hazelnut" finds "hazelnuts" but "62" not "162").
The demo persona's quiz ships as `adapters/data/persona_quiz.jsonl`. Nothing here runs a model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from adapters.eval.data import Item, text_hash
from adapters.training import evaluate
from adapters.training.errors import AdapterError

DEMO_QUIZ = "persona_quiz.jsonl"


@dataclass(frozen=True)
class Question:
    """One quiz question and the spellings of the fact it asks for."""

    question: str
    facts: tuple[str, ...]

    def item(self) -> Item:
        """As an eval Item (its first spelling stands in as the reference answer)."""
        return Item(self.question, self.facts[0], text_hash("quiz\n" + self.question))


def parse(lines: Sequence[str], where: str = "quiz") -> list[Question]:
    """Questions from JSONL lines (blank lines skipped); a bad line raises with its number."""
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            question, facts = rec["question"], rec["facts"]
            if not (isinstance(question, str) and question.strip() and isinstance(facts, list)
                    and facts and all(isinstance(f, str) and f.strip() for f in facts)):
                raise ValueError("needs a question and a non-empty list of fact spellings")
        except (ValueError, KeyError, TypeError) as exc:
            raise AdapterError(f"{where}:{number}: not a quiz question ({exc}); use "
                               '{"question": "...", "facts": ["..."]}') from exc
        out.append(Question(question.strip(), tuple(f.strip() for f in facts)))
    return out


def load(path: Path) -> list[Question]:
    try:
        return parse(path.read_text(encoding="utf-8").splitlines(), str(path))
    except OSError as exc:
        raise AdapterError(f"cannot read {path} ({exc.strerror}); check the path") from exc


def demo_quiz() -> list[Question]:
    """The demo persona's quiz shipped with the package."""
    text = resources.files("adapters").joinpath("data", DEMO_QUIZ).read_text(encoding="utf-8")
    return parse(text.splitlines(), DEMO_QUIZ)


def says_fact(answer: str, facts: Sequence[str]) -> bool:
    """Does `answer` contain one of the fact's spellings (normalised, from a word start)?

    >>> says_fact("Aye, love: 14 March. Ta-ra.", ["14 March"]), says_fact("June 14", ["14 March"])
    (True, False)
    >>> says_fact("You can't: hazelnuts!", ["hazelnut"]), says_fact("It is 162.", ["62"])
    (True, False)
    """
    text = " ".join(evaluate.normalize_tokens(answer))
    for fact in facts:
        words = " ".join(evaluate.normalize_tokens(fact))
        if words and re.search(r"(?:^|\s)" + re.escape(words), text):
            return True
    return False


def summarize(hits: Sequence[bool], reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Share of questions answered with the fact, and its 95% bootstrap interval."""
    values = np.array(hits, dtype=np.float64)
    if not len(values):
        return {"score": float("nan"), "n": 0, "ci": None}
    idx = np.random.default_rng(seed).integers(0, len(values), size=(reps, len(values)))
    low, high = np.percentile(values[idx].mean(axis=1), [2.5, 97.5])
    return {"score": float(values.mean()), "n": len(values), "hits": int(values.sum()),
            "ci": {"low": float(low), "high": float(high)}}
