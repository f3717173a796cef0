"""Benchmark Hearth's adapter training against the `mlx_lm.lora` command, side by side.

Same model, data, rank, scale, layers, batch, iterations, learning rate, seed, sequence cap,
BLAS library and thread count; both as subprocesses, both observed through mlx-lm's own
TrainingCallback numbers (answer tokens per second of training time, validation excluded).
Both final adapters are then scored by the shared evaluator on the same held-out answers,
and adapter hot-swap time is measured in a loaded `agent.llm.runtime.Runtime`.

    python scripts/bench_adapters.py [--model PATH] [--iters 20] [--threads 1]

Prints `name: value` lines. Goals (issue 4): train_tps_ratio >= 1.0, valid losses within 2%,
swap_ms <= 500.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.foundation import blas  # noqa: E402

DATA = ROOT / "tests" / "adapters" / "data" / "persona.jsonl"

# Runs a module as `python -m` would, with the optimised BLAS and thread count set first, records
# mlx-lm's TrainingCallback reports (for mlx_lm.lora) and the peak RSS into a JSON file.
HARNESS = r"""
import json, resource, runpy, sys
out, threads, module, *argv = sys.argv[1:]
from agent.foundation import blas; blas.ensure()
from adapters.jobs.priority import blas_threads; blas_threads(int(threads))
events = []
if module == "mlx_lm":  # `python -m mlx_lm lora ...`, observed through its callback hook
    import mlx_lm.lora as lora
    from mlx_lm.tuner.callbacks import TrainingCallback
    class Record(TrainingCallback):
        def on_train_loss_report(self, info): events.append({"event": "train", **info})
        def on_val_loss_report(self, info): events.append({"event": "val", **info})
    lora.get_reporting_callbacks = lambda *a, **k: Record()
sys.argv = [module, *argv]
try:
    runpy.run_module(module, run_name="__main__")
except SystemExit:
    pass
