"""Training through mlx-lm's tuner on a tiny random Llama: loss, resume, early stop, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapter_helpers import SYSTEM, pairs

from adapters.training.config import TrainConfig
from adapters.training.dataset import make_snapshot
from adapters.training.train import train_adapter
from memory.records import Accepted

FAST = dict(num_layers=2, learning_rate=1e-2, batch_size=4, steps_per_eval=4, steps_per_save=3,
            patience=0, min_delta=0.0)


def run_dir(tmp_path: Path, n: int = 12, name: str = "run") -> Path:
    rows = [Accepted(f"m{i}", [SYSTEM, {"role": "user", "content": q}], a, "t")
            for i, (q, a) in enumerate(pairs(n))]
    return make_snapshot(rows, 0.25, 3).write(tmp_path / name)


def load_tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    from mlx_lm import load

    return load(str(tiny_model_dir))


def test_answer_loss_equals_mlx_lm_default_loss(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    import mlx.core as mx
    from mlx_lm.tuner.trainer import default_loss, iterate_batches

    from adapters.training.batching import make_answer_loss, with_window
    from adapters.training.train import load_datasets

    model, tok = tiny
    train, _ = load_datasets(run_dir(tmp_path), tok)
    batch, lengths = next(iterate_batches(train, 4, 2048))
    ours = make_answer_loss(model)
    full, n_full = default_loss(model, batch, lengths)
    _, _, idx, mask = with_window(batch, lengths)
    assert idx.shape[1] < batch.shape[1] - 1  # prompt positions are not projected
    gathered, n_gathered = ours(model, batch, lengths, idx, mask)
    assert int(n_full.item()) == int(n_gathered.item()) == int(mask.sum().item()) > 0
    assert float(gathered.item()) == pytest.approx(float(full.item()), rel=1e-5)
    assert float(ours(model, batch, lengths)[0].item()) == pytest.approx(float(full.item()), rel=1e-6)
    mx.eval(gathered)


def test_training_lowers_validation_loss_and_writes_a_loadable_adapter(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.tuner.utils import load_adapters

    from adapters.training.evaluate import answer_nll

    model, tok = load_tiny(tiny_model_dir)
    folder = run_dir(tmp_path)
    events: list[dict[str, Any]] = []
    result = train_adapter(model, tok, folder, TrainConfig(iters=8, **FAST), progress=events.append)
    vals = [e["val_loss"] for e in events if e["event"] == "val"]
    assert result.best_val_loss is not None and result.best_val_loss < vals[0] - 0.1
    assert {"start", "train", "val", "best", "checkpoint", "done"} <= {e["event"] for e in events}
    logged = [json.loads(x) for x in (folder / "train.log").read_text().splitlines()]
    assert [e["event"] for e in logged] == [e["event"] for e in events]
    # mlx-lm reads the folder both ways, and the weights are the best ones
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert config["fine_tune_type"] == "lora" and config["num_layers"] == 2
    loaded, _ = load(str(tiny_model_dir), adapter_path=str(result.adapter_dir))
    base, _ = load_tiny(tiny_model_dir)
    load_adapters(base, str(result.adapter_dir))
    x = mx.array([[1, 2, 3, 4]])
    assert mx.allclose(loaded(x), base(x), atol=1e-5).item()
    # the shared evaluator measures what training's validation measured
    valid = [json.loads(x)["messages"] for x in (folder / "valid.jsonl").read_text().splitlines()]
    assert answer_nll(loaded, tok, valid).mean == pytest.approx(result.best_val_loss, rel=1e-4)


class Killed(Exception):
    pass


@pytest.mark.parametrize("schedule", [{}, {"lr_schedule": "cosine_decay", "warmup_steps": 2}])
def test_a_killed_run_resumes_from_its_checkpoint(
    tiny_model_dir: Path, tmp_path: Path, schedule: dict[str, Any]
) -> None:
    import mlx.core as mx

    config = TrainConfig(iters=8, **FAST, **schedule)
    whole = run_dir(tmp_path, name="whole")
    model, tok = load_tiny(tiny_model_dir)
    reference = train_adapter(model, tok, whole, config)

    def die_at_6(event: dict[str, Any]) -> None:
        if event["event"] == "checkpoint" and event["step"] == 6:
            raise Killed

    broken = run_dir(tmp_path, name="broken")
    model, tok = load_tiny(tiny_model_dir)
    with pytest.raises(Killed):
        train_adapter(model, tok, broken, config, progress=die_at_6)
    assert json.loads((broken / "checkpoint" / "state.json").read_text())["step"] == 6
    model, tok = load_tiny(tiny_model_dir)
    events: list[dict[str, Any]] = []
    resumed = train_adapter(model, tok, broken, config, progress=events.append)
    assert events[0]["resumed"] is True and events[0]["step"] == 6
    assert resumed.resumed_from == 6 and resumed.steps == 8
    assert sum(e["event"] == "train" for e in events) == 2  # only the missing steps
    assert not (broken / "checkpoint").exists()
    a, b = mx.load(str(reference.last_weights)), mx.load(str(resumed.last_weights))
    assert a.keys() == b.keys()
    assert all(mx.allclose(a[k], b[k], atol=1e-5).item() for k in a)  # the schedule went on
    if schedule:  # ...and was used: a constant rate ends elsewhere
        model, tok = load_tiny(tiny_model_dir)
        flat = train_adapter(model, tok, run_dir(tmp_path, name="flat"), TrainConfig(iters=8, **FAST))
        c = mx.load(str(flat.last_weights))
        assert not all(mx.allclose(a[k], c[k], atol=1e-5).item() for k in a)


def test_a_changed_config_does_not_resume_a_foreign_checkpoint(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = run_dir(tmp_path)

    def die(event: dict[str, Any]) -> None:
        if event["event"] == "checkpoint":
            raise Killed

    model, tok = load_tiny(tiny_model_dir)
    with pytest.raises(Killed):
        train_adapter(model, tok, folder, TrainConfig(iters=4, **FAST), progress=die)
    model, tok = load_tiny(tiny_model_dir)
    other = TrainConfig(iters=4, **{**FAST, "learning_rate": 5e-3})
    events: list[dict[str, Any]] = []
    train_adapter(model, tok, folder, other, progress=events.append)
    assert events[0]["resumed"] is False


def test_early_stopping_keeps_the_best_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tok = load_tiny(tiny_model_dir)
    folder = run_dir(tmp_path)
    # an improvement threshold nothing can meet: every evaluation after the first is "worse"
    config = TrainConfig(iters=40, **{**FAST, "steps_per_eval": 2, "patience": 2, "min_delta": 1e9})
    result = train_adapter(model, tok, folder, config)
    assert result.stopped_early and result.steps < 10
    assert result.best_step == 0
    stops = [e for e in result.history if e["event"] == "stop"]
    assert stops and "no validation improvement" in stops[0]["reason"]
