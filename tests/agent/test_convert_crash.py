"""Conversion is atomic: SIGKILL at many points never leaves a folder that is later trusted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent import convert

pytestmark = pytest.mark.slow

CHILD = """
import sys
from pathlib import Path
from agent import blas, convert
blas.ensure()
convert.convert_gguf(convert.bundled_gguf(), Path(sys.argv[1]))
"""


def test_kill_during_conversion_leaves_nothing_trusted(tmp_path: Path) -> None:
    out = tmp_path / "models" / "smol"
    kill_points = [0.3, 1.0, 2.0, 3.5, 5.0, 7.0]
    interrupted = 0
    for delay in kill_points:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], env=os.environ.copy())
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            interrupted += 1
        proc.wait()
        manifest = convert.read_manifest(out)
        if manifest is None:
            assert not out.exists() or not (out / convert.MANIFEST).exists()
        else:
            assert convert.verify_folder(out) == []  # a trusted folder is whole
    assert interrupted >= 3, "conversion finished too fast to be interrupted"
    final = convert.convert_gguf(convert.bundled_gguf(), out)
    assert convert.verify_folder(final) == []
    assert not list(out.parent.glob(".tmp-*")), "stale temporary folders were not cleaned"
