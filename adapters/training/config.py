"""Settings for training, gating and refreshing the personal adapter.

Three dataclasses with documented fields and defaults sized for a 135M model on a laptop CPU.
`from_dict` builds one from a (possibly partial) mapping, ignoring unknown keys, so settings
stored by an older or newer Hearth still load. This module only holds settings; it does not
read files or the database.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Self


class _FromDict:
    """`from_dict` / `to_dict` for the settings dataclasses below."""

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Self:
        """Build from `values`, keeping defaults for missing keys and ignoring unknown ones.

        >>> TrainConfig.from_dict({"rank": 4, "colour": "blue"}).rank
        4
        """
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in (values or {}).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass
class TrainConfig(_FromDict):
    """How a LoRA candidate is trained (mlx-lm tuner)."""

    rank: int = 8
    """LoRA rank: the width of the low-rank update."""
    scale: float = 20.0
    """mlx-lm's LoRA `scale` multiplying the update (what PEFT calls alpha / rank)."""
    dropout: float = 0.0
    """Dropout on the LoRA input."""
    num_layers: int = 8
    """How many transformer blocks, counted from the top, get LoRA layers (-1: all)."""
    keys: list[str] | None = None
    """Module names inside a block to adapt (e.g. ["self_attn.q_proj"]); None = every linear."""
    learning_rate: float = 2e-4
    """Adam learning rate."""
    iters: int | None = None
    """Optimizer steps. None: derived from `epochs` and the number of training examples."""
    epochs: float = 4.0
    """Passes over the training examples when `iters` is None."""
    min_iters: int = 20
    """Lower bound for derived `iters` (tiny datasets still get some steps)."""
    max_iters: int = 400
    """Upper bound for derived `iters` (keeps a nightly refresh within about an hour on CPU)."""
    batch_size: int = 4
    """Examples per step (the training split must hold at least this many)."""
    max_seq_length: int = 1024
    """Longer examples are truncated to this many tokens."""
    steps_per_report: int = 1
    """Steps between progress reports (the callback hook and the log)."""
    steps_per_eval: int = 10
    """Steps between validation-loss measurements (best checkpoint and early stopping)."""
    steps_per_save: int = 10
    """Steps between resumable checkpoints (weights, optimizer state, step)."""
    val_batches: int = -1
    """Validation batches per measurement; -1 = the whole validation split."""
    patience: int = 3
    """Stop after this many validation measurements without improvement (0: never stop early)."""
    min_delta: float = 1e-3
    """A validation loss must beat the best by this much (nats) to count as an improvement."""
    seed: int = 0
    """Seeds LoRA initialisation, dropout and batch order (a resumed run sees the same order)."""
    grad_checkpoint: bool = False
    """Trade compute for memory (mlx-lm's gradient checkpointing)."""

    def resolved_iters(self, n_train: int) -> int:
        """Steps to train for `n_train` examples.

        >>> TrainConfig(epochs=2, batch_size=4).resolved_iters(40)
        20
        >>> TrainConfig(iters=7).resolved_iters(40)
        7
        """
        if self.iters is not None:
            return max(1, self.iters)
        derived = math.ceil(self.epochs * n_train / max(1, self.batch_size))
        return max(self.min_iters, min(self.max_iters, derived))

    def lora_parameters(self) -> dict[str, Any]:
        """The `lora_parameters` mapping mlx-lm's `linear_to_lora_layers` expects."""
        params: dict[str, Any] = {"rank": self.rank, "scale": self.scale, "dropout": self.dropout}
        if self.keys:
            params["keys"] = list(self.keys)
        return params


@dataclass
class GateConfig(_FromDict):
    """When a candidate may replace the active adapter (or the base model)."""

    min_improvement: float = 0.02
    """Personal validation NLL must fall by at least this fraction of the reference's (2%)."""
    max_probe_regression: float = 0.10
    """The general probe's NLL may rise by at most this fraction of the reference's (10%).

    A distinctive personal style alone moves it: on the test persona (every answer framed
    "Right then! ... Cheers, pal.") SmolLM2's probe NLL rose 6.3% while general answers stayed
    right; a diverged adapter moves it by well over 100%."""
    max_probe_regression_vs_base: float = 0.15
    """...and by at most this fraction of the base model's, so small drifts cannot pile up."""
    min_valid_examples: int = 2
    """Fewer held-out examples than this and no decision is trusted: the candidate is rejected."""


@dataclass
class RefreshPolicy(_FromDict):
    """When `hearth refresh` (by hand or nightly) trains a new candidate."""

    min_accepted: int = 20
    """Cold start: below this many accepted answers no adapter is trained."""
    min_new_accepted: int = 10
    """Train again only when this many answers were accepted since the active adapter's data."""
    skip_on_battery: bool = True
    """Skip (with a logged reason) while the machine runs on battery."""
    skip_if_active_minutes: float = 10.0
    """Skip while the user chatted within this many minutes (0: never skip for activity)."""
    valid_fraction: float = 0.2
    """Share of examples held out for validation (stable, by hash)."""
    min_valid: int = 4
    """At least this many examples are held out, when the dataset allows."""