finally:
    with open(out, "w") as fh:
        json.dump({"events": events, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, fh)
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="mlx-lm model folder (default: the bundled SmolLM2, converted)")
    p.add_argument("--data", type=Path, default=DATA, help="prompt/completion jsonl")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--scale", type=float, default=20.0)
    p.add_argument("--num-layers", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads for both trainers")
    p.add_argument("--repeats", type=int, default=1, help="train each this many times, alternating")
    p.add_argument("--keep", type=Path, help="keep the work folder here")
    return p.parse_args()


def write_data(args: argparse.Namespace, folder: Path) -> tuple[int, int]:
    """train.jsonl / valid.jsonl as Hearth serves them: its system prompt + the question."""
    from adapters.training.dataset import Example, Snapshot, example_hash, snapshot_id, split
    from agent.llm.prompt import assemble, training_messages
    from memory.migrations import DEFAULT_SYSTEM_PROMPT

    examples = []
    for line in args.data.read_text().splitlines():
        rec = json.loads(line)
        messages = training_messages(assemble(DEFAULT_SYSTEM_PROMPT, rec["prompt"]).messages,
                                     rec["completion"])
        examples.append(Example(messages, example_hash(messages)))
    train, valid = split(examples, 0.2, 4)
    Snapshot(snapshot_id(e.hash for e in examples), train, valid).write(folder)
    return len(train), len(valid)


def run_harness(work: Path, name: str, threads: int, module: str, argv: list[str]) -> dict:
    out = work / f"{name}.json"
    cmd = [sys.executable, "-c", HARNESS, str(out), str(threads), module, *argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0 or not out.exists():
        sys.exit(f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["stdout"], result["wall_s"] = proc.stdout, time.perf_counter() - start
    return result


def mlx_tps(events: list[dict], steps_per_report: int) -> float:
    """Overall tokens/s from mlx-lm's reports: tokens over summed training-window time."""
    reports = [e for e in events if e["event"] == "train"]
    seconds = sum(steps_per_report / e["iterations_per_second"] for e in reports)
    return reports[-1]["trained_tokens"] / seconds


def train_hearth(args: argparse.Namespace, model: Path, work: Path, tag: str) -> dict:
    data = work / f"hearth-{tag}"
    shutil.copytree(work / "data", data)
    config = dict(num_layers=args.num_layers, batch_size=args.batch_size, iters=args.iters,
                  learning_rate=args.learning_rate, max_seq_length=1024, seed=0, rank=args.rank,
                  scale=args.scale, dropout=0.0, steps_per_eval=args.iters + 1,
                  steps_per_save=args.iters + 1, patience=0)
    run = run_harness(work, f"hearth-{tag}", args.threads, "adapters.jobs.worker",
                      ["train", str(data), "--model", str(model), "--no-nice",
                       "--blas-threads", str(args.threads), "--config", json.dumps(config)])
    done = [json.loads(x) for x in run["stdout"].splitlines() if x.startswith("{")][-1]
    run["tps"] = done["tokens_per_second"]
    last = work / f"hearth-{tag}-last"  # the weights after the last step, like mlx_lm's
    last.mkdir()
    shutil.copy(data / "best" / "adapter_config.json", last)
    shutil.copy(data / "last.safetensors", last / "adapters.safetensors")
    run["adapter"] = last
    return run


def train_mlx_lm(args: argparse.Namespace, model: Path, work: Path, tag: str) -> dict:
    out = work / f"mlx-lm-{tag}"
    config = {"model": str(model), "train": True, "data": str(work / "data"),
              "fine_tune_type": "lora", "optimizer": "adam", "mask_prompt": True, "seed": 0,
              "num_layers": args.num_layers, "batch_size": args.batch_size, "iters": args.iters,
              "learning_rate": args.learning_rate, "max_seq_length": 1024, "val_batches": -1,
              "steps_per_report": 1, "steps_per_eval": args.iters + 1,
              "save_every": args.iters + 1, "adapter_path": str(out),
              "lora_parameters": {"rank": args.rank, "scale": args.scale, "dropout": 0.0}}
    (work / f"mlx-{tag}.yaml").write_text(json.dumps(config))  # JSON is valid YAML
    run = run_harness(work, f"mlx_lm-{tag}", args.threads, "mlx_lm",
                      ["lora", "-c", str(work / f"mlx-{tag}.yaml")])
    run["tps"] = mlx_tps(run["events"], 1)
    run["adapter"] = out
    return run


def train_both(args: argparse.Namespace, model: Path, work: Path) -> dict[str, list[dict]]:
    """Alternate the order (H M, M H, ...) so a change in machine load hits both alike."""
    runs: dict[str, list[dict]] = {"hearth": [], "mlx_lm": []}
    for i in range(args.repeats):
        order = ["hearth", "mlx_lm"] if i % 2 == 0 else ["mlx_lm", "hearth"]
        for name in order:
            trainer = train_hearth if name == "hearth" else train_mlx_lm
            runs[name].append(trainer(args, model, work, str(i)))
    return runs


def evaluate_and_swap(model: Path, work: Path, runs: dict[str, list[dict]]) -> dict[str, float]:
    import resource

    from adapters.training.evaluate import answer_nll
    from agent.llm import models
    from agent.llm.runtime import Runtime

    valid = [json.loads(x)["messages"] for x in (work / "data" / "valid.jsonl").read_text().splitlines()]
    rt = Runtime.load(models.resolve(str(model)))
    out: dict[str, float] = {}
    for name, trained in runs.items():
        rt.set_adapter(trained[0]["adapter"])
        out[f"valid_loss_{name}"] = answer_nll(rt.model, rt.tokenizer, valid).mean
    swaps = []
    for i in range(6):
        target = runs["hearth" if i % 2 else "mlx_lm"][0]["adapter"]
        swaps.append(rt.set_adapter(target) * 1000)
    out["swap_ms"] = statistics.median(swaps)
    out["peak_rss_mb_bench"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> int:
    args = parse_args()
    blas.ensure()
    from adapters.jobs.priority import blas_threads

    blas_threads(args.threads)
    from agent.llm import models

    model = Path(args.model) if args.model else models.resolve(None).path
    work = Path(tempfile.mkdtemp(prefix="bench-adapters-"))
    try:
        n_train, n_valid = write_data(args, work / "data")
        runs = train_both(args, model, work)
        scores = evaluate_and_swap(model, work, runs)
        h_tps = statistics.mean(r["tps"] for r in runs["hearth"])
        m_tps = statistics.mean(r["tps"] for r in runs["mlx_lm"])
        rss = {k: max(r["peak_rss_kb"] for r in v) / 1024 for k, v in runs.items()}
        wall = {k: statistics.mean(r["wall_s"] for r in v) for k, v in runs.items()}
        lines = {
            "model": model.name,
            "blas": f"{blas.sgemm_library()} x{args.threads} thread(s)",
            "examples_train": n_train, "examples_valid": n_valid,
            "iters": args.iters, "batch_size": args.batch_size, "rank": args.rank,
            "num_layers": args.num_layers, "learning_rate": args.learning_rate,
            "repeats": args.repeats,
            "train_tps_hearth_runs": " ".join(f"{r['tps']:.2f}" for r in runs["hearth"]),
            "train_tps_mlx_lm_runs": " ".join(f"{r['tps']:.2f}" for r in runs["mlx_lm"]),
            "train_tps_hearth": f"{h_tps:.2f}", "train_tps_mlx_lm": f"{m_tps:.2f}",
            "train_tps_ratio": f"{h_tps / m_tps:.3f}",
            "valid_loss_hearth": f"{scores['valid_loss_hearth']:.4f}",
            "valid_loss_mlx_lm": f"{scores['valid_loss_mlx_lm']:.4f}",
            "valid_loss_diff_pct": f"{100 * (scores['valid_loss_hearth'] / scores['valid_loss_mlx_lm'] - 1):+.2f}",
            "wall_s_hearth": f"{wall['hearth']:.1f}", "wall_s_mlx_lm": f"{wall['mlx_lm']:.1f}",
            "swap_ms": f"{scores['swap_ms']:.1f}",
            "peak_rss_mb_hearth": f"{rss['hearth']:.0f}",
            "peak_rss_mb_mlx_lm": f"{rss['mlx_lm']:.0f}",
            "peak_rss_mb": f"{max(rss.values()):.0f}",
            "peak_rss_mb_bench_runtime": f"{scores['peak_rss_mb_bench']:.0f}",
        }
        for key, value in lines.items():
            print(f"{key}: {value}")
    finally:
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
