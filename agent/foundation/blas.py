"""Put an optimised BLAS in front of MLX's CPU backend on Linux.

The `mlx-cpu` wheel bundles the reference netlib BLAS (3-5 GFLOP/s). Loading an optimised
library with RTLD_GLOBAL *before the first `import mlx`* makes MLX resolve `cblas_sgemm` to
it (about 20x faster matmuls; see shared/platform.md). Candidates, best first: the `mkl`
wheel's `libmkl_rt` in this environment, then Debian/Ubuntu OpenBLAS. `HEARTH_BLAS=/path.so`
picks one explicitly; `HEARTH_BLAS=reference` keeps the stock one (for benchmarks).

This module does not import MLX; `report()` says which library now serves `cblas_sgemm`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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

    import mlx.core as mx  # lazy: imports MLX

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
