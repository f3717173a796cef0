"""Put an optimised BLAS in front of MLX's CPU backend on Linux.

The `mlx-cpu` wheel bundles the reference netlib BLAS (3-5 GFLOP/s). Loading an optimised
library with RTLD_GLOBAL *before the first `import mlx`* makes MLX resolve `cblas_sgemm` to
it (about 20x faster matmuls; see shared/platform.md). Candidates, best first: the `mkl`
wheel's `libmkl_rt` in this environment, then Debian/Ubuntu OpenBLAS. `HEARTH_BLAS=/path.so`
picks one explicitly; `HEARTH_BLAS=reference` keeps the stock one (for benchmarks).

Thread policy (measured on the project's 2-core machines, see docs/ and issue 14): MKL's
OpenMP threads spin-wait by default, so two multi-threaded processes on two cores collapse
(a 256-token answer took minutes of CPU). `ensure()` therefore sets passive waiting
(`OMP_WAIT_POLICY=PASSIVE`, `KMP_BLOCKTIME=0`, `MKL_DYNAMIC=TRUE`) before MKL loads, and
`choose_threads()` (pure) picks the BLAS thread count from the CPU count, the load average
and whether a refresh is training: the chat takes only the cores others leave free, one
while a refresh runs; a refresh takes every free core when nobody chats, one otherwise.
The two processes tell each other through flag files in the cache dir (`refresh.running`
holds the worker's pid; `chat.active` is touched by each chat turn).

This module does not import MLX; `report()` says which library now serves `cblas_sgemm`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.foundation import paths
from agent.foundation.proc import pid_alive

_loaded: str | None = None
_tried = False

OPENBLAS_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
)


def _candidates() -> list[str]:
    chosen = os.environ.get("HEARTH_BLAS", "")
    if chosen == "reference":
        return []
    if chosen:
        return [chosen]
    found = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
        lib = Path(prefix) / "lib"
        found += sorted(str(p) for p in lib.glob("libmkl_rt.so*"))
    found += [p for p in OPENBLAS_CANDIDATES if Path(p).exists()]
    return found


WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0", "MKL_DYNAMIC": "TRUE"}
"""Idle BLAS threads sleep instead of spinning on a core another process needs."""


def ensure() -> str | None:
    """Load the best optimised BLAS globally, once. Returns its path, or None.

    Must run before `import mlx`; later calls are no-ops. Does nothing off Linux.
    """
    global _loaded, _tried
    if _tried or not sys.platform.startswith("linux"):
        return _loaded
    _tried = True
    if "mlx.core" in sys.modules:
        return None  # too late: MLX already bound its BLAS
    for key, value in WAIT_POLICY.items():
        os.environ.setdefault(key, value)  # read when the OpenMP runtime starts
    for path in _candidates():
        if "mkl" in Path(path).name:
            os.environ.setdefault("MKL_THREADING_LAYER", "GNU")
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        _loaded = path
        return path
    return None


@dataclass(frozen=True)
class BlasReport:
    """Which library serves `cblas_sgemm` in this process, and how fast it is."""

    library: str
    optimised: bool
    gflops: float | None
    fix: str | None


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def sgemm_library() -> str:
    """The file that the dynamic linker's global scope resolves `cblas_sgemm` to."""
    try:
        libc = ctypes.CDLL(None)
        addr = ctypes.cast(libc.cblas_sgemm, ctypes.c_void_p).value
        info = _DlInfo()
        libdl = ctypes.CDLL(ctypes.util.find_library("dl") or None)
        if addr and libdl.dladdr(ctypes.c_void_p(addr), ctypes.byref(info)):
            return (info.dli_fname or b"?").decode()
    except (AttributeError, OSError):
        pass
    return "bundled reference BLAS (mlx_cpu.libs)"


def measure_gflops(n: int = 512, repeats: int = 5) -> float:
    """Time an n x n float32 matmul on MLX's CPU device (imports MLX)."""
    import time

    import mlx.core as mx

    a = mx.random.normal((n, n), stream=mx.cpu)
    b = mx.random.normal((n, n), stream=mx.cpu)
    mx.eval(mx.matmul(a, b, stream=mx.cpu))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        mx.eval(mx.matmul(a, b, stream=mx.cpu))
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def report(measure: bool = True) -> BlasReport:
    """Describe the BLAS serving MLX here (Linux); on macOS MLX uses Accelerate/Metal."""
    if sys.platform == "darwin":
        return BlasReport("Accelerate (macOS)", True, None, None)
    lib = sgemm_library()
    optimised = any(key in lib for key in ("mkl", "openblas")) and "mlx_cpu.libs" not in lib
    gflops = measure_gflops() if measure else None
    # reference BLAS measures 3-5 GFLOP/s; MKL/OpenBLAS 100+ (20+ on a busy machine)
    if gflops is not None and gflops < 12:
        optimised = False
    fix = None
    if not optimised:
        fix = (
            "MLX is on the slow reference BLAS: run `bash scripts/setup.sh` (installs the `mkl` "
            "wheel) or `apt install libopenblas0-pthread`, or set HEARTH_BLAS=/path/to/libblas.so"
        )
    return BlasReport(lib, optimised, gflops, fix)


