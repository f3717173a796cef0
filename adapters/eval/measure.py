"""Score one model state on one set of prompts: per-item NLL, greedy answers, F1, ROUGE-L.

Everything is measured by the shared evaluator (`adapters.evaluate`), item by item so the
report can give paired confidence intervals:
- `item_nlls`: `evaluate.answer_nll` on each item alone (mean NLL per answer token, and the
  token count, so a token-weighted mean over items equals `answer_nll` over the set);
- `greedy`: greedy answers. With `batch > 1` prompts are decoded together through mlx-lm's
  `batch_generate` (same greedy choice per token, several times faster on CPU, where decode
  cost is per-op overhead rather than arithmetic); `batch=1` is `evaluate.greedy_answers`;
- `score`: `evaluate.token_f1` and `evaluate.rouge_l` of each answer against its reference.

It does not choose prompts or conditions (`context`, `experiment`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from adapters import evaluate

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def with_answer(prompt: Sequence[Message], reference: str) -> list[Message]:
    """The scored example: the prompt plus the reference as the assistant's message."""
    return [*prompt, {"role": "assistant", "content": reference}]


def item_nlls(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    references: Sequence[str],
    progress: ProgressFn | None = None,
) -> list[evaluate.NLL]:
    """`evaluate.answer_nll` of each reference after its prompt, one item at a time."""
    out = []
    for done, (prompt, ref) in enumerate(zip(prompts, references, strict=True), 1):
        out.append(evaluate.answer_nll(model, tokenizer, [with_answer(prompt, ref)], batch_size=1))
        if progress is not None:
            progress(done, len(prompts))
    return out


def greedy(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    max_tokens: int = 48,
    batch: int = 8,
    progress: ProgressFn | None = None,
) -> list[str]:
    """The model's greedy answer to each prompt (stripped), `batch` prompts at a time."""
    answers: list[str] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), max(1, batch)):
            chunk = list(prompts[start : start + max(1, batch)])
            answers += _greedy_chunk(model, tokenizer, chunk, max_tokens)
            if progress is not None:
                progress(len(answers), len(prompts))
    finally:
        model.train(was_training)
    return answers


def _greedy_chunk(
    model: Any, tokenizer: Any, prompts: list[Sequence[Message]], max_tokens: int
) -> list[str]:
    if len(prompts) == 1:
        return evaluate.greedy_answers(model, tokenizer, [with_answer(prompts[0], "")], max_tokens)
    from mlx_lm.generate import batch_generate

    tokens = [list(tokenizer.apply_chat_template(list(p), add_generation_prompt=True))
              for p in prompts]
    response = batch_generate(model, tokenizer, tokens, max_tokens=max_tokens)
    return [text.strip() for text in response.texts]


def score(
    answers: Sequence[str], references: Sequence[str], nlls: Sequence[evaluate.NLL]
) -> list[Scored]:
    """Per-item results: the answer, its reference's NLL, token F1 and ROUGE-L.

    >>> nll = evaluate.NLL(1.5, 4, 1)
    >>> s = score(["red blue green"], ["red green yellow"], [nll])[0]
    >>> (round(s.f1, 4), round(s.rougeL, 4), s.tokens)
    (0.6667, 0.6667, 4)
    """
    return [
        Scored(a, n.mean, n.tokens, evaluate.token_f1(a, r), evaluate.rouge_l(a, r))
        for a, r, n in zip(answers, references, nlls, strict=True)
    ]


def measure(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    references: Sequence[str],
    max_tokens: int = 48,
    batch: int = 8,
    progress: ProgressFn | None = None,
) -> list[Scored]:
    """NLL, greedy answers and their scores for every item (progress counts both passes)."""
    n = len(prompts)

    def first(done: int, total: int) -> None:
        if progress is not None:
            progress(done, 2 * n)

    def second(done: int, total: int) -> None:
        if progress is not None:
            progress(n + done, 2 * n)

    nlls = item_nlls(model, tokenizer, prompts, references, first)
    answers = greedy(model, tokenizer, prompts, max_tokens, batch, second)
    return score(answers, references, nlls)
