"""Issue 11 §6, a second, independent proof of zero egress: chat, ingest, refresh and eval
run through the real CLI inside a network namespace with no network at all (`unshare -rn`:
only a loopback that is down). Whatever the in-process guard misses, a connection, a DNS
query or a library's download attempt would fail here. Skipped where unshare is unavailable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memory.embed import HashEmbedder
from memory.store import Store

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
from agent.cli.main import main
tiny, docs, pairs = sys.argv[1:4]
steps = [
    ["ingest", docs],
    ["memory", "import", "--training", pairs],
    ["--model", tiny, "ask", "What is my boat called?", "--max-tokens", "4", "--json"],
    ["--model", tiny, "refresh", "--force", "--quiet"],
    ["--model", tiny, "eval", "--data", pairs, "--limit", "2", "--iters", "2",
     "--max-tokens", "4", "--no-probe", "--json"],
]
for step in steps:
    code = main(step)
    print("STEP", step[2] if step[0] == "--model" else step[0], code, flush=True)
    if code:
        sys.exit(code)
"""


def netns_available() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare -rn is not permitted here: {probe.stderr.decode().strip()}"
    return None


@pytest.mark.slow
@pytest.mark.skipif(netns_available() is not None, reason=str(netns_available()))
def test_the_pipeline_runs_with_no_network_at_all(tiny_model_dir: Path, tmp_path: Path,
                                                  hearth_home: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "boat.md").write_text("# Boat\nThe boat is called Marguerite and sleeps four.\n")
    pairs = tmp_path / "pairs.jsonl"
    with pairs.open("w") as fh:
        for i in range(12):
            fh.write(json.dumps({"messages": [
                {"role": "user", "content": f"Question {i}: who keeps the lighthouse?"},
                {"role": "assistant", "content": f"Ahoy! Orla keeps it ({i})."}]}) + "\n")
    with Store.open(embedder=HashEmbedder()) as store:  # a short refresh: settings first
        store.set_setting("adapters.train", {"num_layers": 1, "iters": 2, "steps_per_eval": 2,
                                             "steps_per_save": 2, "batch_size": 2})
        store.set_setting("adapters.refresh", {"min_accepted": 8, "skip_on_battery": False,
                                               "skip_if_active_minutes": 0})
        store.set_setting("adapters.gate", {"max_probe_regression": 50.0,
                                            "max_probe_regression_vs_base": 50.0})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEARTH_HOME": str(hearth_home)}
    out = subprocess.run(["unshare", "-rn", sys.executable, "-P", "-c", CHILD,
                          str(tiny_model_dir), str(docs), str(pairs)],
                         capture_output=True, text=True, timeout=500, env=env, cwd=tmp_path)
    log = out.stdout[-3000:] + out.stderr[-3000:]
    assert out.returncode == 0, log
    for step in ("ingest", "memory", "ask", "refresh", "eval"):
        assert f"STEP {step} 0" in out.stdout, log
    assert '"answer"' in out.stdout and ("promoted" in out.stdout or "rejected" in out.stdout)
    eval_tmp = hearth_home / "cache" / "eval-tmp"
    assert not eval_tmp.exists() or list(eval_tmp.iterdir()) == []  # eval cleaned its copies
