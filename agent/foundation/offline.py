"""Zero egress: keep Hearth's process off the network unless the user asked.

`enable()` sets the Hugging Face libraries offline and wraps `socket.socket.connect` (and
`connect_ex`) so that any connection to a non-loopback address raises `NetworkRefused`
naming the code that tried. Unix sockets and loopback stay allowed. `allowed()` lifts the
guard for an explicit `--allow-download`. Attempts are counted for tests and `doctor`.

It does not police other processes (the refresh worker calls `enable()` itself).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import traceback
from collections.abc import Iterator
from typing import Any

from agent.foundation.errors import NetworkRefused

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}

_state = threading.local()
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
attempts: list[str] = []
_enabled = False


def _is_local(address: Any, family: int) -> bool:
    if family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it would already be egress


def _culprit() -> str:
    frames = [f for f in traceback.extract_stack()[:-3] if "socket" not in f.filename]
    frame = frames[-1] if frames else None
    return f"{frame.filename}:{frame.lineno}" if frame else "unknown code"


def _check(sock: socket.socket, address: Any) -> None:
    if getattr(_state, "allowed", False) or _is_local(address, sock.family):
        return
    who = _culprit()
    attempts.append(f"{address!r} from {who}")
    raise NetworkRefused(
        f"blocked a network connection to {address!r} from {who}: Hearth runs offline "
        "(pass --allow-download to fetch a model explicitly)"
    )


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def enable() -> None:
    """Go offline for the rest of this process (idempotent)."""
    global _enabled
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign, assignment]
    _enabled = True


def disable() -> None:
    global _enabled
    socket.socket.connect = _original_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]
    _enabled = False


def is_enabled() -> bool:
    return _enabled


@contextlib.contextmanager
def allowed() -> Iterator[None]:
    """Allow connections from this thread, and the hub libraries online, inside the block."""
    saved = {k: os.environ.get(k) for k in OFFLINE_ENV}
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(key, None)
    _state.allowed = True
    try:
        yield
    finally:
        _state.allowed = False
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
