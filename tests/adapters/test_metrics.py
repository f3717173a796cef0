"""The evaluator's text metrics, checked against values worked out by hand."""

from __future__ import annotations

import doctest

import pytest

import adapters.jobs.conditions
import adapters.jobs.schedule
import adapters.training.batching
import adapters.training.config
import adapters.training.dataset
import adapters.training.evaluate
import adapters.training.gate
from adapters.training.errors import AdapterError
from adapters.training.evaluate import (
    generation_scores,
    lcs_length,
    normalize_tokens,
    rouge_l,
    token_f1,
)


def test_normalization_drops_case_punctuation_and_articles() -> None:
    assert normalize_tokens("The Dog's bowl, an APPLE!") == ["dogs", "bowl", "apple"]


def test_token_f1_by_hand() -> None:
    # pred: [my, dog, is, biscotti]; ref: [dog, is, called, biscotti, today]
    # common = 3 (dog, is, biscotti); P = 3/4, R = 3/5; F1 = 2PR/(P+R) = 0.6667
    assert token_f1("My dog is Biscotti.", "Dog is called Biscotti today") == pytest.approx(2 / 3)
    assert token_f1("a b", "") == 0.0 and token_f1("", "") == 1.0
    # repeated words count only as often as they occur in both
    assert token_f1("yes yes yes", "yes") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))


def test_rouge_l_by_hand() -> None:
    assert lcs_length(["a", "b", "c", "d"], ["b", "d"]) == 2
    # pred [x, b, d, y] vs ref [b, c, d]: LCS = [b, d] = 2; P = 2/4, R = 2/3 -> F = 4/7
    assert rouge_l("x b d y", "b c d") == pytest.approx(4 / 7)
    assert rouge_l("same words here", "same words here") == 1.0
    assert rouge_l("nothing", "shared") == 0.0


def test_generation_scores_average_pairs() -> None:
    scores = generation_scores(["b c d", "zzz"], ["b c d", "qqq"])
    assert scores == {"f1": 0.5, "rougeL": 0.5}
    with pytest.raises(AdapterError):
        generation_scores(["x"], [])


@pytest.mark.parametrize("module", [adapters.training.batching, adapters.jobs.conditions, adapters.training.config,
                                    adapters.training.dataset, adapters.training.evaluate, adapters.training.gate,
                                    adapters.jobs.schedule])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0
