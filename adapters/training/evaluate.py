"""The shared evaluator: answer-token NLL, greedy answers, token F1, ROUGE-L, the general probe.

Used by the promotion gate (`adapters.training.gate`) and by `hearth eval`, so both measure the same
thing the same way:
- `answer_nll`: mean negative log-likelihood (nats) per answer token of reference answers,
  the prompt masked exactly as in training (mlx-lm's ChatDataset, mask_prompt=True). Averaged
  over tokens, not examples, so long answers weigh more.
- `greedy_answers` + `token_f1` / `rouge_l`: what the model actually says, scored against
  the reference (SQuAD-style normalisation; pure functions, hand-checkable).
- `probe_nll`: `answer_nll` on `adapters/data/probe.jsonl`, ~30 everyday instructions with short
  reference answers written for Hearth: the guard against forgetting how to be useful.
- `probe_logprobs` + `mean_kl`: how far a model's next-token distributions on the probe's
  answers have moved from another model's (the gate's divergence from the base: it grows
  when general behaviour changes, whichever way the probe's own NLL goes);
- `use_adapter`: put an adapter folder (or none) on a loaded base model in place.

It does not decide anything (see `gate`) and does not load base models from disk.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from adapters.training.batching import eval_batches, make_answer_loss
from adapters.training.errors import AdapterError
from agent.foundation.errors import AdapterLoadError

Messages = list[dict[str, str]]
PROBE_FILE = "probe.jsonl"


@dataclass(frozen=True)
class NLL:
    """Mean NLL per answer token over a set of examples."""

    mean: float
    tokens: int
    examples: int

    def to_dict(self) -> dict[str, Any]:
        return {"nll": self.mean, "tokens": self.tokens, "examples": self.examples}


# -- text metrics (pure) ----------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_tokens(text: str) -> list[str]:
    """Lowercase, strip punctuation and English articles, split on whitespace (as SQuAD).

    >>> normalize_tokens("The cat, the HAT!")
    ['cat', 'hat']
    """
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (bag of words, with counts).

    >>> round(token_f1("red blue green", "red green yellow"), 4)
    0.6667
    """
    pred, ref = normalize_tokens(prediction), normalize_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence.

    >>> lcs_length("abcbdab", "bdcaba")
    4
    """
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: LCS-based precision and recall over normalised tokens.

    >>> round(rouge_l("police killed the gunman", "the police kill the gunman"), 4)
    0.6667
    """
    pred, ref = normalize_tokens(prediction), normalize_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def generation_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean token F1 and ROUGE-L over pairs."""
    if len(predictions) != len(references):
        raise AdapterError("predictions and references differ in number; pass one per example")
    n = max(1, len(predictions))
    pairs = list(zip(predictions, references, strict=True))
    return {
        "f1": sum(token_f1(p, r) for p, r in pairs) / n,
        "rougeL": sum(rouge_l(p, r) for p, r in pairs) / n,
    }


# -- model metrics ----------------------------------------------------------------------------


def answer_nll(
    model: Any,
    tokenizer: Any,
    examples: Iterable[Messages],
    batch_size: int = 4,
    max_seq_length: int = 2048,
) -> NLL:
    """Mean NLL per answer token of each example's last (assistant) message."""
    import mlx.core as mx  # lazy: imports MLX
    from mlx_lm.tuner.datasets import CacheDataset, ChatDataset  # lazy: imports MLX


    rows: list[Any] = [{"messages": list(m)} for m in examples]
    if not rows:
        raise AdapterError("nothing to evaluate: no held-out examples (accept more answers)")
    dataset = CacheDataset(ChatDataset(rows, tokenizer, mask_prompt=True))
    was_training = model.training
    model.eval()
    loss = make_answer_loss(model)
    total, count = 0.0, 0
    try:
        for batch in eval_batches(dataset, batch_size, max_seq_length):
            value, ntoks = loss(model, *batch)
            mx.eval(value, ntoks)
            total += float(value.item()) * int(ntoks.item())
            count += int(ntoks.item())
    finally:
        model.train(was_training)
    return NLL(total / count if count else float("nan"), count, len(rows))


def greedy_answers(
    model: Any, tokenizer: Any, examples: Iterable[Messages], max_tokens: int = 64
) -> list[str]:
    """The model's greedy answer to each example's prompt (all messages but the last)."""
    from mlx_lm import generate  # lazy: imports MLX

    out = []
    for messages in examples:
        prompt = tokenizer.apply_chat_template(
            list(messages[:-1]), add_generation_prompt=True, tokenize=False
        )
        out.append(generate(model, tokenizer, prompt, max_tokens=max_tokens).strip())
    return out


