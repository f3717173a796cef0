"""Preference training (DPO) from the user's own judgements, on top of the supervised adapter.

Pairs (`preference_pairs`): an *edited* answer gives (prompt, chosen = the user's edit,
rejected = the original); a *rejected* answer is paired with an answer the user accepted for
the same question (chosen), under the rejected answer's own prompt. Forgotten answers are
left out.

Training (`train_dpo`): the model carries the supervised LoRA adapter (the active one); its
scores on every pair are computed once, frozen, as the DPO reference (so no second model is
held in memory); then mlx-lm's own `trainer.train` runs with a passed-in loss that calls
`mlx_lm_lora`'s maintained `dpo_loss` (DPO-Positive by default, beta 0.1) on the policy's and the
reference's summed answer log-probabilities, and a passed-in `iterate_batches` that pads
chosen / rejected pairs. Only the LoRA weights move. The result is an mlx-lm adapter folder
with the same `adapter_config.json` as the supervised one, so it is judged by the same gate
and served by the same loader. This module does not choose when to train nor promote.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapters.training import files
from adapters.training.batching import PAD_TO, answer_positions, split_head
from adapters.training.config import TrainConfig
from adapters.training.errors import AdapterError

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Pair:
    """One judgement: under `prompt`, `chosen` is preferred over `rejected`."""

    prompt: Messages
    chosen: str
    rejected: str
    source: str
    """'edit' (the user's correction over the original) or 'reject' (an accepted answer to
    the same question over the rejected one)."""
    message_id: str


@dataclass(frozen=True)
class PreferenceConfig:
    """DPO settings; defaults suit a small adapter on CPU."""

    beta: float = 0.1
    """DPO temperature: how far from the reference the policy may move per unit of margin."""
    loss_type: str = "dpop"
    """mlx_lm_lora's loss: 'dpop' (DPO-Positive, Pal et al. 2024) adds a penalty when the
    chosen answer's likelihood falls below the reference's. Plain 'sigmoid' DPO on Hearth's
    pairs pushed the rejected answers down *and* the accepted ones with them (held-out personal
    NLL +21.7% on the bench's tiny model), which the gate rightly rejects."""
    delta: float = 50.0
    """DPOP's penalty weight (mlx_lm_lora's default)."""
    learning_rate: float = 5e-4
    iters: int = 30
    batch_size: int = 4
    max_seq_length: int = 1024
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _question(prompt: Messages | None) -> str:
    for m in reversed(prompt or []):
        if m.get("role") == "user":
            return " ".join(m.get("content", "").split()).lower()
    return ""


def preference_pairs(store: Any) -> list[Pair]:
    """Pairs from the store's rejected and edited answers (see the module docstring)."""
    judged = [a for a in store.rated_answers(kinds=("rejected", "edited"))
              if not a.forgotten and a.prompt_messages]
    accepted: dict[str, str] = {}
    for a in store.accepted_examples():
        accepted.setdefault(_question(a.prompt_messages), a.target)
    pairs = []
    for a in reversed(judged):  # oldest first
        prompt = list(a.prompt_messages or [])
        if a.kind == "edited" and a.edited_text and a.edited_text.strip() != a.text.strip():
            pairs.append(Pair(prompt, a.edited_text, a.text, "edit", a.message_id))
        elif (a.kind == "rejected" and (chosen := accepted.get(_question(prompt)))
              and chosen.strip() != a.text.strip()):
            pairs.append(Pair(prompt, chosen, a.text, "reject", a.message_id))
    return pairs


def _encode(tokenizer: Any, prompt: Messages, answer: str) -> tuple[list[int], int]:
    """(tokens of prompt + answer, prompt length), as mlx-lm's ChatDataset masks them."""
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}],
                                         return_dict=False)
    head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
    return list(full), len(head)


def encode_pairs(tokenizer: Any, pairs: list[Pair]) -> list[dict[str, Any]]:
    rows = []
    for p in pairs:
        chosen, c_off = _encode(tokenizer, p.prompt, p.chosen)
        rejected, r_off = _encode(tokenizer, p.prompt, p.rejected)
        rows.append({"chosen": chosen, "rejected": rejected, "chosen_prompt_length": c_off,
                     "rejected_prompt_length": r_off})
    return rows


