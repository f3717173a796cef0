"""Logits processors for decoding: a repetition penalty over the answer only, and no copying
of the prompt layer's fixed text.

mlx-lm's own `repetition_penalty` looks at the last N tokens of prompt *and* answer, so at
the start of an answer it pushes a small model away from the question's own words (a tea
question drifts to coffee). `answer_repetition_penalty` penalises only tokens the answer has
already produced, within a sliding `window`. `no_copy(sequences)` forbids the token that
would continue a run of `NO_COPY_N` tokens copied from given text (the primer's worked
examples: a 135M model otherwise slips "I have two bikes" from an example into an answer
about rain); it stays lazy (no host sync), so the decode loop's pipelining is kept.
`logits_processors(options, avoid)` builds the list the runtime hands to the decode loop.

It does not sample or stop generation (see `agent.core.loop_guard` for that).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from agent.foundation import blas

blas.ensure()  # before mlx is imported

import mlx.core as mx  # noqa: E402

Processor = Callable[[mx.array, mx.array], mx.array]


def _after_prompt(step: Callable[[mx.array, mx.array, int], mx.array]) -> Processor:
    """A processor that runs `step(tokens, logits, answer_start)` on the answer's tokens only:
    mlx-lm's first call carries only prompt tokens, which marks where the answer starts."""
    start: int | None = None

    def process(tokens: mx.array, logits: mx.array) -> mx.array:
        nonlocal start
        if start is None:
            start = int(tokens.shape[-1])
            return logits
        return step(tokens, logits, start)

    return process


def answer_repetition_penalty(penalty: float, window: int) -> Processor:
    """Divide (or, for negative logits, multiply) by `penalty` the logits of tokens among the
    answer's last `window` tokens."""

    def process(tokens: mx.array, logits: mx.array, start: int) -> mx.array:
        n = int(tokens.shape[-1])
        recent = tokens[max(start, n - window):]
        if recent.size == 0:
            return logits
        chosen = logits[:, recent]
        logits[:, recent] = mx.where(chosen < 0, chosen * penalty, chosen / penalty)
        return logits

    return _after_prompt(process)


NO_COPY_N = 3
"""Tokens of copied context before the next copied token is forbidden (3: "I have two" may
be said, "I have two bikes" from an example may not)."""


def space_variants(vocab: dict[str, int]) -> list[int]:
    """For each token id, the id of the same text with its leading space toggled (itself when
    there is none): "I" and " I" are different tokens, and a copied run often starts on the
    other one (byte-level BPE marks the space with "Ġ", SentencePiece with "▁")."""
    size = max(vocab.values()) + 1
    other = list(range(size))
    for text, tid in vocab.items():
        for mark in ("Ġ", "▁"):
            if text.startswith(mark) and len(text) > 1 and (bare := vocab.get(text[1:])) is not None:
                other[tid], other[bare] = bare, tid
    return other


def no_copy(sequences: Sequence[Sequence[int]], n: int = NO_COPY_N,
            variants: Sequence[int] | None = None, allowed: Collection[int] = ()) -> Processor | None:
    """Forbid the next token of any `n`-token run of `sequences` the answer has just copied
    (runs compared up to leading spaces when `variants` is given; see `space_variants`),
    unless that token is in `allowed` (the user's own context: "Your dog is called" may go
    on to "called" when the user's note says "called"; it may not go on to the example's "Rex")."""
    contexts, following = [], []
    canon = (lambda t: min(t, variants[t]) if t < len(variants) else t) if variants else (lambda t: t)
    for seq in sequences:
        for i in range(len(seq) - n):
            nxt = int(seq[i + n])
            if nxt in allowed or (variants and nxt < len(variants) and variants[nxt] in allowed):
                continue
            contexts.append([canon(t) for t in seq[i : i + n]])
            following.append([nxt, variants[nxt] if variants and nxt < len(variants) else nxt])
    if not contexts:
        return None
    ctx = mx.array(contexts, dtype=mx.int32)
    nxt_ids = mx.array(following, dtype=mx.int32)  # (m, 2): the next token, spaced and not
    table = mx.array([min(i, v) for i, v in enumerate(variants)], dtype=mx.int32) if variants else None
    def process(tokens: mx.array, logits: mx.array, start: int) -> mx.array:
        length = int(tokens.shape[-1])
        if length - start < n:
            return logits
        last = tokens[length - n :].astype(mx.int32)
        if table is not None:
            last = table[mx.minimum(last, table.shape[0] - 1)]
        hit = mx.all(ctx == last[None, :], axis=1)[:, None]
        vocab = logits.shape[-1]
        index = mx.where(hit, nxt_ids, vocab).reshape(-1)  # misses land on a spare slot
        penalty = mx.where(hit, -mx.inf, 0.0).astype(logits.dtype)
        bias = mx.zeros((vocab + 1,), dtype=logits.dtype).at[index].add(
            mx.broadcast_to(penalty, nxt_ids.shape).reshape(-1))
        return logits + bias[:vocab]

    return _after_prompt(process)


def logits_processors(options: Any, avoid: Sequence[Sequence[int]] = (),
                      variants: Sequence[int] | None = None,
                      allowed: Collection[int] = ()) -> list[Processor]:
    """The processors `options` (a SamplingOptions) asks for, plus `no_copy(avoid)`."""
    found: list[Processor] = []
    penalty = float(getattr(options, "repetition_penalty", 1.0) or 1.0)
    if penalty != 1.0:
        found.append(answer_repetition_penalty(penalty, int(getattr(options, "repetition_window", 64))))
    if (guard := no_copy(avoid, variants=variants, allowed=allowed)) is not None:
        found.append(guard)
    return found
