"""Batches and the answer-only loss handed to mlx-lm's `trainer.train` and `evaluate`.

mlx-lm's `default_loss` projects every position onto the vocabulary and then masks the prompt
away. With a 49k vocabulary on CPU that projection and its softmax dominate a step, and for
chat examples most positions are prompt. `answer_loss` computes the same masked mean (equal
up to float rounding) but projects only the tail of the batch that holds answer tokens. The
tail length travels as the *shape* of a third batch element (`window`), so `mx.compile` in
`trainer.train` sees a static size and recompiles only per (width, tail) bucket.

`batch_iterator` wraps mlx-lm's `iterate_batches` (seeded order, `skip` batches replayed for
a resumed run, stoppable); in validation it yields every example once, the remainder included
(mlx-lm's own batching drops it). This module does not decide what to train on or for how long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

PAD_TO = 32


class StopFlag:
    """Shared between a training callback (sets `stop`) and the batch iterator (counts `steps`)."""

    def __init__(self) -> None:
        self.stop = False
        self.steps = 0


def tail_length(offsets: list[int], lengths: list[int], width: int) -> int:
    """How many trailing input positions hold answer targets, rounded up to PAD_TO.

    Inputs are `width - 1` positions; position t predicts token t + 1, which is an answer
    token when t + 1 >= offset. So the tail starts at min(offset) - 1.

    >>> tail_length([50, 40], [60, 70], width=97)
    64
    >>> tail_length([0], [10], width=33)
    32
    """
    inputs = width - 1
    start = max(0, min(min(offsets), max(lengths)) - 1)
    need = inputs - start
    return min(inputs, PAD_TO * ((need + PAD_TO - 1) // PAD_TO)) if need > 0 else 1


def with_window(batch: Any, lengths: Any) -> tuple[Any, Any, Any]:
    """Append the `window` array whose length is the answer tail of this batch."""
    import mlx.core as mx

    pairs = lengths.tolist()
    k = tail_length([p[0] for p in pairs], [p[1] for p in pairs], batch.shape[1])
    return batch, lengths, mx.zeros((k,), dtype=mx.int8)


def split_head(model: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
    """(body, head) such that head(body(x)) == model(x) for mlx-lm's Llama-style models.

    None when the model does not have that shape; then the full logits are used.
    """
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "embed_tokens"):
        return None
    lm_head = getattr(model, "lm_head", None)
    tied = getattr(getattr(model, "args", None), "tie_word_embeddings", lm_head is None)
    head = inner.embed_tokens.as_linear if tied or lm_head is None else lm_head
    return inner, head


def check_split(model: Any) -> bool:
    """Verify on a short input that the split reproduces the model's logits."""
    import mlx.core as mx

    parts = split_head(model)
    if parts is None:
        return False
    body, head = parts
    x = mx.array([[1, 2, 3, 4, 5, 6, 7, 8]])
    was_training = model.training
    model.eval()
    try:
        full, split = model(x), head(body(x))
    except (TypeError, ValueError, AttributeError):
        return False
    finally:
        model.train(was_training)
    return full.shape == split.shape and bool(mx.allclose(full, split, atol=1e-4).item())


def make_answer_loss(model: Any) -> Callable[..., Any]:
    """A `loss(model, batch, lengths, window=None)` for `trainer.train` / `evaluate`.

    Returns (mean NLL over answer tokens, number of answer tokens), like `default_loss`.
    """
    import mlx.core as mx
    import mlx.nn as nn

    use_split = check_split(model)

    def loss(model: Any, batch: Any, lengths: Any, window: Any = None) -> tuple[Any, Any]:
        inputs, targets = batch[:, :-1], batch[:, 1:]
        width = inputs.shape[1]
        k = width if window is None else min(width, window.shape[0])
        start = width - k
        if use_split:
            body, head = split_head(model)  # type: ignore[misc]
            logits = head(body(inputs)[:, start:])
        else:
            logits = model(inputs)[:, start:]
        steps = mx.arange(start + 1, width + 1)
        mask = mx.logical_and(steps >= lengths[:, 0:1], steps <= lengths[:, 1:])
        ce = nn.losses.cross_entropy(logits, targets[:, start:]) * mask
        ntoks = mask.sum()
        return ce.astype(mx.float32).sum() / mx.maximum(ntoks, 1), ntoks

    return loss


def eval_batches(dataset: Any, batch_size: int, max_seq_length: int) -> Iterator[tuple[Any, ...]]:
    """Every example once, length-sorted, padded like mlx-lm (the last batch may be short)."""
    import mlx.core as mx
    import numpy as np

    order = sorted(range(len(dataset)), key=lambda i: len(dataset[i][0]))
    for start in range(0, len(order), batch_size):
        items = [dataset[j] for j in order[start : start + batch_size]]
        lengths = [min(len(t), max_seq_length) for t, _ in items]
        width = min(max_seq_length, 1 + PAD_TO * ((max(lengths) + PAD_TO - 1) // PAD_TO))
        arr = np.zeros((len(items), width), np.int32)
        for row, ((tokens, _), n) in enumerate(zip(items, lengths, strict=True)):
            arr[row, :n] = tokens[:n]
        pairs = [[off, n] for (_, off), n in zip(items, lengths, strict=True)]
        yield with_window(mx.array(arr), mx.array(pairs))


def batch_iterator(seed: int, skip: int, flag: StopFlag) -> Callable[..., Iterator[Any]]:
    """An `iterate_batches` for `trainer.train`: seeded order, `skip` replayed, stoppable."""
    from mlx_lm.tuner.trainer import iterate_batches

    def iterate(
        dataset: Any, batch_size: int, max_seq_length: int, loop: bool = False, **_: Any
    ) -> Iterator[Any]:
        if not loop:  # validation
            yield from eval_batches(dataset, batch_size, max_seq_length)
            return
        inner = iterate_batches(dataset, batch_size, max_seq_length, loop=True, seed=seed)
        for _ in range(skip):
            next(inner)
        for batch, lengths in inner:
            if flag.stop:
                return
            flag.steps += 1
            yield with_window(batch, lengths)

    return iterate
