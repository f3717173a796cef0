"""One forward pass per held-out item serves both its NLL and its greedy answer.

Scoring a reference answer (`evaluate.answer_nll`) and generating an answer (greedy) both
read the whole prompt; on a CPU that prefill is most of the cost. `Prefiller` runs it once:
- the prompt tokens that every item of a condition shares (the system prompt) are run once
  and their KV cache is forked per item;
- each item's prompt + reference runs once through the model with that cache; the answer
  positions give the NLL exactly as `evaluate.answer_nll` defines it (ChatDataset tokens with
  mask_prompt, plus the one padding target mlx-lm's mask includes after the last token);
- the cache is trimmed back to the prompt minus its last token, ready for batched greedy
  decoding (`measure.greedy_from`).
`tests/eval` checks both against `evaluate.answer_nll` and `evaluate.greedy_answers`. Where
the reference's tokens would not extend the prompt's tokens (a tokenizer merging across the
boundary), the item falls back to `evaluate.answer_nll` and a fresh prefill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.training import evaluate
from adapters.training.batching import check_split, split_head

Message = dict[str, str]
PAD = 0
"""The padding id `adapters.training.batching.eval_batches` (like mlx-lm) puts after each sequence."""


@dataclass
class Prefilled:
    """One item after its forward pass."""

    nll: evaluate.NLL
    cache: list[Any]
    """KV cache of the prompt without its last token."""
    last: int
    """The prompt's last token: fed to the decoder first."""


def common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the prefix all sequences share.

    >>> common_prefix([[1, 2, 3], [1, 2, 4, 5]]), common_prefix([[1], [2]]), common_prefix([])
    (2, 0, 0)
    """
    if not seqs:
        return 0
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return i
    return n


def fork(cache: list[Any]) -> list[Any]:
    """An independent copy of a list of KV caches.

    The copy gets new array objects cut to the filled length: `KVCache.update_and_fetch`
    writes into its buffer in place, so sharing the buffer would let one item's tokens
    overwrite another's.
    """
    from mlx_lm.models.cache import KVCache  # lazy: imports MLX

    out = []
    for layer in cache:
        copy = KVCache()
        if layer.keys is not None:
            n = layer.offset
            copy.keys, copy.values = layer.keys[..., :n, :], layer.values[..., :n, :]
            copy.offset = n
        out.append(copy)
    return out


class Prefiller:
    """Scores and prefills the prompts of one condition on one model state."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.parts = split_head(model) if check_split(model) else None
        self.shared: list[Any] = []
        self.shared_len = 0

    def tokens(self, prompt: Sequence[Message], reference: str) -> tuple[list[int], list[int]]:
        """(prompt tokens with the generation prompt, prompt + reference tokens), as ChatDataset."""
        tok = self.tokenizer
        full = tok.apply_chat_template([*prompt, {"role": "assistant", "content": reference}],
                                       return_dict=False)
        head = tok.apply_chat_template(list(prompt), add_generation_prompt=True, return_dict=False)
        return list(head), list(full)

    def share(self, prompts: Sequence[Sequence[Message]]) -> None:
        """Run the prefix all `prompts` share once (kept at least two tokens short of any)."""
        from mlx_lm.models.cache import KVCache, make_prompt_cache  # lazy: imports MLX

        heads = [self.tokens(p, "")[0] for p in prompts]
        cache = make_prompt_cache(self.model)
        n = max(0, min(common_prefix(heads), min((len(h) for h in heads), default=0) - 2))
        if n == 0 or not all(isinstance(c, KVCache) for c in cache):
            self.shared, self.shared_len = [], 0
            return
        self._forward(heads[0][:n], cache)
        self.shared, self.shared_len = cache, n

    def _start(self) -> list[Any]:
        from mlx_lm.models.cache import make_prompt_cache  # lazy: imports MLX

        return fork(self.shared) if self.shared_len else make_prompt_cache(self.model)

    def _forward(self, tokens: Sequence[int], cache: list[Any], tail: int = 0) -> Any:
        """Feed `tokens` through the model with `cache`; logits of the last `tail` positions."""
        import mlx.core as mx  # lazy: imports MLX

        x = mx.array([list(tokens)])
        if self.parts is None:
            logits = self.model(x, cache=cache)
            out = logits[:, logits.shape[1] - tail :] if tail else None
        else:
            body: Any = self.parts[0]
            hidden = body(x, cache=cache)
            head = self.parts[1]
            out = head(hidden[:, hidden.shape[1] - tail :]) if tail else None
        mx.eval(out if out is not None else [c.state for c in cache])
        return out

    def prefill(self, prompt: Sequence[Message], reference: str) -> Prefilled:
        """The item's NLL (as `evaluate.answer_nll`) and its cache, from one forward pass."""
        import mlx.core as mx  # lazy: imports MLX
        import mlx.nn as nn  # lazy: imports MLX
        from mlx_lm.models.cache import trim_prompt_cache  # lazy: imports MLX

        head, full = self.tokens(prompt, reference)
        start = self.shared_len
        if full[: len(head)] != head or len(head) <= start + 1 or len(full) <= len(head):
            return self._fallback(prompt, reference, head)
        cache = self._start()
        targets = [*full[len(head) :], PAD]
        logits = self._forward(full[start:], cache, tail=len(targets))
        ce = nn.losses.cross_entropy(logits[0].astype(mx.float32), mx.array(targets))
        nll = evaluate.NLL(float(ce.mean().astype(mx.float32).tolist()), len(targets), 1)  # type: ignore[arg-type]
        trim_prompt_cache(cache, len(full) - (len(head) - 1))
        return Prefilled(nll, cache, head[-1])

    def _fallback(self, prompt: Sequence[Message], reference: str, head: list[int]) -> Prefilled:
        nll = evaluate.answer_nll(self.model, self.tokenizer,
                                  [[*prompt, {"role": "assistant", "content": reference}]],
                                  batch_size=1)
        cache = self._start()
        if len(head) - 1 > self.shared_len:
            self._forward(head[self.shared_len : -1], cache)
        return Prefilled(nll, cache, head[-1])
