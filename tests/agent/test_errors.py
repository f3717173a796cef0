"""Which exceptions the CLI and TUI show as one line: Hearth's own, by class, not by name."""

from __future__ import annotations

from adapters.jobs.conditions import RefreshBusy
from adapters.training.errors import AdapterError
from agent.foundation.errors import HearthError, ModelError, is_user_error
from memory.errors import NotFoundError, StoreError


def test_every_package_error_is_a_user_error() -> None:
    for exc in (HearthError("x"), ModelError("x"), StoreError("x"), NotFoundError("x"),
                AdapterError("x"), RefreshBusy("x")):
        assert is_user_error(exc), type(exc).__name__


def test_an_error_is_not_recognised_by_its_module_name() -> None:
    lookalike = type("WidgetError", (Exception,), {"__module__": "memory.widgets"})
    assert not is_user_error(lookalike("boom"))
    assert not is_user_error(KeyError("x"))
