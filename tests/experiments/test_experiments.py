"""Live A/B trials through real Chat turns on the tiny model and a real temporary store:
arm assignment, serving, acceptance counting, decisions stored, promotion, stop restores the
incumbent, and a gate-failed adapter is never served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.training import experiments, registry
from adapters.training.ab_stats import Rule
from adapters.training.errors import AdapterError
from agent.core.turn import Chat
from agent.llm.runtime import Runtime, SamplingOptions
from memory.embed import HashEmbedder
from memory.store import Store
from tests.experiments.helpers import BASE_CHECKSUM, register_adapter

FAST = Rule(min_rated=4, look_every=2, max_rated=12)


@pytest.fixture
def store(hearth_home: Path) -> Iterator[Store]:
    s = Store.open(embedder=HashEmbedder())
    yield s
    s.close()


@pytest.fixture
def chat(tiny_runtime: Runtime, store: Store) -> Chat:
    return Chat(tiny_runtime, store, options=SamplingOptions(temperature=0.0, max_tokens=3))


def _two_adapters(store: Store, model_dir: Path, tmp: Path) -> tuple[str, str]:
    incumbent = register_adapter(store, model_dir, tmp, seed=1)
    registry.activate(store, incumbent, BASE_CHECKSUM)
    candidate = register_adapter(store, model_dir, tmp, seed=2)
    return incumbent, candidate


def test_a_gate_failed_adapter_cannot_go_on_trial(store: Store, tiny_model_dir: Path,
                                                  tmp_path: Path) -> None:
    bad = register_adapter(store, tiny_model_dir, tmp_path, seed=3, passed=False)
    with pytest.raises(AdapterError, match="never served|did not pass"):
        experiments.start_adapter_trial(store, bad, BASE_CHECKSUM)
    assert store.running_experiment() is None


def test_each_conversation_gets_a_stable_recorded_arm_and_its_adapter(
        chat: Chat, store: Store, tiny_model_dir: Path, tmp_path: Path) -> None:
    incumbent, candidate = _two_adapters(store, tiny_model_dir, tmp_path)
    eid = experiments.start_adapter_trial(store, candidate, BASE_CHECKSUM, rule=FAST)
    served: dict[str, set[str | None]] = {"incumbent": set(), "candidate": set()}
    for i in range(8):
        chat.new_conversation()
        first = chat.ask(f"question {i}")
        second = chat.ask(f"follow-up {i}")
        assert first.arm == second.arm  # stable within a conversation
        assert store.conversation_arm(chat.conversation_id or "") == (eid, first.arm)
        served[first.arm or ""].add(first.adapter_version)
        assert store.get_message(first.message_id or "").adapter_version == first.adapter_version
    assert served == {"incumbent": {incumbent}, "candidate": {candidate}}


def test_stopping_restores_the_incumbent_at_the_next_turn(
        chat: Chat, store: Store, tiny_model_dir: Path, tmp_path: Path) -> None:
    incumbent, candidate = _two_adapters(store, tiny_model_dir, tmp_path)
    eid = experiments.start_adapter_trial(store, candidate, BASE_CHECKSUM, rule=FAST)
    for i in range(20):  # find a candidate conversation
        chat.new_conversation()
        if chat.ask(f"q{i}").arm == "candidate":
            break
    assert chat.adapter_version() == candidate
    experiments.stop(store)
    done = chat.ask("next turn, same conversation")
    assert done.arm is None and done.adapter_version == incumbent
    assert store.get_experiment(eid)["status"] == "stopped"
    assert store.experiment_decisions(eid)[-1]["action"] == "stop"


def test_a_candidate_that_goes_bad_is_not_served_and_the_trial_stops(
        chat: Chat, store: Store, tiny_model_dir: Path, tmp_path: Path) -> None:
    incumbent, candidate = _two_adapters(store, tiny_model_dir, tmp_path)
    eid = experiments.start_adapter_trial(store, candidate, BASE_CHECKSUM, rule=FAST)
    store.update_adapter_version(candidate, status="rejected")  # e.g. re-judged as failed
    for i in range(6):
        chat.new_conversation()
        done = chat.ask(f"q{i}")
        assert done.adapter_version == incumbent and done.arm is None
    assert store.get_experiment(eid)["status"] == "stopped"


def _rate_until_done(chat: Chat, store: Store, eid: str, accept: dict[str, bool]) -> None:
    for i in range(200):
        if store.get_experiment(eid)["status"] != "running":
            return
        chat.new_conversation()
        done = chat.ask(f"question number {i}")
        if done.arm is None:
            continue
        if accept[done.arm]:
            chat.feedback("accepted")
        else:
            chat.feedback("rejected")


def test_a_clearly_better_candidate_is_promoted_with_its_numbers_stored(
        chat: Chat, store: Store, tiny_model_dir: Path, tmp_path: Path) -> None:
    _, candidate = _two_adapters(store, tiny_model_dir, tmp_path)
    eid = experiments.start_adapter_trial(store, candidate, BASE_CHECKSUM, rule=FAST)
    _rate_until_done(chat, store, eid, {"incumbent": False, "candidate": True})
    chat.new_conversation()
    chat.ask("one more")  # the promotion happens at a turn: this one sees the result
    assert store.get_experiment(eid)["status"] == "promoted"
    assert store.active_adapter()["id"] == candidate  # type: ignore[index]
    last = store.experiment_decisions(eid)[-1]
    assert last["action"] == "promote" and last["n_a"] >= FAST.min_rated
    assert last["acc_b"] == last["n_b"] and last["acc_a"] == 0 and last["p_better"] > 0.99


def test_a_worse_candidate_keeps_the_incumbent(
        chat: Chat, store: Store, tiny_model_dir: Path, tmp_path: Path) -> None:
    incumbent, candidate = _two_adapters(store, tiny_model_dir, tmp_path)
    eid = experiments.start_adapter_trial(store, candidate, BASE_CHECKSUM, rule=FAST)
    _rate_until_done(chat, store, eid, {"incumbent": True, "candidate": False})
    chat.new_conversation()
    assert chat.ask("after").adapter_version == incumbent
    assert store.get_experiment(eid)["status"] == "kept"
    assert store.active_adapter()["id"] == incumbent  # type: ignore[index]


def test_prompt_trial_serves_the_candidate_prompt_only_in_its_arm_until_promoted(
        chat: Chat, store: Store) -> None:
    old_version, _ = store.active_system_prompt()
    eid = experiments.start_prompt_trial(store, "You are terse.", rule=FAST)
    assert store.active_system_prompt()[0] == old_version  # not served outside the trial
    seen = set()
    for i in range(10):
        chat.new_conversation()
        done = chat.ask(f"q{i}")
        msg = store.get_message(done.message_id or "")
        seen.add((done.arm, msg.prompt_version))
        assert msg.prompt_messages[0]["content"] == store.get_system_prompt(msg.prompt_version or 0)
    versions = {v for _, v in seen}
    assert ("incumbent", old_version) in seen and len(versions) == 2
    _rate_until_done(chat, store, eid, {"incumbent": False, "candidate": True})
    chat.new_conversation()
    chat.ask("after")
    assert store.get_experiment(eid)["status"] == "promoted"
    assert store.active_system_prompt()[1] == "You are terse."


def test_old_conversations_are_not_enrolled(chat: Chat, store: Store, tiny_model_dir: Path,
                                            tmp_path: Path) -> None:
    incumbent, candidate = _two_adapters(store, tiny_model_dir, tmp_path)
    chat.ask("before the trial")
    experiments.start_adapter_trial(store, candidate, BASE_CHECKSUM, rule=FAST)
    done = chat.ask("same old conversation")
    assert done.arm is None and done.adapter_version == incumbent


def test_reloaded_answers_keep_their_arm_and_history_show_prints_it(
        chat: Chat, store: Store, tiny_model_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """An answer reopened from history names the arm that served it (while the trial ran);
    one given in the same conversation after the trial ended names none."""
    from agent.cli.main import main

    _, candidate = _two_adapters(store, tiny_model_dir, tmp_path)
    experiments.start_adapter_trial(store, candidate, BASE_CHECKSUM, rule=FAST)
    arms = {}
    for i in range(10):
        chat.new_conversation()
        arm = chat.ask(f"q{i}").arm
        arms[arm] = chat.conversation_id
        if len(arms) == 2:
            break
    assert set(arms) == {"incumbent", "candidate"}
    cid = arms["candidate"]
    chat.conversation_id = cid
    experiments.stop(store)
    chat.ask("after the trial")
    answers = [m for m in store.conversation_messages(cid or "") if m.role == "assistant"]
    assert [m.arm for m in answers] == ["candidate", None]
    incumbent_answers = [m for m in store.conversation_messages(arms["incumbent"] or "")
                         if m.role == "assistant"]
    assert [m.arm for m in incumbent_answers] == ["incumbent"]
    assert main(["history", "show", cid or ""]) == 0
    out = capsys.readouterr().out
    assert f"adapter {candidate} · prompt v" in out and "A/B candidate" in out
    assert out.count("A/B") == 1  # the answer after the trial is not marked