# thread policy ------------------------------------------------------------------------
DECODE_THREADS = 1
"""BLAS threads while decoding one token at a time. Measured on the 2-core box, idle, bundled
model, 64 greedy tokens: Hearth's compiled decode 20.8-21.4 tok/s on one thread against
12.1-12.9 on two; bare mlx-lm 19.5 vs 18.7 (passive waiting: each of the ~120 small
matrix-vector products per token pays a thread wake-up that its split does not earn back).
Prefill (matrix-matrix) keeps the threads `choose_threads` gives it."""

CHAT_ACTIVE_S = 300.0
"""A chat turn within this many seconds counts as someone chatting."""


def choose_threads(cpus: int, load: float, refresh_running: bool = False,
                   role: str = "chat", chat_active: bool = False) -> int:
    """BLAS threads for this process (pure).

    `load` is the 1-minute load average *excluding* this process's own work (callers pass
    `os.getloadavg()[0]` taken before they start computing). The chat uses the cores
    nobody else is using (at least one) and one while a refresh trains; a refresh
    (`role="refresh"`) uses one thread while someone chats, else the free cores.

    >>> choose_threads(2, 0.1), choose_threads(2, 1.2), choose_threads(2, 0.1, refresh_running=True)
    (2, 1, 1)
    >>> choose_threads(8, 2.6), choose_threads(2, 0.0, role="refresh", chat_active=True)
    (5, 1)
    """
    cpus = max(1, int(cpus))
    if (role == "chat" and refresh_running) or (role == "refresh" and chat_active):
        return 1
    if not math.isfinite(load) or load < 0:
        load = float(cpus)
    free = cpus - load
    return max(1, min(cpus, int(math.floor(free + 0.5))))


def set_threads(n: int) -> int | None:
    """Set the optimised BLAS's thread count (MKL or OpenBLAS); returns the previous one.

    None when no optimised BLAS was loaded by `ensure()` (nothing to set).
    """
    path = ensure()
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


def _flag_dir() -> Path:
    return paths.cache_dir()


    return True


def _refresh_pid(folder: Path | None) -> int:
    flag = (folder or _flag_dir()) / "refresh.running"
    try:
        return int(flag.read_text().strip() or "0")
    except (OSError, ValueError):
        return 0


def refresh_running(folder: Path | None = None) -> bool:
    """True while a refresh worker's flag file names a live process (other than this one)."""
    pid = _refresh_pid(folder)
    return pid > 0 and pid != os.getpid() and pid_alive(pid)


def is_refresh_worker(folder: Path | None = None) -> bool:
    """True in the process that holds the refresh flag (its evaluations are not chats)."""
    return _refresh_pid(folder) == os.getpid()


@contextlib.contextmanager
def refresh_flag(folder: Path | None = None) -> Iterator[Path]:
    """Hold `refresh.running` (this pid, 0600) for the duration of a refresh."""
    flag = (folder or _flag_dir()) / "refresh.running"
    fd = os.open(flag, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    try:
        yield flag
    finally:
        with contextlib.suppress(OSError):
            if flag.read_text().strip() == str(os.getpid()):
                flag.unlink()


def touch_chat_active(folder: Path | None = None) -> None:
    """Record that someone is chatting now (mtime of `chat.active`)."""
    flag = (folder or _flag_dir()) / "chat.active"
    with contextlib.suppress(OSError):
        fd = os.open(flag, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        os.utime(flag)


def chat_active(folder: Path | None = None, within_s: float = CHAT_ACTIVE_S) -> bool:
    flag = (folder or _flag_dir()) / "chat.active"
    try:
        return time.time() - flag.stat().st_mtime < within_s
    except OSError:
        return False


def busy_cpus(samples: int = 5, gap_s: float = 0.002) -> float | None:
    """Runnable tasks right now besides the caller (Linux /proc/stat `procs_running`).

    The load average lags a minute behind a process that just started; this does not.
    The median of a few samples, minus the reading thread itself. None off Linux.
    """
    seen = []
    for i in range(samples):
        try:
            with open("/proc/stat") as fh:
                for line in fh:
                    if line.startswith("procs_running"):
                        seen.append(int(line.split()[1]))
                        break
        except (OSError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(gap_s)
    if not seen:
        return None
    seen.sort()
    return max(0.0, float(seen[len(seen) // 2]) - 1)


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return float("nan")


def apply_policy(role: str = "chat") -> int:
    """Choose (from the machine's state now) and set the BLAS thread count; returns it."""
    cpus = os.cpu_count() or 1
    busy = busy_cpus()
    others = busy if busy is not None else load_average()
    if role == "chat":
        n = choose_threads(cpus, others, refresh_running=refresh_running())
    else:
        n = choose_threads(cpus, others, role="refresh", chat_active=chat_active())
    set_threads(n)
    return n
