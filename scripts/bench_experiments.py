"""Benchmark learning from use with a simulated user: A/B decisions, preference training, drift.

    python scripts/bench_experiments.py [--model two-style|bundled|PATH] [--trials 1000] [--matched]
    python scripts/bench_experiments.py --bundled-ab

1. `decision_accuracy` / `false_promotion_rate`: the stopping rule (`adapters.training.ab_stats`) on
   synthetic Bernoulli arms with known rates, `--trials` repeated trials per scenario
   (known differences 0.25-0.30 either way; no difference at 0.2 / 0.5 / 0.8).
2. Real chat turns (`agent.core.turn.Chat`, the product's refresh, gate, DPO step and A/B trial)
   in a throw-away HEARTH_HOME, on `two-style`: a tiny Llama pre-trained here
   (`adapters.eval.style_model`, cached in the temp folder) to open its answers with "Aye" in
   `--liked-share` of cases and with "Nay" otherwise. The simulated user accepts "Aye"
   answers and rejects the rest (`--edit-rate` rewrites instead), so the base model pleases it
   about 40% of the time and there is something to learn from:
   - the base model serves `--rate` rated answers to the 12 training questions;
   - a supervised refresh trains v1 on the accepted ones (SFT, `--sft-iters` steps);
   - a preference refresh trains v2 = DPO on (accepted ≻ rejected) pairs on top of v1
     (`--dpo-iters` steps), gated like any candidate, and puts it on trial against v1;
   - `accept_rate_base` / `accept_rate_sft` / `accept_rate_preference` (and with `--matched`
     `accept_rate_sft_matched`: SFT on v1's data for v1's + DPO's steps, is the gain only the
     extra steps?): the same rater on `--measure` fresh answers per arm to 12 held-out
     questions, the same seed for answer i in every arm, temperature 1 (the model's own
     distribution over the styles); `openers_*` count the first words;
   - the A/B trial of v2 against v1 runs through real chat turns to a decision;
   - `drift_detected_after`: `--steady` more rated answers with the same taste (no alarm
     expected: `stale_before_change`), then the user changes taste (now likes "Nay"); rated
     answers until the drift monitor marks the serving adapter stale.
   No notes are retrieved (the simulated user keeps none); the embedder is the store's
   hashing one (no torch). The gate's probe-KL bound is lifted for the two-style model (it has
   no general behaviour to protect); its NLL checks stay.
3. `--bundled-ab` (only this): a prompt A/B on the bundled SmolLM2 through real chat turns to
   the rule's decision; the candidate prompt asks for answers that begin "Sure", which the
   135M model ignores, so with the rater accepting "You ..." answers (`--bundled-liked`) it
   is a no-difference trial: the right outcome is keep (`bundled_ab_*`).
Prints `name: value` lines.
"""

from __future__ import annotations

import argparse
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

from adapters.eval import style_model  # noqa: E402
from adapters.eval.simulated_user import HELD_OUT, QUESTIONS, StyleRater, chat_and_rate  # noqa: E402
from adapters.jobs import refresh  # noqa: E402
from adapters.jobs.preference_refresh import preference_refresh  # noqa: E402
from adapters.training import ab_stats, drift, experiments  # noqa: E402
from adapters.training.ab_stats import Rule  # noqa: E402
from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig  # noqa: E402
from adapters.training.preference import PreferenceConfig  # noqa: E402
from agent.core.turn import Chat  # noqa: E402

KNOWN = [(0.5, 0.75, "promote"), (0.75, 0.5, "keep"), (0.3, 0.6, "promote"), (0.6, 0.85, "promote")]
NONE = [0.2, 0.5, 0.8]
LIKED, DISLIKED = "Aye", "Nay"


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


