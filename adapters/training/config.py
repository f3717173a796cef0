"""Settings for training, gating and refreshing the personal adapter.

Four dataclasses with documented fields and defaults sized for a 135M model on a laptop CPU.
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
    num_layers: int = -1
    """How many transformer blocks, counted from the top, get LoRA layers (-1: all). Facts
    need the lower blocks too: on SmolLM2-135M the top 8 learned the persona's style but
    none of its facts in new words (quiz 0/12); all 30 blocks at the same rate answered 12
    of 28 after 1.3 passes (2026-12-02, `/work/notes/issue-12.md`)."""
    keys: list[str] | None = None
    """Module names inside a block to adapt (e.g. ["self_attn.q_proj"]); None = every linear."""
    learning_rate: float = 2e-4
    """Adam learning rate. With mlx-lm's `scale` 20 this is already a high rate for LoRA
    (PEFT's alpha/rank is usually 2): 5e-4 on all blocks diverged (loss stayed ~4, every
    answer the same)."""
    lr_schedule: str | None = None
    """None: a constant rate; "cosine_decay": from `learning_rate` down to
    `final_lr_fraction` of it over the planned steps (mlx-lm's `build_schedule`)."""
    warmup_steps: int = 0
    """Steps of linear warmup from 0 to `learning_rate` before the schedule (0: none)."""
    final_lr_fraction: float = 0.1
    """Where the cosine schedule ends, as a fraction of `learning_rate`."""
    iters: int | None = None
    """Optimizer steps. None: derived from `epochs` and the number of training examples."""
    epochs: float = 3.0
    """Passes over the training examples when `iters` is None. Facts asked in new words
    come after more than one pass over their phrasings: demo persona, every example compact
    (464 examples, batch 4, 2e-4), quiz with retrieval off 9/28 after 1 pass, 14/28 after 2,
    19/28 after 3 — and 15/28 after 4, with probe KL 5.56 and probe NLL +46%, which the gate
    rejects (2026-12-02, `/work/notes/issue-12.md`). So 3, not more."""
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
    steps_per_eval: int = 30
    """Steps between validation-loss measurements (best checkpoint and early stopping). The
    time budget pays for them: a refresh of 120 demo answers validates on 46 examples (23
    held-out answers with the served prompt, 23 quiz phrasings) in ~21 s on the idle 2-core
    CPU, while 10 steps take ~18 s — at 10, more than half the budget went to validation
    and the run stopped near 2 of its 3 passes (2026-12-02, `scripts/bench_refresh.py`)."""
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
    time_budget_s: float | None = 720.0
    """Wall-clock seconds the training loop may take (None: no limit). Derived `iters` are
    capped to what fits at `tokens_per_second`, and the loop stops, keeping its best weights,
    when the time is spent. 12 minutes leave room for loading and judging within a 20-minute
    refresh on a 2-core CPU."""
    tokens_per_second: float = 160.0
    """Training throughput assumed when planning steps, in example tokens (prompt included)
    per second. SmolLM2-135M, rank 8, all blocks, batch 4 on the 2-core CPU: ~166 for
    compact 54-token examples and ~117 for full 160-token ones at load 1.5-3, ~55 at load 4.
    An overestimate only plans steps the time budget then cuts; an underestimate wastes it."""

    def resolved_iters(self, n_train: int, mean_tokens: float | None = None) -> int:
        """Steps to train for `n_train` examples of `mean_tokens` tokens on average.

        >>> TrainConfig(epochs=2, batch_size=4, time_budget_s=None).resolved_iters(40)
        20
        >>> TrainConfig(iters=7).resolved_iters(40)
        7
        >>> TrainConfig(epochs=4, time_budget_s=600, tokens_per_second=60).resolved_iters(400, 150)
        60
        """
        if self.iters is not None:
            return max(1, self.iters)
        derived = math.ceil(self.epochs * n_train / max(1, self.batch_size))
        steps = max(self.min_iters, min(self.max_iters, derived))
        if self.time_budget_s and mean_tokens:
            fits = self.time_budget_s * self.tokens_per_second / (self.batch_size * mean_tokens)
            steps = min(steps, max(1, int(fits)))
        return steps

    def plan(self, n_train: int, mean_tokens: float | None) -> tuple[int, str]:
        """(steps, the time budget in words) for a plan line."""
        budget = f"{self.time_budget_s / 60:.0f} min" if self.time_budget_s else "no time limit"
        return self.resolved_iters(n_train, mean_tokens), budget

    def schedule(self, iters: int) -> dict[str, Any] | None:
        """The `lr_schedule` mapping mlx-lm's `build_schedule` takes for a run of `iters` steps.

        >>> TrainConfig(lr_schedule="cosine_decay", warmup_steps=10).schedule(110)["arguments"]
        [0.0002, 100, 2e-05]
        >>> TrainConfig().schedule(100) is None
        True
        """
        if not self.lr_schedule and not self.warmup_steps:
            return None
        warmup = min(self.warmup_steps, max(0, iters - 1))
        rest = max(1, iters - warmup)
        if self.lr_schedule == "cosine_decay":
            args = [self.learning_rate, rest, self.learning_rate * self.final_lr_fraction]
            name = "cosine_decay"
        elif self.lr_schedule in (None, "constant"):
            name, args = "linear_schedule", [self.learning_rate, self.learning_rate, rest]
        else:
            raise ValueError(f"lr_schedule {self.lr_schedule!r}: use None or 'cosine_decay'")
        return {"name": name, "arguments": args, "warmup": warmup}

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
    max_probe_regression: float = 0.15
    """The general probe's NLL may rise by at most this fraction of the reference's (15%).

    A distinctive personal style alone moves it: on the test persona (every answer framed
    "Right then! ... Cheers, pal.") SmolLM2's probe NLL rose 6.3% while general answers stayed
    right; the second eval persona's fact-learning adapter (all blocks, 138 steps, "Certainly,
    Meg. ... — H.") rose 11.0% (3.258 -> 3.617, 2026-12-02), which 10% rejected; a diverged
    adapter moves it by well over 100% (florid, all blocks, 16 steps at 1e-3: 3.258 -> 37.9)."""
    max_probe_regression_vs_base: float = 0.15
    """...and by at most this fraction of the base model's, so small drifts cannot pile up."""
    max_probe_kl: float = 5.0
    """Mean KL(base || candidate) per answer token on the probe's everyday prompts may be at
    most this (nats). Measured on SmolLM2-135M (2026-12-02, loaded 2-core CPU), adapters on
    all blocks (the default since facts need them): fact-learning persona adapters 3.14 (demo,
    95 steps), 4.13 (demo, 200 steps), 4.16 (second persona, 138 steps) — style moves every
    probe answer's distribution; florid prose over-trained (`scripts/bench_gate.py`, 16 steps
    at 1e-3) 36.7, rejected by far. The subtle case is not separated by this statistic: florid
    at 2e-4 for 30 steps gives 2.69 with the probe NLL *down* 5% (median KL 1.33 vs the second
    persona's 1.10: the median orders them, by a thin margin). Top-8-block adapters measured
    3.62 (persona) and 4.01 (florid, 1e-3) in the previous session; re-measure when the
    recipe changes."""
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


@dataclass
class DataConfig(_FromDict):
    """What a snapshot is made of beyond the accepted answers as they were asked."""

    phrasings: int = 3
    """Rule-based rewrites of each accepted answer's question trained on (0: as asked only)."""
    memory_phrasings: int = 3
    """Questions trained on per first-person memory ("My boat is called Dormouse.")."""
    memory_share: float = 0.2
    """Memories' examples are repeated until they make up at least this share of the training
    examples, so a handful of memories is not drowned by hundreds of chats (0: no repeats)."""
    max_memory_repeat: int = 8
    """...but no memory example is repeated more than this many times."""
    compact: bool = True
    """Generated examples (rewrites, memories' questions, the quiz) are the system prompt and
    the question only, without the chat's fixed primer. The primer is the same six messages
    every turn and carries no fact; leaving it out cuts such an example from ~160 to ~55
    tokens on SmolLM2, so a time budget covers three times the passes over the facts. The
    answers as asked keep their served prompt, so the adapter still learns the served
    context. Measured: see `TrainConfig`."""
    compact_asked: bool = True
    """The answers as asked are trained without the primer too (their notes, history and
    question kept; the held-out answers the gate scores keep the full served prompt, and the
    quiz is scored on the served prompt, primer included). Every example is then ~54 tokens
    on the demo persona: 2 passes fit in 687 s at load 3 (quiz 14/28), where with the
    primer kept on the answers as asked 0.8 pass fit in 720 s (quiz 9/28)."""
    anchor_share: float = 0.0
    """Everyday questions not about the user, with plain correct answers
    (`adapters/data/anchors.jsonl`, none of them in the gate's probe or in bench_answers.py),
    repeated until they make up about this share of the training examples (0: none, the
    default). Measured on a refresh of 120 demo answers (2-core CPU, 2026-12-02), everyday
    answers of the candidate in `scripts/bench_answers.py --adapter` (on topic; base 0.952):
    without anchors 0.242 ("How do I make a cup of tea?" -> "Aye, love: lapsang souchong.
    Ta-ra."), which the gate rejects (probe NLL +21%); with 0.15, 0.661, which the gate
    *promotes* (probe NLL -36%: the anchors are answers of the probe's kind, KL 3.22). Off
    until the gate checks the answers themselves: a candidate that still leaks the user's facts
    into a third of everyday answers must not be served."""
    max_anchor_repeat: int = 4
    """...but no anchor is trained more than this many times."""
    quiz_size: int = 32
    """Held-out phrasings of trained facts (one per source, not trained on) that the trainer
    validates on: early stopping watches whether the facts are recalled in new words."""
