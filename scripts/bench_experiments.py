"""Benchmark learning from use with a simulated user: A/B decisions, preference training, drift.

    python scripts/bench_experiments.py [--model tiny|bundled|PATH] [--trials 1000]

1. `decision_accuracy` / `false_promotion_rate`: the stopping rule (`adapters.training.ab_stats`) on
   synthetic Bernoulli arms with known rates, `--trials` repeated trials per scenario
   (known differences 0.25-0.30 either way; no difference at 0.2 / 0.5 / 0.8).
2. Real chat turns on a small model (`tiny`: a random 2-layer Llama with the SmolLM2
   tokenizer, built here; or the bundled SmolLM2, slow on CPU) in a throw-away HEARTH_HOME:
   - history: the simulated user (likes answers opening "Aye") corrected `--history` base
     answers into its style; `hearth refresh` trains and gates adapter v1 on them (a short
     budget: v1 answers in that style only some of the time);
   - it rates `--rate` answers served by v1 (accepts Aye answers, edits half of the others
     into Aye, rejects the rest);
   - a supervised refresh trains on all accepted answers (SFT); a preference refresh
     (DPO on the rejected / edited pairs, on top of the serving SFT adapter) trains, is gated
     and, if it passes, goes on an A/B trial against SFT through real chat turns;
   - `accept_rate_sft` and `accept_rate_preference`: the simulated user's acceptance of
     `--measure` fresh answers from each adapter, same questions and seeds, side by side;
   - `drift_detected_after`: after the trial, the user changes taste (now likes
     "Certainly"); rated answers until the drift monitor marks the serving adapter stale.
The embedder is the store's hashing one (no torch), the drift check the acceptance signal.
Prints `name: value` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.foundation import blas  # noqa: E402

blas.ensure()  # before anything imports MLX

import numpy as np  # noqa: E402

from adapters.eval.simulated_user import QUESTIONS, StyleRater, chat_and_rate  # noqa: E402
from adapters.jobs import refresh  # noqa: E402
from adapters.jobs.preference_refresh import preference_refresh  # noqa: E402
from adapters.training import ab_stats, drift, experiments  # noqa: E402
from adapters.training.ab_stats import Rule  # noqa: E402
from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig  # noqa: E402
from adapters.training.preference import PreferenceConfig  # noqa: E402
from agent.core.turn import Chat  # noqa: E402

KNOWN = [(0.5, 0.75, "promote"), (0.75, 0.5, "keep"), (0.3, 0.6, "promote"), (0.6, 0.85, "promote")]
NONE = [0.2, 0.5, 0.8]


def synthetic(trials: int, seed: int = 0) -> dict[str, float]:
    rng, rule = np.random.default_rng(seed), Rule()
    right = [simulated.action == want for a, b, want in KNOWN for simulated in
             (ab_stats.simulate(a, b, rule, rng) for _ in range(trials))]
    null = [ab_stats.simulate(p, p, rule, rng) for p in NONE for _ in range(trials)]
    return {"decision_accuracy": float(np.mean(right)),
            "false_promotion_rate": float(np.mean([d.action == "promote" for d in null])),
            "mean_rated_per_arm_known": float(np.mean(
                [ab_stats.simulate(a, b, rule, rng).look or 0 for a, b, _ in KNOWN
                 for _ in range(max(1, trials // 10))])),
            "mean_rated_per_arm_none": float(np.mean([d.look or 0 for d in null]))}


def tiny_model(folder: Path) -> Path:
    """A random 2-layer Llama (hidden 64) with the real SmolLM2 tokenizer."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    from agent.llm import convert
    from agent.llm.gguf_tokenizer import save_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    _, meta = mx.load(str(convert.bundled_gguf()), return_metadata=True)
    save_tokenizer(meta, folder)
    config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": 49152,
              "max_position_embeddings": 2048, "tie_word_embeddings": True}
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


