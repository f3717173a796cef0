"""Logits processors for decoding: a repetition penalty over the answer only.

mlx-lm's own `repetition_penalty` looks at the last N tokens of prompt *and* answer, so at
the start of an answer it pushes a small model away from the question's own words (a tea
question drifts to coffee). `answer_repetition_penalty` penalises only tokens the answer has
already produced, within a sliding `window`. `logits_processors(options)` builds the list
the runtime hands to `mlx_lm.stream_generate`.

It does not sample or stop generation (see `agent.core.loop_guard` for that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.foundation import blas

blas.ensure()  # before mlx is imported

import mlx.core as mx  # noqa: E402

Processor = Callable[[mx.array, mx.array], mx.array]


def answer_repetition_penalty(penalty: float, window: int) -> Processor:
    """Divide (or, for negative logits, multiply) by `penalty` the logits of tokens among the
    answer's last `window` tokens. mlx-lm's first call carries only prompt tokens: it marks
    where the answer starts."""
    start: int | None = None

    def process(tokens: mx.array, logits: mx.array) -> mx.array:
        nonlocal start
        n = int(tokens.shape[-1])
        if start is None:
            start = n
            return logits
        recent = tokens[max(start, n - window):]
        if recent.size == 0:
            return logits
        chosen = logits[:, recent]
        logits[:, recent] = mx.where(chosen < 0, chosen * penalty, chosen / penalty)
        return logits

    return process


def logits_processors(options: Any) -> list[Processor]:
    """The processors `options` (a SamplingOptions) asks for; none when the penalty is 1."""
    penalty = float(getattr(options, "repetition_penalty", 1.0) or 1.0)
    if penalty == 1.0:
        return []
    return [answer_repetition_penalty(penalty, int(getattr(options, "repetition_window", 64)))]
