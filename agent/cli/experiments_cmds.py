"""`hearth experiments list|show|start|stop`: live A/B trials of an adapter or a prompt.

Thin shells over `adapters.training.experiments`; plain text, one item per line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adapters.training import experiments
from adapters.training.ab_stats import Decision
from agent.foundation.errors import HearthError


def register(sub: Any) -> None:
    ex = sub.add_parser("experiments", help="A/B trials of a candidate adapter or system prompt")
    esub = ex.add_subparsers(dest="experiments_command", metavar="ACTION", required=True)
    esub.add_parser("list", help="every trial, newest last").set_defaults(handler=cmd_list)
    show = esub.add_parser("show", help="per-arm acceptance, intervals, the rule and its looks")
    show.add_argument("id", nargs="?", help="default: the running trial, else the newest")
    show.set_defaults(handler=cmd_show)
    start = esub.add_parser("start", help="put a gated adapter or a new prompt on trial")
    what = start.add_mutually_exclusive_group(required=True)
    what.add_argument("--adapter", metavar="VERSION", help="a candidate that passed the gate")
    what.add_argument("--prompt", metavar="TEXT", help="a candidate system prompt")
    what.add_argument("--prompt-file", metavar="PATH", help="the candidate prompt from a file")
    start.add_argument("--split", type=float, default=0.5,
                       help="share of new conversations given the candidate (default 0.5)")
    start.set_defaults(handler=cmd_start)
    stop = esub.add_parser("stop", help="end the running trial; the incumbent serves next turn")
    stop.set_defaults(handler=cmd_stop)
    pref = esub.add_parser("preference", help="train a DPO step on your rejected / edited answers "
                           "over the serving adapter, gate it, and put it on trial")
    pref.add_argument("--no-trial", action="store_true", help="gate it but start no trial")
    pref.set_defaults(handler=cmd_preference)


def _store() -> Any:
    from memory.store import Store

    return Store.open()


def _arm_line(label: str, n: int, acc: int, interval: tuple[float, float]) -> str:
    rate = f"{acc / n:.0%}" if n else "-"
    return f"  {label:<10} {acc}/{n} accepted ({rate}; 95% Wilson {interval[0]:.2f}-{interval[1]:.2f})"


def describe_decision(d: Decision) -> list[str]:
    c = d.counts
    return [_arm_line("incumbent", c.n_a, c.acc_a, d.interval_a),
            _arm_line("candidate", c.n_b, c.acc_b, d.interval_b),
            f"  P(candidate better) {d.p_better:.3f}, P(no difference) {d.p_same:.3f}"]


def cmd_list(args: argparse.Namespace) -> int:
    with _store() as store:
        rows = store.list_experiments()
        if not rows:
            print("no experiments yet; `hearth experiments start --adapter VERSION` starts one")
            return 0
        print("id\tkind\tstatus\tincumbent -> candidate\tincumbent\tcandidate\tstarted")
        for r in rows:
            s = experiments.summary(store, r["id"])
            c = s.decision.counts
            print(f"{s.id}\t{s.kind}\t{s.status}\t{s.incumbent} -> {s.candidate}\t"
                  f"{c.acc_a}/{c.n_a}\t{c.acc_b}/{c.n_b}\t{s.started_at}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _store() as store:
        eid = args.id or experiments.latest_id(store)
        if eid is None:
            raise HearthError("no experiments yet; start one with `hearth experiments start`")
        s = experiments.summary(store, eid)
    print(f"experiment {s.id} ({s.kind}): {s.status}")
    print(f"  {s.incumbent} (incumbent) vs {s.candidate} (candidate); started {s.started_at}"
          + (f", ended {s.ended_at}" if s.ended_at else ""))
    print(f"  conversations: incumbent {s.conversations.get('incumbent', 0)}, "
          f"candidate {s.conversations.get('candidate', 0)}")
    for line in describe_decision(s.decision):
        print(line)
    r = s.rule
    print(f"  rule: >= {r.min_rated} rated per arm, look every {r.look_every}, promote at "
          f"P >= {r.promote_prob}, no difference within {r.margin:g} at P >= {r.same_prob}, "
          f"cap {r.max_rated} per arm")
    print(f"  now: {s.reason if s.status != 'running' else s.decision.reason}")
    for look in s.looks:
        print(f"  look {look['look']}: {look['action']} ({look['acc_a']}/{look['n_a']} vs "
              f"{look['acc_b']}/{look['n_b']}, P {look['p_better'] or 0:.3f}) {look['created_at']}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from agent.llm import models

    if not 0 < args.split < 1:
        raise HearthError("--split is a share between 0 and 1 (e.g. 0.5)")
    with _store() as store:
        if args.adapter:
            checksum = models.resolve(getattr(args, "model", None),
                                      allow_download=getattr(args, "allow_download", False)).checksum
            eid = experiments.start_adapter_trial(store, args.adapter, checksum, split=args.split)
        else:
            text = args.prompt if args.prompt is not None else _read(args.prompt_file)
            eid = experiments.start_prompt_trial(store, text, split=args.split)
        s = experiments.summary(store, eid)
    print(f"started experiment {eid}: {s.incumbent} (incumbent) vs {s.candidate} (candidate); "
          f"new conversations get an arm, at least {s.rule.min_rated} rated answers per arm "
          "before a decision")
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HearthError(f"cannot read the prompt file {path} ({exc})") from None


def cmd_stop(args: argparse.Namespace) -> int:
    with _store() as store:
        eid = experiments.stop(store)
    print(f"stopped experiment {eid}; the incumbent serves from the next turn")
    return 0


def cmd_preference(args: argparse.Namespace) -> int:
    from adapters.jobs import refresh
    from adapters.jobs.preference_refresh import preference_refresh
    from adapters.jobs.priority import set_low_priority
    from adapters.training.preference import PreferenceConfig

    set_low_priority()
    with _store() as store:
        _, gate_config, policy = refresh.settings(store)
        value = store.get_setting("adapters.training.preference")
        config = PreferenceConfig(**{k: v for k, v in (value or {}).items()
                                     if k in PreferenceConfig.__dataclass_fields__})
        result = preference_refresh(store, getattr(args, "model", None), config, gate_config,
                                    policy, trial=not args.no_trial)
    print(f"{result.status}: {result.reason}")
    return 0
