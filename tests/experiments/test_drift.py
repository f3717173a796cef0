"""The drift monitor on a real store: acceptance falling below the launch rate and questions
moving away from the training snapshot mark the serving adapter stale; the refresh policy
then retrains without waiting for new answers; doctor says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adapters.training import drift, registry
from adapters.training.drift import DriftConfig
from memory.embed import HashEmbedder
from memory.store import Store
from tests.experiments.helpers import BASE_CHECKSUM, register_adapter

SYSTEM = {"role": "system", "content": "You are Hearth."}


@pytest.fixture
def store(hearth_home: Path) -> Iterator[Store]:
    s = Store.open(embedder=HashEmbedder())
    yield s
    s.close()


def served(store: Store, version: str, kind: str, question: str = "How are the bees?") -> str:
    conv = store.new_conversation()
    store.add_message(conv, "user", question)
    mid = store.add_message(conv, "assistant", "Aye, love: fine.", adapter_version=version,
                            prompt_messages=[SYSTEM, {"role": "user", "content": question}])
    store.add_feedback(mid, kind)
    return mid


def test_acceptance_drop_marks_stale_and_a_new_adapter_clears_it(
        store: Store, tiny_model_dir: Path, tmp_path: Path) -> None:
    v1 = register_adapter(store, tiny_model_dir, tmp_path, seed=1, activate=True)
    config = DriftConfig(window=20)
    rng = np.random.default_rng(0)
    for _ in range(20):
        served(store, v1, "accepted" if rng.random() < 0.85 else "rejected")
    assert not drift.check(store, config).stale  # launch rate known, no drop
    after = None
    for i in range(1, 41):  # the user's taste changes: 20% acceptance now
        served(store, v1, "accepted" if rng.random() < 0.2 else "rejected")
        if drift.check(store, config).stale:
            after = i
            break
    assert after is not None and after <= 20
    reason = drift.stale_reason(store)
    assert reason is not None and v1 in reason and "acceptance fell" in reason
    v2 = register_adapter(store, tiny_model_dir, tmp_path, seed=2)
    registry.activate(store, v2, BASE_CHECKSUM)
    assert drift.stale_reason(store) is None  # the mark named v1


def test_stable_acceptance_is_not_flagged(store: Store, tiny_model_dir: Path, tmp_path: Path) -> None:
    v1 = register_adapter(store, tiny_model_dir, tmp_path, seed=1, activate=True)
    rng = np.random.default_rng(1)
    for _ in range(80):
        served(store, v1, "accepted" if rng.random() < 0.7 else "rejected")
        assert not drift.check(store, DriftConfig(window=20)).stale


def test_questions_moving_away_from_the_training_data(store: Store, tiny_model_dir: Path,
                                                      tmp_path: Path) -> None:
    import json

    trained = [served(store, "", "accepted", f"how do I prune the roses in bed {i}")
               for i in range(10)]
    v1 = register_adapter(store, tiny_model_dir, tmp_path, seed=1, activate=True)
    folder = Path(store.get_adapter_version(v1)["path"])
    manifest = json.loads((folder / registry.MANIFEST).read_text())
    manifest["message_ids"] = trained
    (folder / registry.MANIFEST).write_text(json.dumps(manifest))
    embedder = HashEmbedder()
    for i in range(10):
        store.add_message(store.new_conversation(), "user", f"how do I prune the roses in pot {i}")
    near = drift.check(store, DriftConfig(window=10), embedder=embedder)
    assert not near.stale and near.question_distance is not None
    for i in range(10):
        store.add_message(store.new_conversation(), "user",
                          f"compile kernel module quantum tax invoice {i} zebra")
    far = drift.check(store, DriftConfig(window=10), embedder=embedder)
    assert far.stale and "questions moved away" in far.reasons[0]
    assert far.question_distance is not None and far.question_distance > near.question_distance


def test_a_stale_adapter_is_retrained_by_the_next_refresh(store: Store, tiny_model_dir: Path) -> None:
    from adapters.jobs import refresh
    from adapters.training.config import GateConfig, RefreshPolicy, TrainConfig
    from tests.adapters.adapter_helpers import pairs, seed

    policy = RefreshPolicy(min_accepted=20, min_new_accepted=100, skip_on_battery=False,
                           skip_if_active_minutes=0)
    fast = TrainConfig(num_layers=2, learning_rate=1e-2, iters=4, steps_per_eval=4, steps_per_save=4)
    lenient = GateConfig(min_improvement=-10.0, max_probe_regression=5.0,
                         max_probe_regression_vs_base=5.0)
    seed(store, pairs(24))
    first = refresh.refresh(store, tiny_model_dir, policy, fast, lenient)
    assert first.status == "promoted", first.reason
    for i in range(20):
        served(store, first.version or "", "accepted", f"Question {i}: who keeps the lighthouse?")
    assert refresh.refresh(store, tiny_model_dir, policy, fast, lenient).status == "up_to_date"
    for i in range(20):
        served(store, first.version or "", "rejected", f"Question {i}: who keeps the lighthouse now?")
    again = refresh.refresh(store, tiny_model_dir, policy, fast, lenient)
    assert again.status == "promoted" and again.version != first.version
    assert drift.stale_reason(store) is None  # the new adapter is not stale
    logged = refresh.log_path().read_text()
    assert '"event": "stale"' in logged and "acceptance fell" in logged
