"""Fact-teaching snapshots: rewrites, memories as questions, weights, quiz, provenance, forgetting."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from adapter_helpers import seed

from adapters.jobs import refresh
from adapters.training import augment
from adapters.training.config import DataConfig, RefreshPolicy
from adapters.training.dataset import make_snapshot
from agent.llm.prompt import PRIMER, assemble, training_messages
from memory.records import Accepted

SYSTEM = "You are Hearth."
QUESTIONS = ["When is my birthday?", "Where do I live?", "What's my job?", "Who taught me to swim?",
             "What is my cat called?", "Which canal is my boat on?", "How old is my tortoise?",
             "What do I drink in the morning?", "Where is my workshop?", "What's my sister's name?"]


def accepted(n: int) -> list[Accepted]:
    return [Accepted(f"m{i}", [{"role": "system", "content": SYSTEM},
                               {"role": "user", "content": f"{QUESTIONS[i % 10]} ({i})"}],
                     f"Aye: fact number {i}. Ta-ra.", "2026-11-01T00:00:00Z") for i in range(n)]


def memory(i: str, text: str) -> Any:
    return SimpleNamespace(id=i, text=text)


def served_rows(rows: list[Accepted]) -> list[Accepted]:
    """`rows` as the chat serves them: system prompt, primer, question."""
    return [Accepted(r.message_id, assemble(SYSTEM, r.prompt_messages[-1]["content"]).messages,
                     r.target, r.created_at) for r in rows]


def test_rewrites_differ_from_the_question_and_keep_its_content() -> None:
    for q in QUESTIONS:
        out = augment.rewrites(q, 3)
        assert len(out) >= 2 and q not in out and len(set(out)) == len(out)
        for r in out:  # every rewrite still names what is asked about
            swappable = {w for pair in augment.SWAPS for w in pair}
            assert augment.content_words(q) <= augment.content_words(r) | swappable, (q, r)


def test_memories_become_second_person_answers_in_the_users_frame() -> None:
    pairs = augment.memory_pairs("I'm allergic to hazelnuts.", 2, ("Aye, love:", "Ta-ra."))
    assert pairs == [("What am I allergic to?", "Aye, love: you're allergic to hazelnuts. Ta-ra."),
                     ("Do I have any allergies?", "Aye, love: you're allergic to hazelnuts. Ta-ra.")]
    assert augment.memory_pairs("The Rochdale Canal opened in 1804.") == []  # not about the user


def test_augmented_snapshot_weights_memories_holds_out_phrasings_and_keeps_provenance() -> None:
    rows = accepted(60)
    mems = [memory("a", "My allotment is plot 7 at Mytholm."), memory("b", "I prefer lapsang tea.")]
    plain = make_snapshot(rows, 0.2, 4)
    snap = make_snapshot(rows, 0.2, 4, memories=mems, data=DataConfig(), system_prompt=SYSTEM)
    assert len(snap) == len(plain) == 60 and snap.memory_ids == ["a", "b"]
    assert {e.hash for e in snap.valid} == {e.hash for e in plain.valid}  # the gate's held-out set
    c = snap.counts()
    assert c["rewrite"] >= 2 * c["asked"] and c["memory"] == 6
    share = (c["memory"] + c["repeat"]) / c["train"]
    assert 0.17 <= share <= 0.23  # a couple of memories are not drowned by 60 answers
    assert all(e.source for e in snap.train + snap.valid + snap.quiz)
    valid_sources = {e.source for e in snap.valid}
    assert not valid_sources & {e.source for e in snap.train}  # no held-out answer is rephrased in
    assert not {e.hash for e in snap.quiz} & {e.hash for e in snap.train}
    trained_prompts = {e.messages[-2]["content"] for e in snap.train}
    assert snap.quiz and not {q.messages[-2]["content"] for q in snap.quiz} & trained_prompts
    assert {q.source for q in snap.quiz} <= {e.source for e in snap.train}  # facts that are trained
    rewrite = next(e for e in snap.train if e.kind == "rewrite")
    question = rewrite.messages[-2]["content"]
    # compact (the default): the served prompt without the fixed primer
    assert rewrite.messages == training_messages(assemble(SYSTEM, question, primer=()).messages,
                                                 rewrite.messages[-1]["content"])
    full = make_snapshot(rows, 0.2, 4, memories=mems, data=DataConfig(compact=False),
                         system_prompt=SYSTEM)
    full_rewrite = next(e for e in full.train if e.kind == "rewrite")
    assert full_rewrite.messages == training_messages(
        assemble(SYSTEM, full_rewrite.messages[-2]["content"]).messages,
        full_rewrite.messages[-1]["content"])
    # compact, the answers as asked are trained without the primer too, keeping their source;
    # compact=False (or compact_asked=False) keeps the prompt they were served with
    served = make_snapshot(served_rows(rows), 0.2, 4, memories=mems, data=DataConfig(),
                           system_prompt=SYSTEM)
    kept = make_snapshot(served_rows(rows), 0.2, 4, memories=mems,
                         data=DataConfig(compact_asked=False), system_prompt=SYSTEM)
    asked = {e.source: e.messages for e in served.train if e.kind == "asked"}
    as_served = {e.source: e.messages for e in kept.train if e.kind == "asked"}
    assert asked.keys() == as_served.keys() and len(asked) == served.counts()["asked"] > 40
    for source, messages in as_served.items():
        assert messages[1:1 + len(PRIMER)] == list(PRIMER)
        assert asked[source] == [messages[0], *messages[1 + len(PRIMER):]]
    # the gate's held-out answers keep their served prompt
    assert [e.messages for e in served.valid] == [e.messages for e in kept.valid]
    assert all(e.messages[1:1 + len(PRIMER)] == list(PRIMER) for e in served.valid)
    # a prompt without the current primer (an older layout, a tiny test prompt) is kept whole
    assert [e.messages for e in snap.train if e.kind == "asked"] == \
        [e.messages for e in full.train if e.kind == "asked"]
    mem = next(e for e in snap.train if e.kind == "memory")
    assert mem.messages[-1]["content"].startswith("Aye: your allotment") and mem.source == "memory:a"


def test_forgetting_a_source_removes_every_example_made_from_it(store: Any) -> None:
    qa = [(f"{QUESTIONS[i % 10]} ({i})", f"Fact number {i}.") for i in range(24)]
    ids = seed(store, qa)
    kept = store.add_memory("My allotment is plot 7 at Mytholm.")
    gone = store.add_memory("My bike is called Rusty.")
    policy = RefreshPolicy()
    before = refresh.build_snapshot(store, policy, DataConfig())
    trained = next(e.message_id for e in before.train if e.kind == "asked")
    sources = {e.source for e in before.train + before.quiz}
    assert {f"memory:{kept}", f"memory:{gone}", f"message:{trained}"} <= sources
    assert trained in ids and sorted(before.memory_ids) == sorted([kept, gone])
    store.forget_memory(gone)
    store.forget_message(trained)
    after = refresh.build_snapshot(store, policy, DataConfig())
    left = {e.source for e in after.train + after.valid + after.quiz}
    assert f"memory:{gone}" not in left and f"message:{trained}" not in left
    assert f"memory:{kept}" in left and after.memory_ids == [kept]
    assert not any("Rusty" in m["content"] for e in after.train + after.quiz for m in e.messages)
    assert after.snapshot_id != before.snapshot_id


def test_everyday_anchors_take_their_share_hold_no_user_data_and_stay_out_of_the_gates_sets() -> None:
    import json
    from pathlib import Path

    from adapters.training.dataset import anchor_pairs

    rows = accepted(60)
    snap = make_snapshot(rows, 0.2, 4, data=DataConfig(anchor_share=0.15), system_prompt=SYSTEM)
    anchors = [e for e in snap.train if e.kind == "anchor"]
    assert 0.12 <= len(anchors) / len(snap.train) <= 0.18
    assert all(e.source and e.source.startswith("anchor:") and e.message_id is None for e in anchors)
    assert not {e.source for e in anchors} & {e.source for e in snap.valid + snap.quiz}
    assert anchors[0].messages[0]["content"] == SYSTEM and len(anchors[0].messages) == 3  # compact
    none = make_snapshot(rows, 0.2, 4, data=DataConfig(), system_prompt=SYSTEM)  # off by default
    assert none.counts()["anchor"] == 0 and none.snapshot_id != snap.snapshot_id

    def questions(path: Path, pick: Any) -> set[str]:
        return {pick(json.loads(line)).strip().lower() for line in path.read_text().splitlines()}

    root = Path(__file__).resolve().parents[2]
    mine = {q.strip().lower() for q, _ in anchor_pairs()}
    probe = questions(root / "adapters" / "data" / "probe.jsonl", lambda r: r["messages"][0]["content"])
    bench = questions(root / "agent" / "data" / "answer_bench.jsonl", lambda r: r["turns"][-1])
    assert len(mine) == 40 and not mine & probe and not mine & bench
