"""Zero egress: keep Hearth's process off the network unless the user asked.

`enable()`:
- sets the Hugging Face libraries offline: the environment switches (read when those
  libraries are imported, so the CLI calls this before importing them) *and* the constant of
  an already imported `huggingface_hub.constants.HF_HUB_OFFLINE`, which would otherwise stay
  False;
- guards every way out through the socket API: `connect`, `connect_ex`, `sendto` and
  `sendmsg` (UDP needs no connect; TCP Fast Open sends from `sendto`) on `socket.socket`, the
  same on the low-level `_socket.socket` type (replaced by a guarded subclass, so code that
  builds a raw `_socket.socket` is covered), and name resolution (`getaddrinfo`,
  `gethostbyname[_ex]`, `gethostbyaddr`, `getnameinfo` in both modules): a DNS query already
  carries the host name out.
Loopback, Unix and netlink sockets, and resolving "localhost" or a numeric address (no query
leaves the machine) stay allowed. A refusal raises `NetworkRefused` naming the code that
tried; attempts are counted for tests and `doctor`. `allowed()` lifts the guard for one
thread for an explicit `--allow-download`. `report()` inspects what is in place and probes
it, so `hearth doctor` states what is true, not what was intended.

It does not police other processes (the refresh worker calls `enable()` itself), nor code
that makes system calls without Python's socket modules (ctypes, subprocesses).
"""

from __future__ import annotations

import _socket
import contextlib
import ipaddress
import os
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.foundation.errors import NetworkRefused

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
_INET = {socket.AF_INET, socket.AF_INET6} | {getattr(socket, "AF_PACKET", -1)}
_METHODS = ("connect", "connect_ex", "sendto", "sendmsg")
_RESOLVERS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")

_state = threading.local()
_original = {name: getattr(socket.socket, name) for name in _METHODS}
_original_csocket = _socket.socket
_original_resolvers = {(mod.__name__, name): getattr(mod, name)
                       for mod in (socket, _socket) for name in _RESOLVERS}
attempts: list[str] = []
_enabled = False


def _is_local(address: Any, family: int) -> bool:
    if family not in _INET:
        return True  # AF_UNIX, AF_NETLINK...: never leave the machine
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it would already be egress


def _culprit() -> str:
    frames = [f for f in traceback.extract_stack()[:-3]
              if "socket" not in f.filename and not f.filename.endswith("offline.py")]
    frame = frames[-1] if frames else None
    return f"{frame.filename}:{frame.lineno}" if frame else "unknown code"


def _refuse(what: str) -> None:
    who = _culprit()
    attempts.append(f"{what} from {who}")
    raise NetworkRefused(
        f"blocked {what} from {who}: Hearth runs offline "
        "(pass --allow-download to fetch a model explicitly)"
    )


def _check(sock: Any, address: Any) -> None:
    if getattr(_state, "allowed", False) or _is_local(address, sock.family):
        return
    _refuse(f"a network connection to {address!r}")


def _send_address(args: tuple[Any, ...], index: int) -> Any:
    return args[index] if len(args) > index else None


def _guard_methods(cls: Any, originals: dict[str, Any]) -> None:
    def connect(self: Any, address: Any) -> Any:
        _check(self, address)
        return originals["connect"](self, address)

    def connect_ex(self: Any, address: Any) -> Any:
        _check(self, address)
        return originals["connect_ex"](self, address)

    def sendto(self: Any, data: Any, *args: Any) -> Any:
        _check(self, args[-1] if args else None)  # sendto(data, [flags,] address)
        return originals["sendto"](self, data, *args)

    def sendmsg(self: Any, buffers: Any, *args: Any, **kwargs: Any) -> Any:
        address = kwargs.get("address", _send_address(args, 2))
        if address is not None:
            _check(self, address)
        return originals["sendmsg"](self, buffers, *args, **kwargs)

    guards: tuple[Any, ...] = (connect, connect_ex, sendto, sendmsg)
    for fn in guards:
        fn.__hearth_guard__ = True
        setattr(cls, fn.__name__, fn)


