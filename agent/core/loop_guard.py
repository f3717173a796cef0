"""Notice, while an answer streams, that it has started repeating itself.

`LoopGuard.feed(delta)` is called with each piece of streamed text and returns True once the
answer repeats: a 6-word sequence has now occurred 3 times (the same rule the answer-quality
benchmark calls degenerate), or the text ends in a short unit said over and over with no
words ("!!!!!!…", "ha ha ha…"). The turn loop then stops generation with finish reason
`loop`, keeping the partial answer.

It does not stop the model itself or look at token ids; it only reads text.
"""

from __future__ import annotations

import re
from collections import Counter

from agent.core.answer_metrics import REPEAT_N, REPEAT_TIMES, stutters

_WORD = re.compile(r"[\w']+")


class LoopGuard:
    """Watches one answer; make a new one per answer."""

    def __init__(self, n: int = REPEAT_N, times: int = REPEAT_TIMES) -> None:
        self.n, self.times = n, times
        self.text = ""
        self._words: list[str] = []
        self._grams: Counter[tuple[str, ...]] = Counter()
        self.tripped = False

    def feed(self, delta: str) -> bool:
        """Add streamed text; True when the answer (now) repeats itself."""
        if self.tripped:
            return True
        self.text += delta
        found = _WORD.findall(self.text.lower())
        if found and self.text[-1:].isalnum():
            found = found[:-1]  # the last word may still be growing
        for i in range(len(self._words), len(found)):
            self._words.append(found[i])
            if i + 1 >= self.n:
                gram = tuple(self._words[i + 1 - self.n : i + 1])
                self._grams[gram] += 1
                if self._grams[gram] >= self.times:
                    self.tripped = True
        if not self.tripped and stutters(self.text):
            self.tripped = True
        return self.tripped
