"""Time a real refresh of N accepted answers end to end (the issue-12 goal: 120 in <= 20 min).

Builds a temporary HEARTH_HOME, imports N of the demo persona's pairs (`adapters/data/
persona.jsonl`) as accepted answers, each with the prompt the chat serves a question that
retrieval found nothing for (system prompt + primer + question), and runs `hearth refresh`'s
code path: `adapters.jobs.refresh.refresh` with the store's settings, at the low priority and
BLAS threads `hearth refresh` sets (`adapters.jobs.priority.set_low_priority`). Nothing outside
the temporary folder is touched.

    python scripts/bench_refresh.py [--answers 120] [--model PATH] [--force]

Prints `name: value` lines: the refresh's status, the examples and steps it trained, the
time of each part (snapshot, training, judging, total) and the load average seen during it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERSONA = ROOT / "adapters" / "data" / "persona.jsonl"


def write_answers(path: Path, n: int, system: str) -> int:
    """The first `n` demo pairs as chat records served without retrieval; how many."""
    from agent.llm.prompt import assemble

    rows = [json.loads(x) for x in PERSONA.read_text().splitlines() if x.strip()][:n]
    with path.open("w", encoding="utf-8") as fh:
        for rec in rows:
            messages = [*assemble(system, rec["prompt"]).messages,
                        {"role": "assistant", "content": rec["completion"]}]
            fh.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return len(rows)


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every `every` seconds."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.done = every, [os.getloadavg()[0]], threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append(os.getloadavg()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=120)
    parser.add_argument("--model", help="mlx-lm model folder (default: the bundled model)")
    parser.add_argument("--force", action="store_true", help="as `hearth refresh --force`")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="hearth-bench-refresh-"))
    os.environ["HEARTH_HOME"] = str(home)
    from adapters.jobs import refresh
    from adapters.jobs.priority import set_low_priority
    from memory.store import Store

    events: list[tuple[float, dict[str, Any]]] = []
    sampler = LoadSampler()
    start = time.perf_counter()
    store = Store.open(home / "hearth.db")
    try:
        _, system = store.active_system_prompt()
        source = home / "answers.jsonl"
        n = write_answers(source, args.answers, system)
        report = store.import_training_jsonl(source)
        if report.errors:
            raise SystemExit(f"import failed: {report.errors[:3]}")
        print(f"refresh_answers: {n}", flush=True)
        set_low_priority()  # what `hearth refresh` does before refreshing
        config, gate_config, policy = refresh.settings(store)
        sampler.start()
        began = time.perf_counter()
        result = refresh.refresh(store, args.model, policy, config, gate_config,
                                 progress=lambda e: events.append((time.perf_counter(), e)),
                                 force=args.force)
        ended = time.perf_counter()
    finally:
        store.close()
        sampler.done.set()

    def first(name: str) -> float | None:
        return next((t for t, e in events if e.get("event") == name), None)

    t_train, t_eval, t_verdict = first("training"), first("evaluate"), first("verdict")
    done = next((e for _, e in events if e.get("event") == "done"), {})
    plan = next((e.get("line") for _, e in events if e.get("event") == "plan"), None)
    start_ev = next((e for _, e in events if e.get("event") == "start"), {})
    counts = result.counts
    print(f"refresh_status: {result.status}")
    print(f"refresh_reason: {result.reason}")
    if plan:
        print(f"refresh_plan: {plan}")
    print(f"refresh_examples: {counts.get('examples_train', 0)}")
    print(f"refresh_held_out: {counts.get('examples_valid', 0)}")
    print(f"refresh_quiz: {counts.get('examples_quiz', 0)}")
    steps = int(done.get("step", 0))
    print(f"refresh_steps: {steps}")
    print(f"refresh_planned_steps: {done.get('total', start_ev.get('total', 0))}")
    n_train = int(start_ev.get("n_train") or counts.get("examples_train") or 0)
    if n_train:
        print(f"refresh_epochs: {steps * config.batch_size / n_train:.2f}")
    print(f"refresh_stopped_early: {done.get('stopped_early')}")
    print(f"refresh_train_tps: {done.get('tokens_per_second')}")
    print(f"refresh_import_s: {began - start:.1f}")
    if t_train is not None:
        print(f"refresh_snapshot_s: {t_train - began:.1f}")
    if t_train is not None and t_eval is not None:
        print(f"refresh_train_s: {t_eval - t_train:.1f}")
    if t_eval is not None and t_verdict is not None:
        print(f"refresh_judge_s: {t_verdict - t_eval:.1f}")
    print(f"refresh_total_s: {ended - began:.1f}")
    verdict = result.verdict
    if verdict is not None:
        for key, value in verdict.to_dict().items():
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, float):
                        print(f"refresh_{key}_{k}: {v:.4f}")
    s = sampler.samples
    print(f"refresh_load_avg: min {min(s):.2f} mean {sum(s) / len(s):.2f} max {max(s):.2f} "
          f"({len(s)} samples)")
    print(f"refresh_home: {home}")


if __name__ == "__main__":
    main()
