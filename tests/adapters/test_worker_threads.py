"""The refresh worker holds the refresh flag while it runs and sets BLAS threads by policy."""

from __future__ import annotations

import argparse

import pytest

from adapters.jobs import worker
from agent.foundation import blas


def test_worker_holds_refresh_flag_and_applies_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    roles: list[str] = []

    def fake_refresh(args: argparse.Namespace) -> int:
        seen["worker"] = blas.is_refresh_worker()
        seen["threads"] = args.blas_threads
        worker._printer(None, adaptive=True)({"event": "train", "step": 1})
        return 0

    monkeypatch.setattr(worker, "run_refresh", fake_refresh)
    monkeypatch.setattr(blas, "apply_policy", lambda role="chat": roles.append(role) or 1)
    assert worker.main(["refresh", "--no-nice"]) == 0
    assert seen == {"worker": True, "threads": -1}
    assert roles == ["refresh", "refresh"]  # at start and at the progress event
    assert not blas.is_refresh_worker()  # the flag is gone afterwards


def test_fixed_threads_skip_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    roles: list[str] = []
    monkeypatch.setattr(worker, "run_refresh", lambda args: 0)
    monkeypatch.setattr(blas, "apply_policy", lambda role="chat": roles.append(role) or 1)
    assert worker.main(["refresh", "--no-nice", "--blas-threads", "1"]) == 0
    assert roles == []