def _pad(rows: list[dict[str, Any]], max_len: int) -> tuple[Any, ...]:
    """(chosen, rejected, chosen idx, chosen mask, rejected idx, rejected mask) arrays.

    Widths are rounded up to `PAD_TO` and the answer positions gathered as in
    `adapters.training.batching` (K rounded to `GATHER_TO`), so `mx.compile` in `trainer.train` sees
    few shapes and only answer positions are projected onto the vocabulary."""
    import mlx.core as mx
    import numpy as np

    longest = max(max(len(r["chosen"]), len(r["rejected"])) for r in rows)
    width = min(max_len, PAD_TO * -(-longest // PAD_TO) + 1)
    out = []
    for key in ("chosen", "rejected"):
        arr = np.zeros((len(rows), width), np.int32)
        spans = []
        for i, r in enumerate(rows):
            n = min(len(r[key]), width)
            arr[i, :n] = r[key][:n]
            spans.append((min(r[f"{key}_prompt_length"], n), n))
        idx, mask = answer_positions(spans, width)
        out += [mx.array(arr), mx.array(idx), mx.array(mask)]
    return tuple(out)


def sequence_scores(model: Any, tokens: Any, idx: Any, mask: Any) -> Any:
    """Summed log-probabilities of the answer tokens per row (positions `idx` where `mask`),
    the quantity mlx_lm_lora's `get_token_scores(...).sum(-1)` gives, computed on the
    answer positions only."""
    import mlx.core as mx
    import mlx.nn as nn

    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    parts = split_head(model)
    if parts is not None:
        body, head = parts
        logits = head(mx.take_along_axis(body(inputs), idx[..., None], axis=1))
    else:
        logits = mx.take_along_axis(model(inputs), idx[..., None], axis=1)
    picked = mx.take_along_axis(targets, idx, axis=1)
    logp = -nn.losses.cross_entropy(logits.astype(mx.float32), picked)
    return (logp * mask).sum(-1)


def reference_scores(model: Any, rows: list[dict[str, Any]], config: PreferenceConfig) -> None:
    """Score every pair with the model as it is now (the reference); stored on the rows."""
    import mlx.core as mx

    for start in range(0, len(rows), config.batch_size):
        batch = rows[start:start + config.batch_size]
        chosen, c_idx, c_mask, rejected, r_idx, r_mask = _pad(batch, config.max_seq_length)
        c = sequence_scores(model, chosen, c_idx, c_mask)
        r = sequence_scores(model, rejected, r_idx, r_mask)
        mx.eval(c, r)
        for row, cs, rs in zip(batch, c.tolist(), r.tolist(), strict=True):
            row["ref_chosen"], row["ref_rejected"] = float(cs), float(rs)


def make_iterate(seed: int) -> Any:
    """An `iterate_batches` for `trainer.train`: shuffled pairs with their reference scores."""
    import mlx.core as mx
    import numpy as np

    def iterate(dataset: Any, batch_size: int, max_seq_length: int, loop: bool = False,
                **unused: Any) -> Iterator[tuple[Any, ...]]:
        rng = np.random.default_rng(seed)
        size = min(batch_size, len(dataset))
        while True:
            order = rng.permutation(len(dataset))
            for start in range(0, len(order) - size + 1, size):
                rows = [dataset[int(i)] for i in order[start:start + size]]
                yield (*_pad(rows, max_seq_length),
                       mx.array([r["ref_chosen"] for r in rows]),
                       mx.array([r["ref_rejected"] for r in rows]))
            if not loop:
                return

    return iterate


def make_dpo_loss(config: PreferenceConfig) -> Any:
    """`loss(model, chosen, c_idx, c_mask, rejected, r_idx, r_mask, ref_c, ref_r)` ->
    (loss, answer tokens), the loss itself being mlx_lm_lora's `dpo_loss`."""
    import mlx.core as mx
    from mlx_lm_lora.trainer.dpo_trainer import dpo_loss

    def loss(model: Any, chosen: Any, c_idx: Any, c_mask: Any, rejected: Any, r_idx: Any,
             r_mask: Any, ref_c: Any, ref_r: Any) -> tuple[Any, Any]:
        policy_c = sequence_scores(model, chosen, c_idx, c_mask)
        policy_r = sequence_scores(model, rejected, r_idx, r_mask)
        # dpo_loss counts tokens as mask[:, 1:]: give it masks with a leading column
        pad = mx.ones((c_mask.shape[0], 1), dtype=mx.float32)
        cm = mx.concatenate([pad, c_mask.astype(mx.float32)], axis=1)
        rm = mx.concatenate([pad, r_mask.astype(mx.float32)], axis=1)
        value, _reward, ntoks, _metrics = dpo_loss(policy_c, policy_r, ref_c, ref_r, cm, rm,
                                                   beta=config.beta, delta=config.delta,
                                                   loss_type=config.loss_type)
        return value, ntoks

    return loss

    return loss


@dataclass(frozen=True)
class DPOResult:
    adapter_dir: Path
    pairs: int
    steps: int
    first_loss: float | None
    last_loss: float | None


def train_dpo(model: Any, tokenizer: Any, pairs: list[Pair], out_dir: Path,
              sft_config: TrainConfig, config: PreferenceConfig | None = None) -> DPOResult:
    """DPO on `model`, which must already carry the supervised LoRA weights (they are the
    reference and the starting point). Writes an mlx-lm adapter folder to `out_dir`."""
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_lm.tuner.trainer import TrainingArgs, train

    from adapters.training.train import adapter_config, quiet_mlx_console

    config = config or PreferenceConfig()
    if not pairs:
        raise AdapterError("no preference pairs yet: reject or edit some answers first")
    rows = encode_pairs(tokenizer, pairs)
    model.eval()
    reference_scores(model, rows, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []

    class Report:
        def on_train_loss_report(self, info: dict[str, Any]) -> None:
            losses.append(float(info["train_loss"]))

        def on_val_loss_report(self, info: dict[str, Any]) -> None:
            pass

    mx.random.seed(config.seed)
    args = TrainingArgs(batch_size=min(config.batch_size, len(rows)), iters=config.iters,
                        steps_per_report=1, steps_per_eval=config.iters + 1,
                        steps_per_save=config.iters + 1,
                        adapter_file=str(out_dir / "adapters.safetensors"),
                        max_seq_length=config.max_seq_length)
    model.train()
    with quiet_mlx_console():
        train(model=model, optimizer=optim.Adam(learning_rate=config.learning_rate),
              train_dataset=rows, args=args, loss=make_dpo_loss(config),
              iterate_batches=make_iterate(config.seed), training_callback=Report())  # type: ignore[arg-type]
    model.eval()
    if losses and not math.isfinite(losses[-1]):
        raise AdapterError("preference training diverged: lower its learning rate")
    files.write_json_atomic(out_dir / "adapter_config.json",
                            adapter_config(sft_config, {"hearth_preference": config.to_dict(),
                                                        "hearth_pairs": len(rows)}))
    return DPOResult(out_dir, len(rows), config.iters, losses[0] if losses else None,
                     losses[-1] if losses else None)
