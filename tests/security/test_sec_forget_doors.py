"""Issue 11 §4d-f and the forgetting class, for the adapter/agent doors: a marker that went
through a crash, a failed training run and an adapter trained on it leaves no byte under
HEARTH_HOME after it is forgotten (every file scanned), and no adapter that learned it stays.

tests/reliability/test_rel_forget_everywhere.py holds the class test for every door (11a's
memory doors and these three, forgotten through `agent.core.forgetting`); the test here takes
the CLI's door (`hearth memory forget`) instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from adapters.training import registry
from adapters.training.config import RefreshPolicy, TrainConfig
from adapters.training.errors import AdapterError
from agent.cli.main import main
from agent.foundation import paths
from agent.foundation.crashlog import log_crash
from memory.embed import HashEmbedder
from memory.store import Store
from tests.adapters.adapter_helpers import seed
from tests.conftest import write_lora_adapter

MARKER = "zq-MARKER-7781-xv"


def encodings(marker: str) -> list[bytes]:
    """The byte forms a marker can take in a file (the same helper as 11a's
    test_rel_forget_everywhere.py): as typed, lower- and upper-case, UTF-8 and UTF-16."""
    forms = {marker, marker.lower(), marker.upper()}
    return sorted({f.encode(enc) for f in forms for enc in ("utf-8", "utf-16-le", "utf-16-be")})


def files_holding(home: Path, needle: str) -> list[Path]:
    """Every file under `home` holding any form of `needle`, links not followed."""
    needles = encodings(needle)
    hits = []
    for root, _, names in os.walk(home):
        for name in names:
            path = Path(root) / name
            if not path.is_symlink() and path.is_file():
                data = path.read_bytes()
                if any(n in data for n in needles):
                    hits.append(path)
    return hits


def folder(version: str) -> Path:
    return registry.root() / version


def failed_refresh(store: Store, tmp_path: Path) -> None:
    """A refresh that dies after writing its run folder (the base cannot be loaded), as a
    killed or crashed one leaves it."""
    from adapters.jobs import refresh

    base = registry.Base("gone", tmp_path / "no-such-model", "c0ffee")
    policy = RefreshPolicy(min_accepted=3, min_valid=1, skip_on_battery=False,
                           skip_if_active_minutes=0)
    with pytest.raises(AdapterError, match="cannot load the base model"):
        refresh.refresh(store, base, policy, TrainConfig(iters=1), force=True)


def trained_adapter(store: Store, model_dir: Path, tmp_path: Path, ids: list[str], n: int) -> str:
    base = registry.Base("tiny", model_dir, "tiny-checksum")
    version = registry.begin(store, base, f"snap-{n}", len(ids), 1, {})
    src = write_lora_adapter(model_dir, tmp_path / f"src{n}", seed=n)
    folder = registry.write_folder(version, src, {"base_model_id": "tiny", "message_ids": ids,
                                                  "base_checksum": "tiny-checksum"})
    registry.record(store, version, folder, True, "promote", "test", {})
    return version


def test_a_failed_runs_copies_go_when_its_data_changes(tmp_path: Path) -> None:
    with Store.open(embedder=HashEmbedder()) as store:
        seed(store, [(f"q{i}", f"{MARKER} answer {i}") for i in range(4)])
        failed_refresh(store, tmp_path)
        runs = list((registry.root() / ".runs").iterdir())
        assert len(runs) == 1 and MARKER in (runs[0] / "train.jsonl").read_text()
        seed(store, [(f"other {i}", f"other answer {i}") for i in range(3)])
        failed_refresh(store, tmp_path)  # a new snapshot: the stale run is removed first
        assert [r.name for r in (registry.root() / ".runs").iterdir()] != [runs[0].name]
        assert len(list((registry.root() / ".runs").iterdir())) == 1


def test_marker_through_crash_run_and_adapter_leaves_no_byte(
        tmp_path: Path, tiny_model_dir: Path, hearth_home: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # crash: a crashing command that carried the marker (the path main() takes on a crash)
    monkeypatch.setattr(sys, "argv", ["hearth", "ask", f"my code is {MARKER}"])
    log_crash(RuntimeError(f"failed on {MARKER!r}"), "cli")
    with Store.open(embedder=HashEmbedder()) as store:
        ids = seed(store, [(f"question {i}", f"{MARKER} answer {i}") for i in range(4)])
        conversations = [store.get_message(i).conversation_id for i in ids]
        failed_refresh(store, tmp_path)  # training run: .runs/<snapshot>/train.jsonl
        learned = trained_adapter(store, tiny_model_dir, tmp_path, ids, 1)
        newer = trained_adapter(store, tiny_model_dir, tmp_path, [], 2)  # `learned` retires
        assert store.get_adapter_version(learned)["status"] == "retired"
    assert any(".runs" in str(p) for p in files_holding(hearth_home, MARKER))  # teeth
    assert folder(learned).is_dir()

    for conversation in conversations:
        assert main(["memory", "forget", conversation, "--what", "conversation"]) == 0
    capsys.readouterr()

    left = files_holding(hearth_home, MARKER)
    assert left == [], f"the marker survives forgetting in {left}"
    assert not folder(learned).exists(), "a retired adapter kept forgotten answers"
    assert folder(newer).is_dir()
    with Store.open(embedder=HashEmbedder()) as store, pytest.raises(AdapterError):
        registry.activate(store, learned, "tiny-checksum")
    assert paths.data_dir().is_dir()


def test_an_active_adapter_that_learned_a_forgotten_answer_goes_at_the_next_refresh(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    from adapters.jobs import refresh

    with Store.open(embedder=HashEmbedder()) as store:
        ids = seed(store, [(f"q{i}", f"{MARKER} {i}") for i in range(2)])
        learned = trained_adapter(store, tiny_model_dir, tmp_path, ids, 1)
        assert (store.active_adapter() or {}).get("id") == learned
        for mid in ids:
            store.forget_message(mid)
        base = registry.Base("tiny", tiny_model_dir, "tiny-checksum")
        assert registry.serving_path(store, base.checksum)[0] is None  # not served meanwhile
        result = refresh.refresh(store, base, RefreshPolicy(skip_on_battery=False,
                                                            skip_if_active_minutes=0))
        assert result.status == "deactivated" and store.active_adapter() is None
        assert not folder(learned).exists()


def test_a_killed_evals_temp_folder_is_cleaned_at_the_next_start() -> None:
    from agent.cli import eval_cmds

    dead = paths.eval_tmp_dir() / f"{eval_cmds.TMP_PREFIX}999999999-abc"  # no such pid
    dead.mkdir()
    (dead / "train.jsonl").write_text(MARKER)
    mine = paths.eval_tmp_dir() / f"{eval_cmds.TMP_PREFIX}{os.getpid()}-def"  # still running
    mine.mkdir()
    assert eval_cmds.clean_stale_tmp() == [dead]
    assert not dead.exists() and mine.is_dir()
    assert paths.eval_tmp_dir().is_relative_to(paths.cache_dir())
