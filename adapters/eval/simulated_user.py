"""A simulated user with known preferences, for tests and `scripts/bench_experiments.py`.

`StyleRater(liked="Aye")` accepts an answer that opens with its liked word and otherwise,
with probability `edit_rate`, rewrites it into the liked style (a heavy edit: it counts as
not accepted, and as a preference pair "edit over original"), else rejects it. `chat_and_rate`
drives real `Chat` turns and feeds the ratings back through `Chat.feedback`, as a person
would; `change_mind` gives drift. Nothing here is used by the assistant itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Kind = Literal["accepted", "rejected", "edited"]

QUESTIONS = (
    "What should I cook tonight?", "How do I fix a dripping tap?", "When should I water tomatoes?",
    "What is a good name for a cat?", "How long do I boil an egg?", "Where can I walk on Sunday?",
    "What should I read next?", "How do I clean a kettle?", "When is the best time to sleep?",
    "How do I oil a clock?", "What do tortoises eat?", "How do I patch a bike tyre?",
)
HELD_OUT = (
    "What can I bake on Saturday?", "How do I unblock a sink?", "When should I prune roses?",
    "What is a good name for a dog?", "How long do I steep green tea?", "Where can I swim nearby?",
    "What film should I watch?", "How do I descale a shower head?", "When should I get up?",
    "How do I wind a watch?", "What do rabbits eat?", "How do I fix a flat football?",
)
"""Questions never rated: acceptance is measured on these."""
CONTENT = dict(zip(QUESTIONS + HELD_OUT, (
    "a vegetable soup.", "change the washer.", "early in the morning.", "Miso.", "eight minutes.",
    "along the river.", "a short novel.", "boil vinegar in it.", "before eleven.",
    "one drop on each pivot.", "greens and flowers.", "find the hole and glue a patch.",
    "a loaf of bread.", "use a plunger.", "in late winter.", "Biscuit.", "two minutes.",
    "the town pool.", "an old comedy.", "soak it in vinegar.", "at seven.",
    "turn the crown gently.", "hay and greens.", "pump it and seal the valve.",
), strict=True))
"""A short plain answer to each question (the content of `adapters.eval.style_model`'s styles)."""


@dataclass(frozen=True)
class Rating:
    kind: Kind
    edited_text: str | None = None


@dataclass(frozen=True)
class StyleRater:
    """Accepts answers in one style (they open with `liked`); rejects or rewrites the rest."""

    liked: str = "Aye"
    edit_rate: float = 0.5

    def likes(self, answer: str) -> bool:
        words = answer.strip().split()
        return bool(words) and words[0].strip(",.:;!").lower() == self.liked.lower()

    def rate(self, answer: str, rng: Any) -> Rating:
        if self.likes(answer):
            return Rating("accepted")
        if rng.random() < self.edit_rate:
            return Rating("edited", self.rewrite())
        return Rating("rejected")

    def rewrite(self) -> str:
        """The answer as this user would have written it."""
        return f"{self.liked}, love: {self.liked.lower()} it is. Ta-ra."

    def change_mind(self, liked: str) -> StyleRater:
        return replace(self, liked=liked)


def chat_and_rate(chat: Any, rater: StyleRater, n: int, rng: Any,
                  questions: tuple[str, ...] = QUESTIONS) -> list[tuple[Any, Rating]]:
    """`n` one-turn conversations through `chat`, each answer rated by `rater`."""
    out = []
    for i in range(n):
        chat.new_conversation()
        done = chat.ask(questions[i % len(questions)])
        rating = rater.rate(done.text, rng)
        chat.feedback(rating.kind, edited_text=rating.edited_text)
        out.append((done, rating))
    return out


def acceptance(chat: Any, rater: StyleRater, n: int, rng: Any,
               questions: tuple[str, ...] = QUESTIONS) -> float:
    """Share of `n` fresh answers the rater would accept (answers are recorded, not rated)."""
    liked = 0
    for i in range(n):
        chat.new_conversation()
        liked += rater.likes(chat.ask(questions[i % len(questions)]).text)
    return liked / n if n else 0.0
