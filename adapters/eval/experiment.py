"""The `hearth eval` experiment: four conditions on the same held-out pairs.

`run_experiment(runtime, split, folder, config)`:
1. stores the training part in a temporary store (`context.open_memory`);
2. builds each held-out item's prompt without and with retrieval (`context.build_prompts`);
3. measures the bare model: **base** (no retrieval) and **rag** (with), plus the probe;
4. trains a LoRA adapter on the training part with the trainer `hearth refresh` uses
   (`adapters.training.train.train_adapter`; its own validation pairs are carved from the training
   part by `adapters.training.dataset.split`, as refresh does, so the held-out pairs never steer it);
5. measures **adapter** and **both** (adapter + retrieval), plus the probe and the adapter's
   KL from the base on it; the fact quiz (`config.quiz`) is asked under every condition with
   the same prompts as the held-out pairs;
6. summarises with paired bootstrap intervals (`stats`).

Everything it writes goes under `folder` (a temporary directory in the CLI). The runtime's
model is returned to the bare base afterwards. It does not print or draw (`report`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from adapters.eval import CONDITIONS, context, measure, quiz, stats
from adapters.eval.data import Item, Split, limit
from adapters.training import dataset, gate
from adapters.training.config import DataConfig, GateConfig, RefreshPolicy, TrainConfig
from adapters.training.errors import AdapterError
from adapters.training.evaluate import (
    mean_kl,
    median_kl,
    probe_logprobs,
    probe_nll,
    use_adapter,
)
from adapters.training.train import train_adapter

Stage = Callable[[str, int, int], None]
"""Progress: (stage name, done, total)."""
FORMAT_VERSION = 1


@dataclass
class ExperimentConfig:
    """Knobs of one `hearth eval` run; defaults fit the demo in well under 30 min on 2 CPU cores."""

    limit: int | None = None
    """Score only the first N held-out pairs (hash order, so a stable slice); None: all."""
    max_tokens: int = 32
    """Greedy answer length limit (the demo's reference answers are 10-35 tokens)."""
    gen_batch: int = 20
    """Answers decoded together (on a CPU a decode step costs about the same for 1 or 20)."""
    probe: bool = True
    """Measure the general probe (the gate's regression guard) for base and adapter weights."""
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps_per_eval=1000, steps_per_save=1000)
    )
    """The adapter's training settings: `hearth refresh`'s (its epochs and time budget
    included), but validation only before and after training (`--epochs` / `--iters`)."""
    data: DataConfig | None = field(default_factory=DataConfig)
    """How the training part is augmented, as `hearth refresh` does (None: as asked only)."""
    quiz: list[Any] = field(default_factory=list)
    """Fact-quiz questions (`adapters.eval.quiz.Question`) asked under every condition."""
    gate: GateConfig = field(default_factory=GateConfig)
    """The gate whose verdict on the adapter is reported (`hearth refresh`'s defaults)."""
    inner_valid_fraction: float = 0.0
    """Share of the training part the trainer validates on (best checkpoint, early stopping).
    Refresh holds out 20%; here the trainer only needs a sanity check before and after
    training, so by default just `inner_min_valid` pairs, chosen by hash."""
    inner_min_valid: int = RefreshPolicy().min_valid
    bootstrap: int = 2000
    """Bootstrap resamples for the 95% intervals."""
    seed: int = 0


@dataclass
class Results:
    """Every number of one run: per-condition summaries, per-item scores, and the setting."""

    summaries: dict[str, stats.Summary]
    items: list[dict[str, Any]]
    meta: dict[str, Any]

    def conditions(self) -> dict[str, dict[str, Any]]:
        """{condition: {nll, f1, rougeL, content_f1, probe_nll?, n, tokens, ci, delta_vs_base}}."""
        return {name: self.summaries[name].to_dict() for name in CONDITIONS}

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "conditions": self.conditions(),
                "meta": self.meta, "items": self.items}


