"""Be a polite background job: lower CPU priority and keep BLAS to one thread.

Training shares a laptop with the chat. `os.nice(10)` lets the chat's process win the CPU;
one BLAS thread leaves the other core(s) free and avoids the collapse seen on this project's
2-core machines when a multi-threaded MKL competes with other work (a SmolLM2 LoRA step took
8 s with one MKL thread and 20-56 s with two under load). This module changes only the
current process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

from agent.foundation import blas


def blas_threads(n: int) -> int | None:
    """Set the optimised BLAS's thread count (MKL or OpenBLAS); returns the previous count.

    None when no optimised BLAS was loaded by `agent.foundation.blas.ensure()` (nothing to set).
    """

    path = blas.ensure()
    if not path:
        return None
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    if hasattr(lib, "MKL_Set_Num_Threads"):
        previous = int(lib.MKL_Get_Max_Threads())
        lib.MKL_Set_Num_Threads(ctypes.c_int(n))
        return previous
    if hasattr(lib, "openblas_set_num_threads"):
        previous = int(lib.openblas_get_num_threads())
        lib.openblas_set_num_threads(ctypes.c_int(n))
        return previous
    return None


def set_low_priority(threads: int | None = 1) -> None:
    """os.nice(10) (ignored where refused) and, unless `threads` is None, that many BLAS threads."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    if threads is not None:
        blas_threads(threads)
