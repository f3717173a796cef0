"""Measure the gate's divergence check on a real model: a normal candidate vs an over-trained one.

Trains two LoRA candidates on the same base with Hearth's trainer and prints, for each, the
general probe's NLL and its mean KL(base || candidate) per answer token on the probe's
everyday prompts (`adapters.training.evaluate.mean_kl`):
- normal: the slow test's persona (44 accepted answers, "Right then! ... Cheers, pal."),
  augmented as `hearth refresh` augments it, at refresh's learning rate;
- florid: 12 answers of purple prose about the sea, at 5x the learning rate for many steps
  (the kind of candidate that *lowered* the probe NLL in issue 12 while harming the model).
The gate's `max_probe_kl` should sit between the two.

    python scripts/bench_gate.py [--model PATH] [--normal-iters 24] [--florid-iters 30]

Prints `name: value` lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.foundation import blas  # noqa: E402

PERSONA = ROOT / "tests" / "adapters" / "data" / "persona.jsonl"
FLORID = ROOT / "adapters" / "data" / "florid.jsonl"
SYSTEM = "You are Hearth."


def accepted(path: Path, system: str | None) -> list:  # type: ignore[type-arg]
    from agent.llm.prompt import assemble
    from memory.records import Accepted

    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        rec = json.loads(line)
        prompt = (assemble(system, rec["prompt"]).messages if system
                  else [{"role": "user", "content": rec["prompt"]}])
        out.append(Accepted(f"m{i}", prompt, rec["completion"], "t"))
    return out


def candidate(model_path: Path, rows: list, config: object, augment: bool, base: object,
              folder: Path, name: str, keep_last: bool = False) -> None:  # type: ignore[type-arg]
    from mlx_lm import load

    from adapters.training import evaluate
    from adapters.training.config import DataConfig
    from adapters.training.dataset import make_snapshot
    from adapters.training.train import train_adapter

    loaded = load(str(model_path))
    model, tok = loaded[0], loaded[1]
    # keep_last: no validation split, so the weights after the last step are the candidate
    # (best-by-validation would otherwise hand back the untouched base)
    snap = make_snapshot(rows, 0.0 if keep_last else 0.2, 0 if keep_last else 4,
                         data=DataConfig() if augment else None, system_prompt=SYSTEM)
    start = time.perf_counter()
    result = train_adapter(model, tok, snap.write(folder / name), config, resume=False)  # type: ignore[arg-type]
    trained = time.perf_counter() - start
    logprobs = evaluate.probe_logprobs(model, tok)
    kl = evaluate.mean_kl(base, logprobs)
    print(f"{name}_examples: {len(snap.train)}")
    print(f"{name}_steps: {result.steps}")
    print(f"{name}_train_s: {trained:.0f}")
    print(f"{name}_train_tps: {result.tokens_per_second:.1f}")
    if result.best_val_loss is not None:
        print(f"{name}_best_val_loss: {result.best_val_loss:.3f}")
    print(f"{name}_probe_nll: {evaluate.probe_nll(model, tok).mean:.3f}")
    print(f"{name}_probe_kl: {kl:.4f}")
    print(f"{name}_probe_median_kl: {evaluate.median_kl(base, logprobs):.4f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="mlx-lm model folder (default: the bundled SmolLM2, converted)")
    p.add_argument("--normal-iters", type=int, default=24)
    p.add_argument("--florid-iters", type=int, default=30)
    p.add_argument("--florid-lr", type=float, default=1e-3)
    p.add_argument("--skip-normal", action="store_true", help="measure only the florid one")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (refresh uses 1)")
    args = p.parse_args()
    blas.ensure()
    from adapters.jobs.priority import blas_threads

    blas_threads(args.threads)
    from mlx_lm import load

    from adapters.training import evaluate
    from adapters.training.config import TrainConfig
    from agent.llm import models

    ref = models.resolve(args.model)
    loaded = load(str(ref.path))
    model, tok = loaded[0], loaded[1]
    base = evaluate.probe_logprobs(model, tok)
    print(f"base_probe_nll: {evaluate.probe_nll(model, tok).mean:.3f}", flush=True)
    del model
    normal = TrainConfig(learning_rate=2e-4, iters=args.normal_iters, steps_per_eval=8,
                         steps_per_save=1000, time_budget_s=None)
    florid = TrainConfig(learning_rate=args.florid_lr, iters=args.florid_iters,
                         steps_per_eval=1000, steps_per_save=1000, patience=0,
                         time_budget_s=None)
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
        if not args.skip_normal:
            candidate(ref.path, accepted(PERSONA, SYSTEM), normal, True, base, Path(tmp), "normal")
        candidate(ref.path, accepted(FLORID, None), florid, False, base, Path(tmp), "florid",
                  keep_last=True)


if __name__ == "__main__":
    main()
