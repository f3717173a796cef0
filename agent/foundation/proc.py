"""Process helpers shared by the flag files (BLAS thread policy) and stale temp-folder cleanup.

`pid_alive(pid)` says whether a process with that id exists (ours or another user's).
It does not start, signal or wait for processes.
"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True if a process `pid` exists (signal 0 only probes); False once it has exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but belongs to someone else
        return True
    return True
