"""`hearth adapters list|show|activate|rollback|delete`, `hearth refresh`, `hearth schedule ...`.

Thin shells over `adapters.training.registry`, `adapters.jobs.refresh` and `adapters.jobs.schedule`; output is
plain text, one item per line. `hearth refresh` trains in this process at low priority with a
progress bar (`--background` hands it to `python -m adapters.jobs.worker` and returns at once).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from adapters.jobs import refresh, schedule, worker
from adapters.jobs.priority import set_low_priority
from adapters.training import registry
from adapters.training.errors import AdapterError
from agent.llm import models


def register(sub: Any) -> None:
    ad = sub.add_parser("adapters", help="personal adapter versions: list, inspect, switch, roll back")
    asub = ad.add_subparsers(dest="adapters_command", metavar="ACTION", required=True)
    asub.add_parser("list", help="every version, newest last (* = active)").set_defaults(handler=cmd_list)
    show = asub.add_parser("show", help="lineage, numbers and the gate's reason for one version")
    show.add_argument("version")
    show.set_defaults(handler=cmd_show)
    act = asub.add_parser("activate", help="serve this version (checked and bound to the base model)")
    act.add_argument("version")
    act.set_defaults(handler=cmd_activate)
    asub.add_parser("rollback", help="back to the previously active version, or the base model"
                    ).set_defaults(handler=cmd_rollback)
    rm = asub.add_parser("delete", help="delete a version's files (never the active one without --force)")
    rm.add_argument("version")
    rm.add_argument("--force", action="store_true", help="roll back first if it is the active one")
    rm.set_defaults(handler=cmd_delete)

    ref = sub.add_parser("refresh", help="train and gate a new personal adapter if there is new data")
    ref.add_argument("--force", action="store_true",
                     help="train even on battery, while chatting, or without enough new answers")
    ref.add_argument("--quiet", action="store_true", help="no progress bar; one result line")
    ref.add_argument("--background", action="store_true",
                     help="run in a separate low-priority process and return at once")
    ref.set_defaults(handler=cmd_refresh)

    sch = sub.add_parser("schedule", help="the nightly refresh (systemd timer / launchd agent)")
    ssub = sch.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    ins = ssub.add_parser("install", help="write and enable the nightly schedule")
    ins.add_argument("--at", default="03:30", metavar="HH:MM", help="local time (default 03:30)")
    ins.set_defaults(handler=cmd_schedule_install)
    ssub.add_parser("remove", help="disable and delete it").set_defaults(handler=cmd_schedule_remove)
    ssub.add_parser("status", help="is it installed and enabled?").set_defaults(handler=cmd_schedule_status)


def _store() -> Any:
    from memory.store import Store  # lazy: imports numpy and sqlite-utils

    return Store.open()


def _base_checksum(args: argparse.Namespace) -> str:
    return models.resolve(getattr(args, "model", None),
                          allow_download=getattr(args, "allow_download", False)).checksum


def _nll(metrics: dict[str, Any] | None, who: str) -> str:
    try:
        return f"{metrics[who]['personal_nll']:.3f}"  # type: ignore[index]
    except (KeyError, TypeError):
        return "-"


def cmd_list(args: argparse.Namespace) -> int:
    with _store() as store:
        rows = store.list_adapter_versions()
    if not rows:
        print("no adapters yet; `hearth refresh` trains one once enough answers are accepted")
        return 0
    print("  version\tstatus\tcreated\ttrain/valid\tnll ref->cand\treason")
    for r in rows:
        mark = "*" if r.get("status") == "active" else " "
        nll = f"{_nll(r.get('metrics'), 'reference')}->{_nll(r.get('metrics'), 'candidate')}"
        reason = " ".join(str(r.get("reason") or "").split())[:80]
        print(f"{mark} {r['id']}\t{r.get('status')}\t{str(r.get('created_at'))[:16]}\t"
              f"{r.get('n_train')}/{r.get('n_valid')}\t{nll}\t{reason}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _store() as store:
        row = registry.get(store, args.version)
    files_state = "no files"
    if registry.has_files(row):
        try:
            registry.verify(registry.folder_for(row["id"]))
            files_state = "ok"
        except AdapterError as exc:
            files_state = str(exc)
    print(json.dumps({**row, "files": files_state}, indent=2, default=str))
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    with _store() as store:
        folder = registry.activate(store, args.version, _base_checksum(args))
    print(f"{args.version} is active ({folder}); running chats switch at their next message")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    with _store() as store:
        now = registry.rollback(store, _base_checksum(args))
    print(f"now serving {now}" if now else "now serving the base model (no adapter)")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _store() as store:
        registry.delete(store, args.version, force=args.force)
    print(f"deleted {args.version}'s files (its registry row is kept for the lineage)")
    return 0


def _bar() -> Any:
    bar: list[Any] = []

    def update(event: dict[str, Any]) -> None:
        if event.get("event") in ("train", "start") and event.get("total"):
            if not bar:
                bar.append(tqdm(desc="training", total=event["total"], file=sys.stderr,
                                leave=False, dynamic_ncols=True, unit="step"))
            bar[0].n = int(event.get("step", 0))
            if "loss" in event:
                bar[0].set_postfix(loss=f"{event['loss']:.3f}")
            bar[0].refresh()
        elif event.get("event") in ("evaluate", "verdict", "result") and bar:
            bar[0].close()
            bar.clear()
        if event.get("event") == "evaluate":
            print(f"evaluating {event.get('what')}...", file=sys.stderr)
        if event.get("event") == "step back":
            print(f"not this one ({str(event.get('why', '')).split(';')[0]}); trying the run's "
                  f"earlier best, step {event.get('step')}", file=sys.stderr)
        _print_plan(event)

    return update


def _print_plan(event: dict[str, Any]) -> None:
    """`hearth refresh` says what it will train on, for how long, and why (even --quiet)."""
    if event.get("event") == "plan":
        print(event.get("line"), file=sys.stderr)


def cmd_refresh(args: argparse.Namespace) -> int:
    if args.background:
        extra = ["--force"] if args.force else []
        if getattr(args, "model", None):  # the worker runs in the data dir: paths made absolute
            local = Path(args.model).expanduser()
            extra += ["--model", str(local.absolute()) if local.exists() else args.model]
        proc = worker.spawn(*extra)
        print(f"refresh started in the background (pid {proc.pid}); follow {refresh.log_path()}")
        return 0
    set_low_priority()
    with _store() as store:
        config, gate_config, policy = refresh.settings(store)
        result = refresh.refresh(store, getattr(args, "model", None), policy, config, gate_config,
                                 progress=_print_plan if args.quiet else _bar(), force=args.force)
    print(f"{result.status}: {result.reason}")
    return 0


def _print_report(report: Any) -> int:
    for line in report.lines:
        print(line)
    return 0


def cmd_schedule_install(args: argparse.Namespace) -> int:
    return _print_report(schedule.install(args.at))


def cmd_schedule_remove(args: argparse.Namespace) -> int:
    return _print_report(schedule.remove())


def cmd_schedule_status(args: argparse.Namespace) -> int:
    return _print_report(schedule.status())
