"""Conversion is atomic: SIGKILL at many points never leaves a folder that is later trusted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.llm import convert

pytestmark = pytest.mark.slow

CHILD = """
import sys
from pathlib import Path
from agent.foundation import blas
from agent.llm import convert
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


def test_damaged_bundled_cache_is_rebuilt_and_serves(bundled_model_dir: Path) -> None:
    import shutil

    from agent.llm import models
    from agent.llm.runtime import Runtime, SamplingOptions

    cache = models.bundled_folder(quantized=False)
    shutil.copytree(bundled_model_dir, cache)  # seed the cache: skip one conversion
    question = [{"role": "user", "content": "What is the capital of France?"}]
    # truncation is caught by the manifest size check, garbling only by the failed load
    for damage in ("truncate", "garble"):
        weights = cache / "model.safetensors"
        data = weights.read_bytes()
        if damage == "truncate":
            weights.write_bytes(data[: len(data) // 3])
        elif damage == "garble":  # same size, header destroyed: only loading notices
            weights.write_bytes(b"\x00" * 64 + data[64:])
        rt = Runtime.open()
        text = "".join(e.text for e in rt.stream(question, SamplingOptions(temperature=0.0, max_tokens=12)))
        assert "Paris" in text, damage
        assert convert.verify_folder(rt.ref.path) == [], damage


def test_damaged_local_model_is_one_clear_error(bundled_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from agent.foundation.errors import ModelError
    from agent.llm.runtime import Runtime

    copy = tmp_path / "mine"
    shutil.copytree(bundled_model_dir, copy)
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="could not load the model"):
        Runtime.open(str(copy))
