"""How good is one answer? Plain-text checks shared by `scripts/bench_answers.py` and the tests.

- `degenerate_reasons`: the ways an answer is unusable — empty, a 6-word sequence said 3+
  times (or a short unit stuttered), 7+ words copied from the prompt layer (system prompt, notes header, examples), or
  cut by the length limit / the loop guard.
- `on_topic`: the answer uses at least one of the words any relevant answer would use.
- `recalls`: the answer contains the reference fact (one of its spellings).
- `invented_personal`: with an empty memory, the answer claims to know something personal.

It does not run a model or read the store; everything here is a pure function of text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

Reason = Literal["empty", "repeats", "recites", "length", "loop"]

REPEAT_N = 6
REPEAT_TIMES = 3
COPY_N = 7
_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    """Lower-cased words (letters, digits, apostrophes) in order.

    >>> words("It's 3 o'clock, Ada!")
    ["it's", '3', "o'clock", 'ada']
    """
    return _WORD.findall(text.lower())


def ngrams(seq: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def repeated_ngram(text: str, n: int = REPEAT_N, times: int = REPEAT_TIMES) -> tuple[str, ...] | None:
    """The first `n`-word sequence that occurs `times` or more, else None."""
    counts = Counter(ngrams(words(text), n))
    for gram, count in counts.items():
        if count >= times:
            return gram
    return None


_STUTTER = re.compile(r"(.{1,8}?)\1{11,}$", re.DOTALL)
_PLAIN_RULES = set("-=_*#~. \n\t|")


def stutters(text: str) -> bool:
    """True when `text` ends in a unit of 1-8 characters said 12+ times ("hahaha…"), other
    than a Markdown rule or blank space."""
    tail = _STUTTER.search(text[-120:])
    return tail is not None and not set(tail.group(1)) <= _PLAIN_RULES


def copied_span(text: str, sources: Iterable[str], n: int = COPY_N) -> tuple[str, ...] | None:
    """The first `n`-word sequence of `text` that also occurs in one of `sources`."""
    seen = set()
    for source in sources:
        seen.update(ngrams(words(source), n))
    for gram in ngrams(words(text), n):
        if gram in seen:
            return gram
    return None


def degenerate_reasons(
    answer: str, finish_reason: str | None = None, prompt_layer: Iterable[str] = ()
) -> list[Reason]:
    """Every reason `answer` is degenerate (an empty list: it is not)."""
    reasons: list[Reason] = []
    if not words(answer):
        reasons.append("empty")
    if repeated_ngram(answer) is not None or stutters(answer):
        reasons.append("repeats")
    if copied_span(answer, prompt_layer) is not None:
        reasons.append("recites")
    if finish_reason in ("length", "loop"):
        reasons.append(finish_reason)  # type: ignore[arg-type]
    return reasons


def on_topic(answer: str, keywords: Iterable[str]) -> bool:
    """True when a keyword starts one of the answer's words (or, with a space, occurs)."""
    found = words(answer)
    lowered = " ".join(found)
    for key in keywords:
        key = key.lower()
        if " " in key:
            if key in lowered:
                return True
        elif any(w.startswith(key) for w in found):
            return True
    return False


def recalls(answer: str, fact: Iterable[str]) -> bool:
    """True when one spelling of the fact starts a run of the answer's words (a number must
    match whole: "3" is not found in "30"; "dinosaur" is found in "dinosaurs")."""
    text = " ".join(words(answer))
    for spelling in fact:
        key = " ".join(words(spelling))
        end = r"(?!\w)" if key[-1:].isdigit() else ""
        if key and re.search(rf"(?<![\w']){re.escape(key)}{end}", text):
            return True
    return False


_NOT_KNOWING = re.compile(
    r"\b(don'?t|do not|doesn'?t|does not|can'?t|cannot|couldn'?t|unable|not able|haven'?t|"
    r"have not|didn'?t|did not|not sure|no idea|no way|no information|not aware|unknown|"
    r"no access|not have|not know|not provided|not mentioned|not told)\b",
    re.IGNORECASE,
)
_CLAIM = re.compile(
    r"\byou (?:told me|mentioned|said|shared)\b|\bas you (?:said|mentioned|told)\b|"
    r"\b(?:according to|from) (?:my|your) (?:notes|memory)\b|\bnote \[?\d\]?|\[\d\]",
    re.IGNORECASE,
)
_NAMED = re.compile(
    r"\b[Yy]our (?:dog|cat|pet|wife|husband|partner|son|daughter|sister|brother|mother|mum|"
    r"mom|father|dad|friend|boss|name|city|car|job|birthday)(?:'s name)?,? (?:is |was |named |called )?"
    r"([A-Z][a-z]+|\d+)"
)


def invented_personal(answer: str, user_text: str = "", asks_personal: bool = False) -> bool:
    """With no memory, does `answer` claim personal knowledge the user never gave?

    Any answer that cites notes or what "you told me", or names "your dog Max" when the user
    never wrote "Max". For a personal question (`asks_personal`, e.g. "What is my name?")
    the answer must also say it does not know.
    """
    if _CLAIM.search(answer):
        return True
    given = set(words(user_text))
    for match in _NAMED.finditer(answer):
        if match.group(1).lower() not in given:
            return True
    return asks_personal and not _NOT_KNOWING.search(answer)
