"""Questions about the user that memory cannot answer: start the answer with "I don't know".

A 135M model asked "What is my dog called?" with nothing in memory names a dog (Rex, Luna,
Max...) in most answers, worded examples and "notes: none" markers notwithstanding
(scripts/bench_answers.py, issue 10: 5-7 of 8 such answers invented a fact; 0 of 8 with
this prefix). So when
`asks_about_user(question)` holds, retrieval found nothing, and the conversation so far does
not mention the subject, the turn loop starts the answer with `UNKNOWN_PREFIX` and lets the
model continue it (the runtime's `prefix`): the model still writes the answer, it just cannot
begin it by inventing.

`asks_about_user` is deliberately narrow: it matches questions that ask for a fact about the
user ("What is my X?", "Where does my X live?", "Which city do I live in?", "How old am I?")
and leaves advice and how-to questions alone ("What should I plant in my garden?", "How do I
...?", "What do I need for...?"). A miss only means the model answers unaided, as before.

It does not retrieve, call the model or decide what is remembered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

UNKNOWN_PREFIX = "I don't know"

_WH = r"(?:what|who|where|when|which|whose|how\s+old|how\s+many|how\s+much|how\s+often|how\s+long)"
_FACT_OF_MINE = re.compile(
    rf"^{_WH}(?:\s+[\w']+){{0,3}}?(?:'s|\s+is|\s+are|\s+was|\s+were|\s+does|\s+did|\s+do)\s+my\b"
    rf"|^{_WH}'s\s+my\b",
    re.IGNORECASE,
)
_FACT_I_DO = re.compile(
    rf"^{_WH}(?:\s+[\w']+){{0,3}}?\s+(?:do|did|am|was|have)\s+i\b"
    r"(?!\s+(?:need|have\s+to|want|should|get|find|make|cook|start|begin|use|tip|pay|put|buy|"
    r"tell|say|know|do\s+(?:if|when|about|with|to)))",
    re.IGNORECASE,
)
_ADVICE = re.compile(r"\b(?:should|could|can|would|shall|might|must|ought|recommend|suggest|idea|ideas)\b",
                     re.IGNORECASE)
_LEAD = re.compile(r"^\s*(?:and|so|ok|okay|hey|hi|hearth|please|also|then)\b[\s,]*", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")  # "partner's" -> "partner"
_STOP = frozenset({
    "what", "who", "where", "when", "which", "whose", "how", "old", "many", "much", "often",
    "long", "is", "are", "was", "were", "does", "did", "do", "am", "have", "has", "had", "my",
    "mine", "me", "you", "your", "the", "an", "of", "in", "on", "at", "to", "for", "and", "or",
    "it", "its", "called", "don",
})


def asks_about_user(question: str) -> bool:
    """True when `question` asks for a fact about the user (not for advice).

    >>> [asks_about_user(q) for q in ("What is my dog called?", "Which city do I live in?",
    ...  "What should I plant in my garden?", "How do I boil an egg?", "What's my name?")]
    [True, True, False, False, True]
    """
    text = _LEAD.sub("", " ".join(question.split()))
    if _ADVICE.search(text):
        return False
    return bool(_FACT_OF_MINE.search(text) or _FACT_I_DO.search(text))


def subject_words(question: str) -> set[str]:
    """The question's content words ("dog", "birthday", "drive"): what it is about."""
    return {w for w in _WORD.findall(question.lower()) if w not in _STOP and len(w) > 2}


def answer_prefix(question: str, found_notes: bool, history: Iterable[Mapping[str, str]]) -> str:
    """`UNKNOWN_PREFIX` when the answer should start by saying so, else "".

    Not when notes were found (they may hold the answer) or when an earlier user turn of
    this conversation mentions the subject ("My dog is Rex. ... What is my dog called?").
    """
    if found_notes or not asks_about_user(question):
        return ""
    subject = subject_words(question)
    for turn in history:
        if turn.get("role") == "user" and subject & subject_words(turn.get("content", "")):
            return ""
    return UNKNOWN_PREFIX
