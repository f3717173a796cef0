"""Batches and the answer-only loss handed to mlx-lm's `trainer.train` and `evaluate`.

mlx-lm's `default_loss` projects every position onto the vocabulary and then masks the prompt
away. With a 49k vocabulary on CPU that projection and its softmax dominate a step, and for
chat examples most positions are prompt. The answer loss computes the same masked mean (equal
up to float rounding) but gathers the answer positions first and projects only those. The
positions travel as two extra batch elements (index, mask) of shape (rows, K), K rounded up
to GATHER_TO, so `mx.compile` in `trainer.train` sees static shapes and recompiles only per
(width, K) bucket.

`batch_iterator` wraps mlx-lm's `iterate_batches` (seeded order, `skip` batches replayed for
a resumed run, stoppable); in validation it yields every example once, the remainder included
(mlx-lm's own batching drops it). This module does not decide what to train on or for how long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

PAD_TO = 32
GATHER_TO = 8


class StopFlag:
    """Shared between a training callback (sets `stop`) and the batch iterator (counts `steps`)."""

    def __init__(self) -> None:
        self.stop = False
        self.steps = 0


def answer_positions(pairs: list[tuple[int, int]], width: int) -> tuple[Any, Any]:
    """Input positions whose next token is scored, per row, as (index, mask) arrays (B, K).

    Row (offset, length) scores positions t with offset <= t + 1 <= length, the same set as
    mlx-lm's `default_loss`; K is the longest such run rounded up to GATHER_TO.

    >>> idx, mask = answer_positions([(3, 5), (1, 2)], width=9)
    >>> idx[0, :3].tolist(), mask.sum(axis=1).tolist(), idx.shape
    ([2, 3, 4], [3, 2], (2, 8))
    """
    import numpy as np  # lazy: imports numpy

    last = width - 2  # inputs are width - 1 positions
    spans = [(max(0, off - 1), min(n - 1, last)) for off, n in pairs]
    counts = [max(0, hi - lo + 1) for lo, hi in spans]
    k = min(last + 1, GATHER_TO * max(1, -(-max(counts) // GATHER_TO)))
    idx = np.zeros((len(pairs), k), np.int32)
    mask = np.zeros((len(pairs), k), bool)
    for row, ((lo, _), count) in enumerate(zip(spans, counts, strict=True)):
        idx[row, :count] = np.arange(lo, lo + count)
        mask[row, :count] = True
    return idx, mask


def with_window(batch: Any, lengths: Any) -> tuple[Any, Any, Any, Any]:
    """Append the answer positions (index, mask) of this batch to mlx-lm's (batch, lengths)."""
    import mlx.core as mx  # lazy: imports MLX

    pairs = [(int(o), int(n)) for o, n in lengths.tolist()]
    idx, mask = answer_positions(pairs, batch.shape[1])
    return batch, lengths, mx.array(idx), mx.array(mask)


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
    import mlx.core as mx  # lazy: imports MLX

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
    """A `loss(model, batch, lengths, idx=None, mask=None)` for `trainer.train` / `evaluate`.

    Returns (mean NLL over answer tokens, number of answer tokens), like `default_loss`;
    without `idx` it is exactly `default_loss`.
    """
    import mlx.core as mx  # lazy: imports MLX
    import mlx.nn as nn  # lazy: imports MLX
    from mlx_lm.tuner.trainer import default_loss  # lazy: imports MLX

    use_split = check_split(model)

    def loss(model: Any, batch: Any, lengths: Any, idx: Any = None, mask: Any = None) -> tuple[Any, Any]:
        if idx is None:
            return default_loss(model, batch, lengths)  # type: ignore[no-any-return]
        inputs, targets = batch[:, :-1], batch[:, 1:]
        if use_split:
            body, head = split_head(model)  # type: ignore[misc]
            hidden = mx.take_along_axis(body(inputs), idx[..., None], axis=1)
            logits = head(hidden)
        else:
            logits = mx.take_along_axis(model(inputs), idx[..., None], axis=1)
        ce = nn.losses.cross_entropy(logits, mx.take_along_axis(targets, idx, axis=1)) * mask
        ntoks = mask.sum()
        return ce.astype(mx.float32).sum() / mx.maximum(ntoks, 1), ntoks

    return loss


def eval_batches(dataset: Any, batch_size: int, max_seq_length: int) -> Iterator[tuple[Any, ...]]:
    """Every example once, length-sorted, padded like mlx-lm (the last batch may be short)."""
    import mlx.core as mx  # lazy: imports MLX
    import numpy as np  # lazy: imports numpy

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
    from mlx_lm.tuner.trainer import iterate_batches  # lazy: imports MLX

    def iterate(
        dataset: Any, batch_size: int, max_seq_length: int, loop: bool = False, **unused: Any
    ) -> Iterator[Any]:
        if not loop:  # validation
            yield from eval_batches(dataset, batch_size, max_seq_length)
            return
        inner = iterate_batches(dataset, batch_size, max_seq_length, loop=True, seed=seed)
        for _done in range(skip):
            next(inner)
        for batch, lengths in inner:
            if flag.stop:
                return
            flag.steps += 1
            yield with_window(batch, lengths)

    return iterate
