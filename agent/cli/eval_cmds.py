"""`hearth eval`: base vs retrieval vs adapter vs both, on your accepted answers or a file.

A thin shell over `adapters.eval`: choose the data, load the model, run the experiment in a
temporary directory under Hearth's cache (deleted afterwards; one left by a killed run, whose
process is gone, is deleted at the next start: it holds copies of your answers), print the Markdown table (or `--json`), and with
`--out DIR` keep results.json and chart.png. Progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from adapters.eval import data
from adapters.training.errors import AdapterError
from agent.cli.options import add_model_options, progress_bar
from agent.foundation import paths
from agent.foundation.proc import pid_alive
from agent.llm import models

MIN_ACCEPTED = 8
STAGES = {
    "memory": "embedding the training part",
    "retrieval": "retrieving for held-out questions",
    "base": "measuring base",
    "rag": "measuring base + retrieval",
    "training": "training the adapter",
    "adapter": "measuring adapter",
    "both": "measuring adapter + retrieval",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval", help="does personalisation work? base vs retrieval vs adapter vs both",
        description="Split your accepted answers (or a JSONL file) by hash, store the training "
        "part as memory, train an adapter on it with the refresh trainer, and score four "
        "conditions on the held-out part: base, rag, adapter, both.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--demo", action="store_true",
                        help="use the demo persona shipped with Hearth (177 pairs)")
    source.add_argument("--data", type=Path, metavar="FILE.jsonl",
                        help='mlx-lm JSONL: {"messages"}, {"prompt","completion"} or {"text"}')
    p.add_argument("--valid", type=Path, metavar="FILE.jsonl",
                   help="score these pairs instead of a held-out share of the data")
    p.add_argument("--limit", type=int, metavar="N", help="score only N held-out pairs (a stable slice)")
    p.add_argument("--iters", type=int, metavar="N", help="adapter training steps (default: from --epochs)")
    p.add_argument("--epochs", type=float, metavar="X", help="passes over the training part (default 3, cut by --budget)")
    p.add_argument("--max-tokens", type=int, metavar="N", help="greedy answer length limit (default 32)")
    p.add_argument("--gen-batch", type=int, metavar="N", help="answers decoded together (default 20)")
    p.add_argument("--no-probe", action="store_true", help="skip the general probe")
    p.add_argument("--quiz", type=Path, metavar="FILE.jsonl",
                   help='fact quiz: {"question", "facts": [...]} lines (--demo: the demo\'s own)')
    p.add_argument("--no-quiz", action="store_true", help="skip the fact quiz")
    p.add_argument("--phrasings", type=int, metavar="N",
                   help="rewrites of each training question (default 3; 0: as asked only)")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="adapter training time budget (default: refresh's, 720)")
    p.add_argument("--lr", type=float, metavar="X", help="adapter learning rate (default 2e-4)")
    p.add_argument("--seed", type=int, default=0, help="seeds training and the bootstrap")
    p.add_argument("--out", type=Path, metavar="DIR", help="write results.json and chart.png here")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object {base, rag, adapter, both} instead of the table")
    add_model_options(p)
    p.set_defaults(handler=cmd_eval)


def experiment_config(args: argparse.Namespace) -> Any:
    """ExperimentConfig from the command line (unset flags keep the defaults)."""
    from adapters.eval.experiment import ExperimentConfig  # lazy: imports numpy

    config = ExperimentConfig(limit=args.limit, probe=not args.no_probe, seed=args.seed)
    if args.max_tokens is not None:
        config.max_tokens = args.max_tokens
    if args.gen_batch is not None:
        config.gen_batch = args.gen_batch
    if args.epochs is not None:
        config.train.epochs = args.epochs
    if args.iters is not None:
        config.train.iters = args.iters
    config.train.seed = args.seed
    if args.budget is not None:
        config.train.time_budget_s = args.budget or None
    if args.lr is not None:
        config.train.learning_rate = args.lr
    if args.phrasings is not None and config.data is not None:
        config.data.phrasings = args.phrasings
        if args.phrasings == 0:  # as main trained: the pairs as asked, no memories' questions
            config.data = None
    if not args.no_quiz:
        from adapters.eval import quiz

        if args.quiz is not None:
            config.quiz = quiz.load(args.quiz)
        elif args.demo:
            config.quiz = quiz.demo_quiz()
    return config


def choose_data(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(Split, system prompt or None) from --demo, --data or the user's accepted answers."""

    system_prompt = None
    if args.demo:
        items = data.demo_items()
    elif args.data is not None:
        items = data.from_jsonl(args.data)
    else:
        items, system_prompt = _accepted()
    if args.valid is not None:
        return data.with_valid(items, data.from_jsonl(args.valid)), system_prompt
    return data.split_items(items), system_prompt


def _accepted() -> tuple[list[Any], str]:
    from memory.store import Store  # lazy: imports numpy and sqlite-utils

    with Store.open() as store:
        items = data.from_accepted(store.accepted_examples())
        _, system_prompt = store.active_system_prompt()
    if len(items) < MIN_ACCEPTED:
        raise AdapterError(
            f"only {len(items)} accepted answers to learn from and score (need {MIN_ACCEPTED}): "
            "accept more answers, or try `hearth eval --demo` or `hearth eval --data FILE.jsonl`"
        )
    return items, system_prompt


def _stage_bars() -> Any:
    """One tqdm bar per stage on stderr, each created when its stage starts."""
    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress_bar(STAGES.get(stage, stage))
        bars[stage](done, total)

    return update


TMP_PREFIX = "hearth-eval-"


def clean_stale_tmp() -> list[Path]:
    """Delete eval temp folders whose process (the pid in the name) no longer runs."""
    removed = []
    for folder in paths.eval_tmp_dir().glob(f"{TMP_PREFIX}*"):
        pid = folder.name[len(TMP_PREFIX):].split("-")[0]
        if not pid.isdigit() or not pid_alive(int(pid)):
            paths.safe_remove(folder)
            removed.append(folder)
    return removed


    return True


def cmd_eval(args: argparse.Namespace) -> int:
    from adapters.eval import report  # lazy: imports numpy, matplotlib
    from adapters.eval.experiment import run_experiment  # lazy: imports numpy
    from agent.llm.runtime import Runtime  # lazy: imports MLX

    split, system_prompt = choose_data(args)
    config = experiment_config(args)
    ref = models.resolve(args.model, allow_download=args.allow_download,
                         progress=progress_bar("converting the bundled model (first run)"))
    runtime = Runtime.load(ref)
    clean_stale_tmp()
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-",
                                     dir=paths.eval_tmp_dir()) as tmp:
        results = run_experiment(runtime, split, Path(tmp), config, system_prompt,
                                 progress=_stage_bars())
    if args.out is not None:
        written = report.write(results, args.out)
        print(f"hearth: wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if args.json:
        print(json.dumps(results.conditions(), indent=2))
    else:
        print(report.markdown(results))
    return 0