class _Clock:
    """Seconds spent per stage."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.laps: dict[str, float] = {}
        self._last = self.start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 2)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.start, 2)


def _hook(progress: Stage | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


@dataclass(frozen=True)
class _Row:
    """A training pair as an accepted answer (what `dataset.make_snapshot` reads)."""

    message_id: str
    prompt_messages: list[dict[str, str]]
    target: str
    forgotten: bool = False


@dataclass(frozen=True)
class _Note:
    """A bare {"text"} record as a memory (first-person ones become questions)."""

    id: str
    text: str


def training_snapshot(
    train: Sequence[Item], system_prompt: str, count: context.Counter, budget: context.Budget,
    config: ExperimentConfig,
) -> dataset.Snapshot:
    """The training part as refresh builds a snapshot: train/valid by hash, augmented as
    `config.data` says (rewrites, notes as memories, the quiz phrasings it validates on)."""
    rows = []
    for it in train:
        if it.scorable:
            messages = context.train_messages(it, system_prompt, count, budget)
            rows.append(_Row(it.hash, messages[:-1], messages[-1]["content"]))
    if not rows:
        raise AdapterError("the training part holds no question/answer pairs: nothing to train on")
    notes = [_Note(it.hash[:16], it.reference) for it in train if not it.scorable]
    return dataset.make_snapshot(rows, config.inner_valid_fraction, config.inner_min_valid,
                                 memories=notes, data=config.data, system_prompt=system_prompt,
                                 serve=dataset.default_serve(
                                     count, compact=config.data is not None and config.data.compact))


def train_on(
    runtime: Any, snapshot: dataset.Snapshot, run_dir: Path, config: ExperimentConfig,
    progress: Stage | None = None,
) -> Any:
    """Train the adapter with refresh's trainer; the best weights stay loaded in the model."""

    def report(event: dict[str, Any]) -> None:
        if progress is not None and event.get("event") in ("train", "done"):
            progress("training", int(event["step"]), int(event["total"]))

    snapshot.write(run_dir)
    return train_adapter(runtime.model, runtime.tokenizer, run_dir,
                         fit_layers(config.train, len(runtime.model.layers)),
                         progress=report, resume=False)


def fit_layers(train: TrainConfig, blocks: int) -> TrainConfig:
    """`train`, adapting every block when it asks for more blocks than the model has.

    >>> fit_layers(TrainConfig(num_layers=8), 2).num_layers, fit_layers(TrainConfig(), 30).num_layers
    (-1, 8)
    """
    return replace(train, num_layers=-1) if train.num_layers > blocks else train


def _measure_pair(
    runtime: Any, prompts: context.Prompts, refs: list[str], names: tuple[str, str],
    config: ExperimentConfig, progress: Stage | None, stock: frozenset[str],
) -> dict[str, list[measure.Scored]]:
    out = {}
    for name, chosen in zip(names, (prompts.plain, prompts.retrieved), strict=True):
        out[name] = measure.measure(runtime.model, runtime.tokenizer, chosen, refs,
                                    config.max_tokens, config.gen_batch, _hook(progress, name),
                                    stock)
    return out


def _probe(runtime: Any, config: ExperimentConfig) -> tuple[float | None, Any]:
    """(probe NLL, probe log-probs for the divergence) of the model as it is now."""
    if not config.probe:
        return None, None
    return (probe_nll(runtime.model, runtime.tokenizer).mean,
            probe_logprobs(runtime.model, runtime.tokenizer))


def run_experiment(
    runtime: Any,
    split: Split,
    folder: Path,
    config: ExperimentConfig | None = None,
    system_prompt: str | None = None,
    embedder: Any = None,
    progress: Stage | None = None,
) -> Results:
    """Measure base, rag, adapter and both on `split.heldout` (see the module docstring)."""

    config = config or ExperimentConfig()
    heldout = limit(split.heldout, config.limit)
    if not heldout:
        raise AdapterError("no held-out pairs to score: add data or raise --limit")
    asked = [*heldout, *(q.item() for q in config.quiz)]  # held-out pairs, then the quiz
    clock = _Clock()
    budget = context.Budget.from_chat(runtime.context_window)
    store = context.open_memory(folder / "memory", split.train, system_prompt, embedder,
                                _hook(progress, "memory"))
    try:
        system = store.active_system_prompt()[1]
        prompts = context.build_prompts(asked, store, runtime.count_tokens, budget,
                                        _hook(progress, "retrieval"))
    finally:
        store.close()
    clock.lap("memory_and_retrieval")
    snapshot = training_snapshot(split.train, system, runtime.count_tokens, budget, config)
    refs = [it.reference for it in asked]
    stock = measure.style_words([it.reference for it in split.train if it.scorable])
    use_adapter(runtime.model, None)
    scored = _measure_pair(runtime, prompts, refs, ("base", "rag"), config, progress, stock)
    probe_base, base_logprobs = _probe(runtime, config)
    clock.lap("measure_base")
    try:
        trained = train_on(runtime, snapshot, folder / "adapter", config, progress)
        clock.lap("train")
        scored |= _measure_pair(runtime, prompts, refs, ("adapter", "both"), config, progress,
                                stock)
        probe_adapter, adapter_logprobs = _probe(runtime, config)
        clock.lap("measure_adapter")
    finally:
        use_adapter(runtime.model, None)
    n = len(heldout)
    quizzed = {name: items[n:] for name, items in scored.items()}
    scored = {name: items[:n] for name, items in scored.items()}
    probes = {"base": probe_base, "rag": probe_base, "adapter": probe_adapter, "both": probe_adapter}
    summaries = stats.summarize(scored, probes, config.bootstrap, config.seed)
    meta = _meta(runtime, split, heldout, snapshot, trained, config, clock)
    meta["style_words"] = sorted(stock)
    if base_logprobs is not None:
        meta["probe_kl"] = mean_kl(base_logprobs, adapter_logprobs)
        meta["probe_median_kl"] = median_kl(base_logprobs, adapter_logprobs)
        meta["gate"] = gate_verdict(summaries, meta["probe_kl"], config)
    if config.quiz:
        meta["quiz"] = quiz_results(config.quiz, quizzed, config)
    return Results(summaries, _items(heldout, prompts, scored), meta)


