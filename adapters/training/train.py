"""Train a LoRA candidate with mlx-lm's tuner: resumable, best-by-validation, early stopping.

`train_adapter(model, tokenizer, run_dir, config)` reads `train.jsonl` / `valid.jsonl` from the
run folder (see `adapters.training.dataset.Snapshot.write`), converts the top `num_layers` blocks with
`linear_to_lora_layers`, and calls `mlx_lm.tuner.trainer.train` with:
- mlx-lm's ChatDataset with `mask_prompt=True` (loss on the answer tokens only);
- a TrainingCallback that reports progress to a hook and to `train.log` (JSON lines), writes a
  resumable checkpoint (adapter weights, optimizer state, step) every `steps_per_save` steps,
  and keeps the best weights by validation loss in `best/` (the `KEEP_EARLIER` bests before
  it in `earlier/<step>/`, for a gate that finds the best one moved too far from the base);
- an `iterate_batches` wrapper that replays the seeded batch order (so a resumed run continues
  where the killed one stopped), stops the loop when patience runs out, and validates on every
  held-out example (mlx-lm's own batching would drop the remainder).

The result, `run_dir/best/`, is an mlx-lm adapter folder loadable by
`mlx_lm.load(model, adapter_path=...)` and `mlx_lm.tuner.utils.load_adapters`. This module
does not rewrite the training loop, choose data, judge or register candidates.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.training import files
from adapters.training.batching import StopFlag, batch_iterator, make_answer_loss
from adapters.training.config import TrainConfig
from adapters.training.errors import AdapterError

Progress = Callable[[dict[str, Any]], None]
CHECKPOINT = "checkpoint"
BEST = "best"
EARLIER = "earlier"
KEEP_EARLIER = 2
"""Earlier best weights kept (newest first in `TrainResult.earlier`): a refresh whose best
candidate the gate rejects for general behaviour tries these before giving up (measured on a
refresh of 120 demo answers: the best, 2.5 passes, moved the probe NLL +21%)."""
LOG = "train.log"
FORMAT_VERSION = 1


@dataclass
class TrainResult:
    """What a training run produced."""

    adapter_dir: Path
    """The best adapter (mlx-lm folder)."""
    best_val_loss: float | None
    best_step: int
    steps: int
    """Optimizer steps completed in total (including before a resume)."""
    iters: int
    """Steps the run was planned for."""
    stopped_early: bool
    resumed_from: int
    train_tokens: int
    """Tokens trained on in this process (not counting before a resume)."""
    train_seconds: float
    """Time spent in training steps in this process (validation excluded)."""
    last_weights: Path | None = None
    """The weights after the last step taken (mlx-lm's own final save)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    earlier: list[Path] = field(default_factory=list)
    """Adapter folders of the bests before `adapter_dir`, newest first (see `KEEP_EARLIER`);
    each holds `best.json` with its step and validation loss."""

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else 0.0


def adapter_config(config: TrainConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The adapter_config.json mlx-lm's `load_adapters` reads (plus our hyperparameters)."""
    return {
        "fine_tune_type": "lora",
        "num_layers": config.num_layers,
        "lora_parameters": config.lora_parameters(),
        "hearth_train_config": config.to_dict(),
        **(extra or {}),
    }


def load_datasets(run_dir: Path, tokenizer: Any) -> tuple[Any, Any]:
    """(train, valid) as mlx-lm CacheDatasets of ChatDataset(mask_prompt=True)."""
    from mlx_lm.tuner.datasets import CacheDataset, ChatDataset  # lazy: imports MLX

    def load(name: str) -> Any:
        path = run_dir / f"{name}.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
        return CacheDataset(ChatDataset(rows, tokenizer, mask_prompt=True))

    train, valid = load("train"), load("valid")
    if len(train) == 0:
        raise AdapterError(f"no training examples in {run_dir}: accept more answers, then refresh")
    return train, valid


class _Callback:
    """mlx-lm TrainingCallback: progress hook, log, checkpoints, best weights, patience."""

    def __init__(self, run: _Run, progress: Progress | None) -> None:
        self.run = run
        self.progress = progress

    def emit(self, event: dict[str, Any]) -> None:
        event = {"time": round(time.time(), 3), **event}
        self.run.history.append(event)
        with (self.run.dir / LOG).open("a") as fh:
            fh.write(json.dumps(event) + "\n")
        if self.progress is not None:
            self.progress(event)

    def on_train_loss_report(self, info: dict[str, Any]) -> None:
        run = self.run
        step = run.offset + int(info["iteration"])
        window = run.config.steps_per_report / max(info["iterations_per_second"], 1e-9)
        run.train_seconds += window
        run.train_tokens = int(info["trained_tokens"])
        loss = float(info["train_loss"])
        self.emit({"event": "train", "step": step, "total": run.iters, "loss": loss,
                   "tokens_per_second": round(float(info["tokens_per_second"]), 1)})
        if not math.isfinite(loss):
            run.stop.stop = True
            self.emit({"event": "stop", "step": step, "reason": "training loss is not finite"})
        elif run.out_of_time():
            run.stop.stop = True
            self.emit({"event": "stop", "step": step, "reason": "the time budget "
                       f"({run.config.time_budget_s:.0f} s) is spent; keeping the best weights"})
        if step % run.config.steps_per_save == 0 and step < run.iters:
            run.save_checkpoint(step)
            self.emit({"event": "checkpoint", "step": step})

    def on_val_loss_report(self, info: dict[str, Any]) -> None:
        run = self.run
        step = run.offset + int(info["iteration"])
        loss = float(info["val_loss"])
        self.emit({"event": "val", "step": step, "total": run.iters, "val_loss": loss})
        run.observe_val(step, loss, self.emit)


class _Run:
    """Mutable state of one training run (what a checkpoint holds)."""

    def __init__(self, run_dir: Path, config: TrainConfig, iters: int, model: Any, optimizer: Any) -> None:
        self.dir = run_dir
        self.config = config
        self.iters = iters
        self.model = model
        self.optimizer = optimizer
        self.offset = 0
        self.best_loss: float | None = None
        self.best_step = 0
        self.bad_evals = 0
        self.stop = StopFlag()
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.train_tokens = 0
        self.started = time.monotonic()
        self.identity = {"format": FORMAT_VERSION, "config": config.to_dict(), "iters": iters,
                         "data": files.sha256_file(run_dir / "train.jsonl")}

    def out_of_time(self) -> bool:
        budget = self.config.time_budget_s
        return bool(budget) and time.monotonic() - self.started > budget  # type: ignore[operator]

    def weights(self) -> dict[str, Any]:
        from mlx.utils import tree_flatten  # lazy: imports MLX

        return dict(tree_flatten(self.model.trainable_parameters()))

    def observe_val(self, step: int, loss: float, emit: Callable[[dict[str, Any]], None]) -> None:
        if self.best_loss is None or loss < self.best_loss - self.config.min_delta:
            self.best_loss, self.best_step, self.bad_evals = loss, step, 0
            self.save_best()
            emit({"event": "best", "step": step, "val_loss": loss})
        elif step > 0:
            self.bad_evals += 1
            if self.config.patience and self.bad_evals >= self.config.patience:
                self.stop.stop = True
                emit({"event": "stop", "step": step,
                      "reason": f"no validation improvement in {self.bad_evals} evaluations"})

    def save_best(self) -> None:
        best = self.dir / BEST
        if (best / "best.json").exists():
            self._keep_as_earlier(best)
        best.mkdir(exist_ok=True)
        files.save_safetensors_atomic(best / "adapters.safetensors", self.weights())
        files.write_json_atomic(best / "adapter_config.json", adapter_config(self.config))
        files.write_json_atomic(best / "best.json", {"step": self.best_step, "val_loss": self.best_loss})

    def _keep_as_earlier(self, best: Path) -> None:
        """Copy the previous best to `earlier/<step>` (not step 0: the untrained start), then
        keep the newest `KEEP_EARLIER`. A copy, so a crash in between leaves `best/` whole."""
        step = int(json.loads((best / "best.json").read_text())["step"])
        if step <= 0:
            return
        earlier = self.dir / EARLIER
        earlier.mkdir(exist_ok=True)
        partial = earlier / "partial"
        files.remove_tree(partial, within=self.dir)
        shutil.copytree(best, partial)
        files.remove_tree(earlier / f"{step:06d}", within=self.dir)
        partial.rename(earlier / f"{step:06d}")
        for old in earlier_bests(self.dir)[KEEP_EARLIER:]:
            files.remove_tree(old, within=self.dir)

    def save_checkpoint(self, step: int) -> None:
        from mlx.utils import tree_flatten  # lazy: imports MLX

        ckpt = self.dir / CHECKPOINT
        ckpt.mkdir(exist_ok=True)
        opt_state = dict(tree_flatten(self.optimizer.state))
        files.save_safetensors_atomic(ckpt / "adapters.safetensors", self.weights())
        files.save_safetensors_atomic(ckpt / "optimizer.safetensors", opt_state)
        state = {**self.identity, "step": step, "best_loss": self.best_loss,
                 "best_step": self.best_step, "bad_evals": self.bad_evals}
        files.write_json_atomic(ckpt / "state.json", state)  # written last: marks it complete

    def try_resume(self) -> bool:
        """Restore the last complete checkpoint of this same run; False when there is none."""
        from mlx.utils import tree_unflatten  # lazy: imports MLX

        ckpt = self.dir / CHECKPOINT
        try:
            state = json.loads((ckpt / "state.json").read_text())
            if {k: state.get(k) for k in self.identity} != self.identity:
                return False
            weights = load_arrays(ckpt / "adapters.safetensors")
            opt_state = load_arrays(ckpt / "optimizer.safetensors")
        except (OSError, ValueError, RuntimeError):
            return False
        self.model.load_weights(list(weights.items()), strict=False)
        self.optimizer.state = tree_unflatten(list(opt_state.items()))
        self.offset = int(state["step"])
        self.best_loss, self.best_step = state["best_loss"], int(state["best_step"])
        self.bad_evals = int(state["bad_evals"])
        return True


def earlier_bests(run_dir: Path) -> list[Path]:
    """The earlier best adapter folders of a run, newest first."""
    folder = run_dir / EARLIER
    found = [p for p in folder.iterdir() if p.name.isdigit() and (p / "best.json").exists()
             ] if folder.is_dir() else []
    return sorted(found, key=lambda p: p.name, reverse=True)


def mean_tokens(dataset: Any) -> float:
    """Mean tokens per example of an mlx-lm (Cache)Dataset of (tokens, offset) items."""
    n = len(dataset)
    return sum(len(dataset[i][0]) for i in range(n)) / n if n else 0.0


def _optimizer(config: TrainConfig, iters: int) -> Any:
    """Adam at the configured rate, or on its schedule (the step count lives in the optimizer
    state, which checkpoints save, so a resumed run continues the schedule)."""
    import mlx.optimizers as optim  # lazy: imports MLX
    from mlx_lm.tuner.utils import build_schedule  # lazy: imports MLX

    schedule = config.schedule(iters)
    return optim.Adam(learning_rate=build_schedule(schedule) if schedule else config.learning_rate)


def prepare_model(model: Any, config: TrainConfig) -> None:
    """Freeze the base and add LoRA layers to the top `num_layers` blocks (seeded)."""
    import mlx.core as mx  # lazy: imports MLX
    from mlx_lm.tuner.utils import linear_to_lora_layers  # lazy: imports MLX

    if config.num_layers > len(model.layers):
        raise AdapterError(
            f"num_layers={config.num_layers} but the model has {len(model.layers)} blocks: "
            "lower num_layers (or use -1 for all)"
        )
    mx.random.seed(config.seed)
    model.freeze()
    linear_to_lora_layers(model, config.num_layers, config.lora_parameters())


def train_adapter(
    model: Any,
    tokenizer: Any,
    run_dir: Path,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train LoRA layers on `model` (modified in place) from the data in `run_dir`.

    With `resume`, a checkpoint of the same run (same config, data and plan) is continued.
    Returns where the best adapter is; its weights are also left loaded in `model`.
    """
    import mlx.core as mx  # lazy: imports MLX
    from mlx_lm.tuner.trainer import TrainingArgs, evaluate, train  # lazy: imports MLX

    config = config or TrainConfig()
    train_set, valid_set = load_datasets(run_dir, tokenizer)
    iters = config.resolved_iters(len(train_set), mean_tokens(train_set))
    prepare_model(model, config)
    optimizer = _optimizer(config, iters)
    run = _Run(run_dir, config, iters, model, optimizer)
    resumed = resume and run.try_resume()
    if not resumed:
        files.remove_tree(run_dir / LOG, within=run_dir)
        files.remove_tree(run_dir / BEST, within=run_dir)
        files.remove_tree(run_dir / EARLIER, within=run_dir)
    callback = _Callback(run, progress)
    callback.emit({"event": "start", "step": run.offset, "total": iters, "resumed": resumed,
                   "n_train": len(train_set), "n_valid": len(valid_set)})
    batch_size = max(1, min(config.batch_size, len(train_set)))
    args = TrainingArgs(
        batch_size=batch_size, iters=iters - run.offset, val_batches=config.val_batches,
        steps_per_report=config.steps_per_report, steps_per_eval=config.steps_per_eval,
        steps_per_save=iters + 1, adapter_file=str(run_dir / "last.safetensors"),
        max_seq_length=config.max_seq_length, grad_checkpoint=config.grad_checkpoint,
    )
    iterate = batch_iterator(config.seed, run.offset, run.stop)
    loss = make_answer_loss(model)
    if run.offset < iters:
        with quiet_mlx_console():
            train(model=model, optimizer=optimizer, train_dataset=train_set,
                  val_dataset=valid_set if len(valid_set) else None, args=args, loss=loss,
                  iterate_batches=iterate, training_callback=callback)  # type: ignore[arg-type]
    steps = run.offset + run.stop.steps
    if len(valid_set):  # train() validates before a step, never after the last one
        final = evaluate(model, valid_set, batch_size, -1, config.max_seq_length, loss=loss,
                         iterate_batches=iterate)
        callback.emit({"event": "val", "step": steps, "total": iters, "val_loss": final})
        run.observe_val(steps, final, callback.emit)
    else:
        run.save_best()
    best = run_dir / BEST
    if run.best_loss is not None and not math.isfinite(run.best_loss):
        raise AdapterError("training diverged (validation loss is not finite): lower the learning rate")
    load_into(model, best / "adapters.safetensors")
    files.remove_tree(run_dir / CHECKPOINT, within=run_dir)
    last = run_dir / "last.safetensors"
    result = TrainResult(best, run.best_loss, run.best_step, steps, iters, run.stop.stop,
                         run.offset if resumed else 0, run.train_tokens, run.train_seconds,
                         last if last.exists() else None, run.history, earlier_bests(run_dir))
    callback.emit({"event": "done", "step": steps, "total": iters, "best_step": run.best_step,
                   "best_val_loss": run.best_loss, "stopped_early": run.stop.stop,
                   "tokens_per_second": round(result.tokens_per_second, 1)})
    mx.clear_cache()
    return result


@contextlib.contextmanager
def quiet_mlx_console() -> Iterator[None]:
    """Send mlx-lm's rich training display to nowhere (we report through the callback)."""
    from mlx_lm.cli_ui import make_console  # lazy: imports MLX

    console = make_console()
    saved = console.file
    console.file = io.StringIO()
    try:
        yield
    finally:
        console.file = saved


def load_arrays(path: Path) -> dict[str, Any]:
    """The named arrays of a safetensors file."""
    import mlx.core as mx  # lazy: imports MLX

    arrays = mx.load(str(path))
    if not isinstance(arrays, dict):
        raise AdapterError(f"{path} holds no named tensors; delete it and train again")
    return arrays


def load_into(model: Any, weights_file: Path) -> None:
    """Load adapter weights into a model that already has matching LoRA layers."""
    import mlx.core as mx  # lazy: imports MLX

    model.load_weights(list(load_arrays(weights_file).items()), strict=False)
    mx.eval(model.parameters())