class _GuardedCSocket(_original_csocket):  # type: ignore[misc, valid-type]
    """The low-level socket type with the same guard (stands in for `_socket.socket`)."""


_guard_methods(_GuardedCSocket, {n: getattr(_original_csocket, n) for n in _METHODS})


def _resolver(module: str, name: str) -> Any:
    original = _original_resolvers[(module, name)]

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not getattr(_state, "allowed", False) and not _local_name(host):
            _refuse(f"a name lookup ({name}) of {host!r}")
        return original(host, *args, **kwargs)

    resolve.__hearth_guard__ = True  # type: ignore[attr-defined]
    resolve.__name__ = name
    return resolve


def _local_name(host: Any) -> bool:
    """True where resolving sends nothing out: no host, localhost, or a numeric address."""
    if isinstance(host, tuple):  # getnameinfo((addr, port), flags)
        host = host[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host in (None, "", "localhost") or str(host).endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True  # a numeric address: no query is made (connecting to it is guarded)


def _set_hub_constant(value: bool) -> None:
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = value  # type: ignore[attr-defined]


def enable() -> None:
    """Go offline for the rest of this process (idempotent)."""
    global _enabled
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    _set_hub_constant(True)
    _guard_methods(socket.socket, _original)
    _socket.socket = _GuardedCSocket  # type: ignore[misc]
    _socket.SocketType = _GuardedCSocket  # type: ignore[misc]
    for module, name in _original_resolvers:
        setattr(sys.modules[module], name, _resolver(module, name))
    _enabled = True


def disable() -> None:
    global _enabled
    for name, fn in _original.items():
        setattr(socket.socket, name, fn)
    _socket.socket = _original_csocket  # type: ignore[misc]
    _socket.SocketType = _original_csocket  # type: ignore[misc]
    for (module, name), fn in _original_resolvers.items():
        setattr(sys.modules[module], name, fn)
    _enabled = False


def is_enabled() -> bool:
    return _enabled


@dataclass(frozen=True)
class Report:
    """What `report()` found: `ok` only when every layer is in place and refused its probe."""

    ok: bool
    missing: tuple[str, ...]


def report() -> Report:
    """Inspect every guarded entry point and the hub switch; when all are in place, probe a
    UDP send and a DNS lookup (refused before any packet, so probing never leaks)."""
    missing = [f"socket.socket.{n}" for n in _METHODS
               if not getattr(getattr(socket.socket, n), "__hearth_guard__", False)]
    if _socket.socket is not _GuardedCSocket:
        missing.append("_socket.socket")
    missing += [f"{m}.{n}" for m, n in _original_resolvers
                if not getattr(getattr(sys.modules[m], n), "__hearth_guard__", False)]
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        missing.append("HF_HUB_OFFLINE")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and not getattr(constants, "HF_HUB_OFFLINE", False):
        missing.append("huggingface_hub.constants.HF_HUB_OFFLINE")
    if not missing:
        missing += _probe()
    return Report(not missing, tuple(missing))


def _probe() -> list[str]:
    failed = []
    seen = len(attempts)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.sendto(b"", ("192.0.2.1", 9))  # TEST-NET-1: never routed
                failed.append("UDP sendto probe")
            except NetworkRefused:
                pass
        try:
            socket.getaddrinfo("hearth-probe.invalid", 80)
            failed.append("DNS probe")
        except NetworkRefused:
            pass
        except OSError:
            failed.append("DNS probe")
    finally:
        del attempts[seen:]
    return failed


@contextlib.contextmanager
def allowed() -> Iterator[None]:
    """Allow connections from this thread, and the hub libraries online, inside the block."""
    saved = {k: os.environ.get(k) for k in OFFLINE_ENV}
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(key, None)
    _set_hub_constant(False)
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
        _set_hub_constant(saved.get("HF_HUB_OFFLINE") == "1")