def gate_verdict(summaries: dict[str, stats.Summary], probe_kl: float, config: ExperimentConfig
                 ) -> dict[str, Any]:
    """Would `hearth refresh`'s gate promote this adapter over the base? Its `decide` on this
    run's numbers: held-out answer NLL, probe NLL and divergence (the eval trains without the
    gate, so a candidate it would reject is shown, not hidden)."""
    base, adapter = summaries["base"], summaries["adapter"]
    verdict = gate.decide(
        gate.Scores(adapter.nll, adapter.probe_nll or math.nan, n_valid=adapter.n,
                    label="adapter", probe_kl=probe_kl),
        gate.Scores(base.nll, base.probe_nll or math.nan, n_valid=base.n, label="base"),
        config.gate, base.probe_nll)
    return {"promote": verdict.promote, "reason": verdict.reason}


def quiz_results(questions: Sequence[Any], scored: dict[str, list[measure.Scored]],
                 config: ExperimentConfig) -> dict[str, Any]:
    """Per condition the share of quiz questions answered with the fact; every answer."""
    hits = {name: [quiz.says_fact(s.answer, q.facts) for s, q in zip(items, questions, strict=True)]
            for name, items in scored.items()}
    return {
        "n": len(questions),
        "conditions": {name: quiz.summarize(h, config.bootstrap, config.seed)
                       for name, h in hits.items()},
        "items": [{"question": q.question, "facts": list(q.facts),
                   **{name: {"answer": scored[name][i].answer, "hit": hits[name][i]}
                      for name in scored}}
                  for i, q in enumerate(questions)],
    }


def _items(
    heldout: Sequence[Item], prompts: context.Prompts, scored: dict[str, list[measure.Scored]]
) -> list[dict[str, Any]]:
    return [
        {"question": it.question, "reference": it.reference, "hash": it.hash[:16],
         "hits": prompts.hits[i], "examples_used": prompts.examples_used[i],
         **{name: scored[name][i].to_dict() for name in CONDITIONS}}
        for i, it in enumerate(heldout)
    ]


def _meta(
    runtime: Any, split: Split, heldout: Sequence[Item], snapshot: dataset.Snapshot,
    trained: Any, config: ExperimentConfig, clock: _Clock,
) -> dict[str, Any]:
    return {
        "model": runtime.ref.id,
        "model_checksum": runtime.ref.checksum,
        "n_train": len(split.train),
        "n_heldout": len(split.heldout),
        "n_scored": len(heldout),
        "dropped_overlap": split.dropped_overlap,
        "adapter_train_examples": len(snapshot.train),
        "adapter_examples": snapshot.counts(),
        "adapter_valid_examples": len(snapshot.valid),
        "snapshot_id": snapshot.snapshot_id,
        "train": {"steps": trained.steps, "iters": trained.iters, "best_step": trained.best_step,
                  "best_val_loss": trained.best_val_loss, "stopped_early": trained.stopped_early,
                  "tokens_per_second": round(trained.tokens_per_second, 1)},
        "config": {**asdict(config),
                   "train": fit_layers(config.train, len(runtime.model.layers)).to_dict()},
        "seconds": {**clock.laps, "total": clock.total},
    }
