"""Small pure helpers: sortable ids, UTC timestamps, content hashes.

Ids are ULID-like: 26 Crockford base32 characters, 48 bits of milliseconds then 80 random
bits, monotonic within a process, so sorting ids sorts by creation time. No dependency.
This module does not touch the database.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from datetime import UTC, datetime

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(CROCKFORD[digit])
    return "".join(reversed(chars))


def new_id(now_ms: int | None = None) -> str:
    """A new sortable id.

    >>> len(new_id()), new_id(0)[:10]
    (26, '0000000000')
    """
    global _last_ms, _last_rand
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms and now_ms is None:
            ms, rand = _last_ms, (_last_rand + 1) % (1 << 80)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    return _encode(ms, 10) + _encode(rand, 16)


def now_iso() -> str:
    """The current UTC time as ISO-8601 with milliseconds and a Z, e.g. 2026-11-23T10:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day(iso: str) -> str:
    """The date part of an ISO timestamp.

    >>> day("2026-11-23T10:00:00.123Z")
    '2026-11-23'
    """
    return iso[:10]


def text_hash(text: str) -> str:
    """sha256 of UTF-8 text, hex; identical text always hashes the same.

    >>> text_hash("a")[:8]
    'ca978112'
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