class PinnedChat(Chat):
    """A real Chat whose answers always come from one adapter folder (for measuring)."""

    def __init__(self, *args: Any, adapter_dir: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adapter_dir = adapter_dir

    def sync_adapter(self, serving: Any = None) -> str | None:
        if self.runtime.adapter_path != self.adapter_dir:
            self.runtime.set_adapter(self.adapter_dir)
        return None


def measure(runtime: Any, store: Any, folder: Path | None, rater: StyleRater, n: int,
            options: Any, settings: Any) -> tuple[float, str]:
    """The rater's acceptance of `n` fresh answers from `folder` (None: the base model) to the
    held-out questions; answer i is sampled with seed 1000 + i in every arm."""
    from collections import Counter
    from dataclasses import replace

    liked, openers = 0, Counter[str]()
    for i in range(n):
        chat = PinnedChat(runtime, store, adapter_dir=folder, settings=settings,
                          options=replace(options, seed=1000 + i))
        text = chat.ask(HELD_OUT[i % len(HELD_OUT)]).text
        liked += rater.likes(text)
        openers[(text.split() or [""])[0]] += 1
    return liked / n, " ".join(f"{w}×{c}" for w, c in openers.most_common(4))


def matched_sft(store: Any, ref: Any, policy: RefreshPolicy, train: TrainConfig, iters: int,
                folder: Path) -> Path:
    """The supervised adapter trained like v1 on v1's data but for `iters` steps (v1's plus
    the DPO step's): is a gain of the preference arm only its extra steps? Not registered."""
    from dataclasses import replace

    from adapters.jobs.refresh import _load, build_snapshot, data_config, resolve_base
    from adapters.training.train import train_adapter

    snapshot = build_snapshot(store, policy, data_config(store))
    snapshot.write(folder / "run")
    model, tokenizer = _load(resolve_base(ref))
    return train_adapter(model, tokenizer, folder / "run", replace(train, iters=iters)).adapter_dir


def real_chat(args: argparse.Namespace) -> dict[str, Any]:
    from agent.core.context import ChatSettings
    from agent.llm import models
    from agent.llm.models import ModelRef
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.embed import HashEmbedder
    from memory.store import Store

    out: dict[str, Any] = {}
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-exp-"))
    os.environ["HEARTH_HOME"] = str(home)
    store = Store.open(embedder=HashEmbedder())
    t0 = time.perf_counter()
    if args.model == "two-style":
        cache = Path(args.model_cache or Path(tempfile.gettempdir()) /
                     f"hearth-two-style-{args.pretrain_steps}-{args.liked_share}")
        folder = style_model.two_style_model(cache, store.active_system_prompt()[1],
                                             LIKED, DISLIKED, args.liked_share,
                                             steps=args.pretrain_steps)
        out["pretrain_seconds"] = round(time.perf_counter() - t0, 1)
        ref = ModelRef("two-style", folder, f"two-style-{args.pretrain_steps}-{args.liked_share}")
        train = TrainConfig(num_layers=2, rank=8, learning_rate=args.sft_lr, iters=args.sft_iters,
                            batch_size=4, steps_per_eval=1000)
    else:
        ref = models.resolve(None if args.model == "bundled" else args.model)
        train = TrainConfig(num_layers=4, rank=8, learning_rate=2e-4, iters=args.sft_iters,
                            batch_size=2, steps_per_eval=1000)
    runtime = Runtime.load(ref)
    store.set_setting("adapters.train", train.to_dict())
    policy = RefreshPolicy(min_accepted=12, min_new_accepted=1, skip_on_battery=False,
                           skip_if_active_minutes=0, min_valid=4)
    # the two-style model has no general behaviour to protect (its NLL on the probe's everyday
    # prompts is ~11.5 nats/token): the gate's KL bound, set for SmolLM2, is lifted; its NLL
    # checks hold for every candidate
    gate = GateConfig(max_probe_kl=float("inf")) if args.model == "two-style" else GateConfig()
    # temperature 1: answers follow the model's own distribution over the two styles; one seed
    # for the whole run (a per-answer seed would repeat the same draw every turn)
    import mlx.core as mx

    mx.random.seed(args.seed)
    options = SamplingOptions(temperature=1.0, top_p=1.0, max_tokens=args.max_tokens)
    settings = ChatSettings(retrieval_k=0)  # the simulated user keeps no notes
    rng = np.random.default_rng(args.seed)
    t1 = time.perf_counter()
    # the base model serves; the user accepts the liked style and rejects the other
    rater = StyleRater(liked=LIKED, edit_rate=args.edit_rate)
    rated = chat_and_rate(Chat(runtime, store, options=options, settings=settings), rater,
                          args.rate, rng)
    out["accept_rate_base_while_rating"] = sum(r.kind == "accepted" for _, r in rated) / len(rated)
    sft = refresh.refresh(store, ref, policy, train, gate, force=True)
    out["sft_refresh"] = f"{sft.status} ({sft.version}): {sft.reason[:200]}"
    sft_row = store.active_adapter()
    pref = preference_refresh(store, ref, PreferenceConfig(iters=args.dpo_iters, learning_rate=args.dpo_lr),
                              gate, policy, trial=True)
    out["preference_refresh"] = f"{pref.status} ({pref.version}): {pref.reason[:160]}"
    pref_row = store.get_adapter_version(pref.version) if pref.version else None
    if pref_row:
        p = (pref_row.get("metrics") or {}).get("preference") or {}
        out["dpo_pairs_loss"] = f"{p.get('pairs')} pairs, loss {p.get('first_loss')} -> {p.get('last_loss')}"
    arms: dict[str, Path | None] = {"base": None}
    if sft_row:
        arms["sft"] = Path(sft_row["path"])
        if args.matched:
            arms["sft_matched"] = matched_sft(store, ref, policy, train,
                                              args.sft_iters + args.dpo_iters, home / "matched")
    if pref_row and pref_row.get("path"):
        arms["preference"] = Path(pref_row["path"])
    for name, folder_ in arms.items():  # side by side: same held-out questions and seeds
        out[f"accept_rate_{name}"], out[f"openers_{name}"] = measure(
            runtime, store, folder_, rater, args.measure, options, settings)
    out["measured_on"] = f"{args.measure} answers per arm to {len(HELD_OUT)} held-out questions, T 1.0"
    # the A/B trial of the preference candidate against SFT, through real chat turns
    running = store.running_experiment()
    if running is not None:
        trial_chat = Chat(runtime, store, options=options, settings=settings)
        turns = 0
        while store.running_experiment() is not None and turns < 600:
            chat_and_rate(trial_chat, rater, 1, rng)
            turns += 1
        s = experiments.summary(store, running["id"])
        c = s.decision.counts
        out["chat_ab_outcome"] = s.status
        out["chat_ab_counts"] = f"sft {c.acc_a}/{c.n_a} vs preference {c.acc_b}/{c.n_b}"
        out["chat_ab_turns"] = turns
    # drift: the user changes taste to the other style
    drift_chat = Chat(runtime, store, options=options, settings=settings)
    out["serving_before_change"] = (store.active_adapter() or {}).get("id")
    steady = chat_and_rate(drift_chat, rater, args.steady, rng)  # same taste: no false alarm
    out["stale_before_change"] = drift.check(store).stale
    out["accept_rate_before_change"] = sum(r.kind == "accepted" for _, r in steady) / max(1, len(steady))
    changed = rater.change_mind(DISLIKED)
    after = None
    for i in range(1, 201):
        chat_and_rate(drift_chat, changed, 1, rng)
        if drift.check(store).stale:
            after = i
            break
    out["drift_detected_after"] = after if after is not None else "not within 200"
    out["stale_reason"] = drift.stale_reason(store)
    out["real_chat_seconds"] = round(time.perf_counter() - t1, 1)
    store.close()
    return out


SURE_PROMPT = ("You are Hearth, a helpful assistant. Give short, clear answers. "
               'Begin every answer with the word "Sure".')


def bundled_ab(args: argparse.Namespace) -> dict[str, Any]:
    """A prompt A/B on the bundled SmolLM2 through real chat turns, to a decision: the
    candidate system prompt asks for answers that begin "Sure"; the simulated user accepts
    answers opening with `--bundled-liked`; the product's sampling (T 0.2, top-p 0.9), 4
    tokens per answer (the first word decides). SmolLM2-135M ignores the instruction (its
    answers open as the primer's do, "You ..." about a third of the time, under either
    prompt), so this is a no-difference trial on the real model: the right outcome is keep."""
    from agent.core.context import ChatSettings
    from agent.llm import models
    from agent.llm.runtime import Runtime, SamplingOptions
    from memory.embed import HashEmbedder
    from memory.store import Store

    os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-bench-ab-")
    store = Store.open(embedder=HashEmbedder())
    t0 = time.perf_counter()
    runtime = Runtime.load(models.resolve(None))
    out: dict[str, Any] = {"bundled_load_seconds": round(time.perf_counter() - t0, 1)}
    eid = experiments.start_prompt_trial(store, SURE_PROMPT, note="bench: bundled A/B")
    chat = Chat(runtime, store, options=SamplingOptions(max_tokens=4),
                settings=ChatSettings(retrieval_k=0))
    rng, turns, t1 = np.random.default_rng(args.seed), 0, time.perf_counter()
    rater, questions = StyleRater(liked=args.bundled_liked, edit_rate=0.0), QUESTIONS + HELD_OUT
    while store.running_experiment() is not None and turns < args.bundled_ab_turns:
        chat_and_rate(chat, rater, 1, rng, questions=(questions[turns % len(questions)],))
        turns += 1
    s = experiments.summary(store, eid)
    c = s.decision.counts
    out["bundled_ab_outcome"] = s.status
    out["bundled_ab_counts"] = f"default prompt {c.acc_a}/{c.n_a} vs 'Sure' prompt {c.acc_b}/{c.n_b}"
    out["bundled_ab_reason"] = s.decision.reason
    out["bundled_ab_turns"] = turns
    out["bundled_ab_seconds"] = round(time.perf_counter() - t1, 1)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="two-style", help="two-style | bundled | an mlx-lm folder")
    parser.add_argument("--model-cache", help="folder of the pre-trained two-style model (reused)")
    parser.add_argument("--pretrain-steps", type=int, default=100)
    parser.add_argument("--liked-share", type=float, default=0.4,
                        help="share of the two-style model's answers in the liked style")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=48, help="answers the user rates before training")
    parser.add_argument("--edit-rate", type=float, default=0.0,
                        help="share of disliked answers the user rewrites instead of rejecting")
    parser.add_argument("--measure", type=int, default=96, help="fresh answers per arm measured")
    parser.add_argument("--sft-iters", type=int, default=20)
    parser.add_argument("--sft-lr", type=float, default=2e-5,
                        help="(two-style model) a short budget: SFT alone does not reach the ceiling")
    parser.add_argument("--dpo-iters", type=int, default=20)
    parser.add_argument("--dpo-lr", type=float, default=5e-5,
                        help="2.5x the SFT rate, as Hearth's defaults (DPO 5e-4, SFT 2e-4)")
    parser.add_argument("--matched", action="store_true",
                        help="also measure SFT trained for the SFT + DPO steps")
    parser.add_argument("--steady", type=int, default=20, help="rated answers before the taste changes")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic-only", action="store_true")
    parser.add_argument("--bundled-ab", action="store_true",
                        help="only: a prompt A/B on the bundled SmolLM2 to a decision")
    parser.add_argument("--bundled-ab-turns", type=int, default=500)
    parser.add_argument("--bundled-liked", default="You", help="the opener the rater accepts")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    if args.bundled_ab:
        results.update(bundled_ab(args))
    else:
        results.update(synthetic(args.trials))
        if not args.synthetic_only:
            results.update(real_chat(args))
    results["load_after"] = os.getloadavg()[0]
    for name, value in results.items():
        print(f"{name}: {round(value, 4) if isinstance(value, float) else value}")


if __name__ == "__main__":
    main()