class PinnedChat(Chat):
    """A real Chat whose answers always come from one adapter folder (for measuring)."""

    def __init__(self, *args: Any, adapter_dir: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adapter_dir = adapter_dir

    def sync_adapter(self, serving: Any = None) -> str | None:
        if self.runtime.adapter_path != self.adapter_dir:
            self.runtime.set_adapter(self.adapter_dir)
        return None


def measure(runtime: Any, store: Any, folder: Path, rater: StyleRater, n: int, options: Any,
            temperature: float) -> float:
    from dataclasses import replace

    liked = 0
    for i in range(n):
        chat = PinnedChat(runtime, store, adapter_dir=folder,
                          options=replace(options, seed=1000 + i, temperature=temperature))
        liked += rater.likes(chat.ask(QUESTIONS[i % len(QUESTIONS)]).text)
    return liked / n


def real_chat(args: argparse.Namespace) -> dict[str, Any]:
    from agent.llm import models
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.embed import HashEmbedder
    from memory.store import Store

    out: dict[str, Any] = {}
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-exp-"))
    os.environ["HEARTH_HOME"] = str(home)
    if args.model == "tiny":
        ref = ModelRef("tiny-bench", tiny_model(home / "tiny"), "tiny-bench")
        train = TrainConfig(num_layers=2, rank=8, learning_rate=args.sft_lr, iters=args.sft_iters,
                            batch_size=4, steps_per_eval=1000)
    else:
        ref = models.resolve(None if args.model == "bundled" else args.model)
        train = TrainConfig(num_layers=4, rank=8, learning_rate=2e-4, iters=args.sft_iters,
                            batch_size=2, steps_per_eval=1000)
    runtime = Runtime.load(ref)
    store = Store.open(embedder=HashEmbedder())
    store.set_setting("adapters.training.train", train.to_dict())
    policy = RefreshPolicy(min_accepted=12, min_new_accepted=1, skip_on_battery=False,
                           skip_if_active_minutes=0, min_valid=4)
    gate = GateConfig()
    options = SamplingOptions(temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    # history: the user corrected the base model's answers into their style
    rater = StyleRater(liked="Aye", edit_rate=0.5)
    chat = Chat(runtime, store, options=options)
    for i in range(args.history):
        chat.new_conversation()
        chat.ask(QUESTIONS[i % len(QUESTIONS)])
        chat.feedback("edited", edited_text=rater.rewrite())
    first = refresh.refresh(store, ref, policy, train, gate, force=True)
    out["v1"] = f"{first.status} ({first.version})"
    # the user rates what v1 serves: accepts its style, edits or rejects the rest
    rated = chat_and_rate(Chat(runtime, store, options=options), rater, args.rate, rng)
    out["accept_rate_v1_while_rating"] = sum(r.kind == "accepted" for _, r in rated) / len(rated)
    sft = refresh.refresh(store, ref, policy, train, gate, force=True)
    out["sft_refresh"] = f"{sft.status} ({sft.version})"
    sft_row = store.active_adapter()
    pref = preference_refresh(store, ref, PreferenceConfig(iters=args.dpo_iters, learning_rate=args.dpo_lr),
                              gate, policy, trial=True)
    out["preference_refresh"] = f"{pref.status} ({pref.version}): {pref.reason[:160]}"
    pref_row = store.get_adapter_version(pref.version) if pref.version else None
    if sft_row and pref_row and pref_row.get("path"):
        out["accept_rate_sft"] = measure(runtime, store, Path(sft_row["path"]), rater, args.measure, options,
                                         args.measure_temperature)
        out["accept_rate_preference"] = measure(runtime, store, Path(pref_row["path"]), rater,
                                                args.measure, options, args.measure_temperature)
    # the A/B trial through real chat turns
    running = store.running_experiment()
    if running is not None:
        trial_chat = Chat(runtime, store, options=options)
        turns = 0
        while store.running_experiment() is not None and turns < 600:
            chat_and_rate(trial_chat, rater, 1, rng)
            turns += 1
        s = experiments.summary(store, running["id"])
        c = s.decision.counts
        out["chat_ab_outcome"] = s.status
        out["chat_ab_counts"] = f"sft {c.acc_a}/{c.n_a} vs preference {c.acc_b}/{c.n_b}"
        out["chat_ab_turns"] = turns
    # drift: the user changes taste
    changed = rater.change_mind("Certainly")
    drift_chat = Chat(runtime, store, options=options)
    after = None
    for i in range(1, 201):
        chat_and_rate(drift_chat, changed, 1, rng)
        if drift.check(store).stale:
            after = i
            break
    out["drift_detected_after"] = after if after is not None else "not within 200"
    out["stale_reason"] = drift.stale_reason(store)
    out["real_chat_seconds"] = round(time.perf_counter() - t0, 1)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny | bundled | an mlx-lm folder")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--history", type=int, default=16, help="corrected answers before v1")
    parser.add_argument("--rate", type=int, default=48, help="answers the user rates before training")
    parser.add_argument("--measure", type=int, default=60, help="fresh answers per adapter measured")
    parser.add_argument("--sft-iters", type=int, default=20)
    parser.add_argument("--sft-lr", type=float, default=1e-3, help="(tiny model)")
    parser.add_argument("--dpo-iters", type=int, default=20)
    parser.add_argument("--dpo-lr", type=float, default=1e-3)
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--measure-temperature", type=float, default=0.3)
    parser.add_argument("--synthetic-only", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    results.update(synthetic(args.trials))
    if not args.synthetic_only:
        results.update(real_chat(args))
    results["load_after"] = os.getloadavg()[0]
    for name, value in results.items():
        print(f"{name}: {round(value, 4) if isinstance(value, float) else value}")


if __name__ == "__main__":
    main()