def probe_examples() -> list[Messages]:
    """The general probe shipped with the package (adapters/data/probe.jsonl)."""
    text = resources.files("adapters").joinpath("data", PROBE_FILE).read_text(encoding="utf-8")
    return [json.loads(line)["messages"] for line in text.splitlines() if line.strip()]


def probe_digest() -> str:
    """Identifies the probe's content, so cached probe numbers are reused only for it."""
    blob = json.dumps(probe_examples(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def probe_nll(model: Any, tokenizer: Any, batch_size: int = 8) -> NLL:
    """Answer-token NLL on the general probe."""
    return answer_nll(model, tokenizer, probe_examples(), batch_size=batch_size)


def answer_logprobs(
    model: Any, tokenizer: Any, examples: Iterable[Messages], batch_size: int = 8,
    max_seq_length: int = 2048,
) -> Any:
    """Log-probabilities over the vocabulary at every answer position, (positions, vocab).

    The positions are those `answer_nll` scores, in a fixed order (length-sorted batches),
    so two model states measured on the same examples line up row by row.
    """
    import mlx.core as mx
    import numpy as np
    from mlx_lm.tuner.datasets import CacheDataset, ChatDataset

    rows: list[Any] = [{"messages": list(m)} for m in examples]
    if not rows:
        raise AdapterError("nothing to evaluate: no examples given")
    dataset = CacheDataset(ChatDataset(rows, tokenizer, mask_prompt=True))
    was_training = model.training
    model.eval()
    parts = []
    try:
        for batch, _lengths, idx, mask in eval_batches(dataset, batch_size, max_seq_length):
            logits = mx.take_along_axis(model(batch[:, :-1]), idx[..., None], axis=1)
            logits = logits.astype(mx.float32)
            logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
            mx.eval(logp)
            for row, count in enumerate(np.array(mask).sum(axis=1).tolist()):
                parts.append(logp[row, : int(count)])
    finally:
        model.train(was_training)
    out = mx.concatenate(parts, axis=0)
    mx.eval(out)
    return out


def probe_logprobs(model: Any, tokenizer: Any) -> Any:
    """`answer_logprobs` on the general probe."""
    return answer_logprobs(model, tokenizer, probe_examples())


def mean_kl(reference: Any, other: Any) -> float:
    """Mean over positions of KL(reference || other), in nats, from two log-prob arrays.

    >>> import mlx.core as mx
    >>> p = mx.log(mx.array([[0.5, 0.5], [0.9, 0.1]]))
    >>> round(mean_kl(p, p), 6), round(mean_kl(p, mx.log(mx.array([[0.9, 0.1], [0.9, 0.1]]))), 4)
    (0.0, 0.2554)
    """
    return max(0.0, float(position_kl(reference, other).mean().item()))


def position_kl(reference: Any, other: Any) -> Any:
    """KL(reference || other) at every position, (positions,), from two log-prob arrays."""
    import mlx.core as mx

    if reference.shape != other.shape:
        raise AdapterError("the two measurements cover different positions; measure both again")
    return (mx.exp(reference) * (reference - other)).sum(axis=-1)


def median_kl(reference: Any, other: Any) -> float:
    """Median over positions of KL(reference || other): a few style tokens (an opener, a
    sign-off) move the mean, not the median.

    >>> import mlx.core as mx
    >>> p = mx.log(mx.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]]))
    >>> q = mx.log(mx.array([[0.5, 0.5], [0.5, 0.5], [0.1, 0.9]]))
    >>> round(mean_kl(p, q), 3), median_kl(p, q)
    (0.586, 0.0)
    """
    import numpy as np

    return max(0.0, float(np.median(np.array(position_kl(reference, other)))))


def use_adapter(model: Any, adapter_dir: Path | None) -> None:
    """Serve `adapter_dir` (an mlx-lm adapter folder) on `model`, or the bare base for None.

    Replaces any LoRA layers already there, without reloading the base weights, through the
    chat runtime's own hot-swap (`agent.llm.weights`); on failure the bare base is left.
    """
    from agent.llm import weights  # lazy: imports MLX

    weights.remove_adapter(model)
    if adapter_dir is None:
        return
    try:
        weights.apply_adapter(model, adapter_dir)
    except AdapterLoadError as exc:
        weights.remove_adapter(model)
        raise AdapterError(f"adapter {adapter_dir.name} cannot be loaded: {exc}") from exc
