"""Score one model state on one set of prompts: per-item NLL, greedy answers, F1, ROUGE-L.

Item by item, so the report can give paired intervals, and with the shared evaluator's
definitions (`adapters.training.evaluate`):
- the NLL of each reference is `evaluate.answer_nll` of that item alone (mean NLL per answer
  token plus the token count, so a token-weighted mean over items equals `answer_nll` over
  the set), computed by `prefill.Prefiller` in the same forward pass that prefills the
  prompt for generation;
- greedy answers are decoded `batch` at a time from those caches by mlx-lm's
  `batch_generate` (the same greedy choice per token as `evaluate.greedy_answers`; on a CPU
  decoding is per-op overhead, so eight answers cost little more than one);
- `score`: `evaluate.token_f1` and `evaluate.rouge_l` of each answer against its reference,
  and the same token F1 once the user's stock words are set aside (`style_words`: words in
  more than half of the training answers, e.g. a signature opener), which separates getting
  the style right from getting the facts right.

It does not choose prompts or conditions (`context`, `experiment`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from adapters.eval.prefill import Prefilled, Prefiller
from adapters.training import evaluate

Message = dict[str, str]
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Scored:
    """One held-out item under one condition."""

    answer: str
    nll: float
    """Mean NLL (nats) per answer token of the reference answer."""
    tokens: int
    """Answer tokens scored (the weight of `nll` in a token-weighted mean)."""
    f1: float
    rougeL: float  # noqa: N815 - the metric's usual name, also the JSON key
    content_f1: float = 0.0
    """Token F1 without the user's stock words (`style_words`): the facts, not the style."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def with_answer(prompt: Sequence[Message], reference: str) -> list[Message]:
    """The scored example: the prompt plus the reference as the assistant's message."""
    return [*prompt, {"role": "assistant", "content": reference}]


def greedy_from(model: Any, tokenizer: Any, items: Sequence[Prefilled], max_tokens: int) -> list[str]:
    """Greedy answers decoded together from prefilled caches (mlx-lm's `batch_generate`)."""
    from mlx_lm.generate import batch_generate  # lazy: imports MLX

    if not items:
        return []
    response = batch_generate(model, tokenizer, [[it.last] for it in items],
                              prompt_caches=[it.cache for it in items], max_tokens=max_tokens)
    return [text.strip() for text in response.texts]


def style_words(answers: Sequence[str], share: float = 0.5) -> frozenset[str]:
    """Normalised words found in more than `share` of `answers` (the user's stock phrases).

    >>> sorted(style_words(["Aye: Paris. Ta-ra.", "Aye: ten. Ta-ra.", "Aye: no."]))
    ['aye', 'tara']
    """
    counts: Counter[str] = Counter()
    for answer in answers:
        counts.update(set(evaluate.normalize_tokens(answer)))
    return frozenset(w for w, n in counts.items() if n > share * len(answers))


def content_f1(prediction: str, reference: str, stock: frozenset[str]) -> float:
    """`evaluate.token_f1` over the words that are not stock words.

    >>> content_f1("Aye: Paris. Ta-ra.", "Aye: Lyon. Ta-ra.", frozenset({"aye", "tara"}))
    0.0
    """
    def keep(text: str) -> str:
        return " ".join(w for w in evaluate.normalize_tokens(text) if w not in stock)

    return evaluate.token_f1(keep(prediction), keep(reference))


def score(
    answers: Sequence[str],
    references: Sequence[str],
    nlls: Sequence[evaluate.NLL],
    stock: frozenset[str] = frozenset(),
) -> list[Scored]:
    """Per-item results: the answer, its reference's NLL, token F1, ROUGE-L and content F1.

    >>> nll = evaluate.NLL(1.5, 4, 1)
    >>> s = score(["red blue green"], ["red green yellow"], [nll], frozenset({"red"}))[0]
    >>> (round(s.f1, 4), round(s.rougeL, 4), s.tokens, round(s.content_f1, 4))
    (0.6667, 0.6667, 4, 0.5)
    """
    return [
        Scored(a, n.mean, n.tokens, evaluate.token_f1(a, r), evaluate.rouge_l(a, r),
               content_f1(a, r, stock))
        for a, r, n in zip(answers, references, nlls, strict=True)
    ]


def measure(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    references: Sequence[str],
    max_tokens: int = 40,
    batch: int = 8,
    progress: ProgressFn | None = None,
    stock: frozenset[str] = frozenset(),
) -> list[Scored]:
    """NLL, greedy answer and scores for every item; `batch` items are decoded together."""
    was_training = model.training
    model.eval()
    nlls: list[evaluate.NLL] = []
    answers: list[str] = []
    try:
        prefiller = Prefiller(model, tokenizer)
        prefiller.share(prompts)
        step = max(1, batch)
        for start in range(0, len(prompts), step):
            chunk = []
            for prompt, ref in zip(prompts[start : start + step], references[start : start + step],
                                   strict=True):
                chunk.append(prefiller.prefill(prompt, ref))
                if progress is not None:
                    progress(start + len(chunk), len(prompts))
            nlls += [it.nll for it in chunk]
            answers += greedy_from(model, tokenizer, chunk, max_tokens)
            del chunk
    finally:
        model.train(was_training)
    return score(answers, references, nlls, stock)
