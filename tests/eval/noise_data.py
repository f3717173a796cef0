"""Noise for the "the evaluator cannot flatter" tests: answers of random pseudo-words.

Each answer is WORDS_PER_ANSWER words, each drawn uniformly from 70**3 consonant-vowel
pseudo-words, so its entropy is known exactly (`noise_entropy_per_answer`): no model, however
trained or prompted, can give held-out answers a lower expected NLL than that, unless it has
seen them.
"""

from __future__ import annotations

import math
import random

from adapters.eval.data import Item, item_from_messages

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
SYLLABLES = 3
WORDS_PER_ANSWER = 6


def pseudo_word(rng: random.Random) -> str:
    """Three consonant-vowel syllables: 14 * 5 = 70 choices each, so 70**3 equally likely words."""
    return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(SYLLABLES))


def noise_entropy_per_answer() -> float:
    """Nats of uncertainty in one noise answer: WORDS_PER_ANSWER uniform draws of 70**3 words."""
    return WORDS_PER_ANSWER * SYLLABLES * math.log(len(CONSONANTS) * len(VOWELS))


def noise_items(questions: list[str], seed: int = 0) -> list[Item]:
    """Each question paired with an answer of random pseudo-words: nothing to learn or retrieve."""
    rng = random.Random(seed)
    out = []
    for q in questions:
        answer = " ".join(pseudo_word(rng) for _ in range(WORDS_PER_ANSWER))
        out.append(item_from_messages([{"role": "user", "content": q},
                                       {"role": "assistant", "content": answer}]))
    return out
