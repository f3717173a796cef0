"""Export / import round trip, backup, and mlx-lm training-data import."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from memory.embed import HashEmbedder
from memory.errors import StoreError
from memory.store import Store


def fill(store: Store, tmp_path: Path) -> None:
    cid = store.new_conversation("trip")
    store.add_message(cid, "user", "Where should we go? ünïcode ✓")
    prompt = [{"role": "user", "content": "Where should we go? ünïcode ✓"}]
    aid = store.add_message(
        cid,
        "assistant",
        "Lisbon.",
        prompt_messages=prompt,
        hits=store.search("go"),
        model_id="m",
        tokens_prompt=5,
    )
    store.add_feedback(aid, "edited", "Lisbon, in spring.")
    old = store.add_memory("I live in Paris.", source_message_id=aid)
    store.supersede_memory(old, "I live in Lyon.")
    store.add_memory("I like jazz.", "preference", pinned=True)
    forgotten = store.add_memory("temporary")
    store.forget_memory(forgotten, purge=False)
    doc = tmp_path / "doc.md"
    doc.write_text("alpha\n\nbeta")
    store.ingest(doc)
    store.add_system_prompt("Be kind.")
    store.set_setting("theme", {"dark": True})
    a = store.add_adapter_version(hyperparams={"rank": 8}, metrics={"nll": 1.0})
    store.set_active_adapter(a)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_round_trip(store: Store, tmp_path: Path) -> None:
    fill(store, tmp_path)
    first = tmp_path / "export1.jsonl"
    n = store.export_jsonl(first)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    rows = lines(first)
    assert len(rows) == n and rows[0]["type"] == "hearth-export" and rows[0]["version"] == 1
    assert {r["type"] for r in rows[1:]} >= {
        "conversation",
        "message",
        "feedback",
        "memory",
        "system_prompt",
        "setting",
        "document",
        "chunk",
        "adapter_version",
        "deletion",
    }
    with Store.open(tmp_path / "fresh.db", embedder=HashEmbedder()) as fresh:
        report = fresh.import_jsonl(first)
        assert report.errors == [] and report.added["message"] == 2
        second = tmp_path / "export2.jsonl"
        fresh.export_jsonl(second)
        assert lines(second)[1:] == rows[1:]
        assert fresh.search("Lyon", kinds=["memory"])[0].text == "I live in Lyon."
        assert fresh.accepted_examples()[0].target == "Lisbon, in spring."
        assert fresh.active_adapter()["hyperparams"] == {"rank": 8}  # type: ignore[index]
        again = fresh.import_jsonl(first)  # merging twice adds nothing
        assert again.added == {} and again.skipped_existing == len(rows) - 1


def test_import_rejects_other_files(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n')
    with pytest.raises(StoreError, match="not a Hearth export"):
        store.import_jsonl(bad)
    bad.write_text('{"type": "hearth-export", "version": 99}\n')
    with pytest.raises(StoreError, match="newer Hearth"):
        store.import_jsonl(bad)
    bad.write_text("")
    with pytest.raises(StoreError, match="empty"):
        store.import_jsonl(bad)
    bad.write_text(
        '{"type": "hearth-export", "version": 1}\n'
        '{"type": "message", "id": "X", "conversation_id": "missing", "role": "user", '
        '"text": "t", "created_at": "2026-01-01"}\n'
    )
    report = store.import_jsonl(bad)  # the line is reported, nothing half-imported
    assert report.errors == [(2, "refers to a conversations row the file does not contain")]
    assert report.added == {} and store.list_conversations() == []


def test_backup_is_a_private_consistent_copy(store: Store, tmp_path: Path) -> None:
    fill(store, tmp_path)
    dest = store.backup(tmp_path / "backups-dir-is-a-file.db")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    folder = tmp_path / "backups"
    folder.mkdir()
    in_folder = store.backup(folder)
    assert in_folder.parent == folder and in_folder.name.startswith("hearth-backup-")
    with Store.open(dest, embedder=HashEmbedder()) as copy:
        assert [m.text for m in copy.list_memories()] == [m.text for m in store.list_memories()]
        assert copy.accepted_examples() == store.accepted_examples()


def test_import_mlx_lm_formats(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "messages": [
                            {"role": "system", "content": "S"},
                            {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello!"},
                        ]
                    }
                ),
                json.dumps({"prompt": "2+2?", "completion": "4"}),
                json.dumps({"text": "A plain passage."}),
                json.dumps({"messages": [{"role": "user", "content": "no answer"}]}),
                "not json",
                json.dumps({"other": 1}),
            ]
        )
        + "\n"
    )
    report = store.import_training_jsonl(data)
    assert report.added == {"example": 3}
    assert [n for n, _ in report.errors] == [4, 5, 6]
    examples = store.accepted_examples()
    assert [(e.prompt_messages, e.target) for e in examples] == [
        ([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}], "Hello!"),
        ([{"role": "user", "content": "2+2?"}], "4"),
        ([], "A plain passage."),
    ]
    assert store.similar_accepted("2+2?", k=1)[0].target == "4"
    again = store.import_training_jsonl(data)
    assert again.added == {} and again.skipped_existing == 3


def test_experiments_are_exported_imported_and_forgetting_still_holds(store: Store,
                                                                       tmp_path: Path) -> None:
    """Trials, the arm of each conversation and every decision travel in the export; a
    forgotten conversation's arm does not; a trial that was running arrives stopped."""
    kept, gone = store.new_conversation("kept"), store.new_conversation("gone")
    for cid in (kept, gone):
        store.add_message(cid, "user", "Which tea?")
        store.add_message(cid, "assistant", "Green.", prompt_messages=[])
    eid = store.add_experiment("prompt", candidate_prompt_text="Be brief.", incumbent_prompt=1,
                               rule={"min_rated": 20}, note="a test trial")
    store.assign_arm(eid, kept, "candidate")
    store.assign_arm(eid, gone, "incumbent")
    store.add_experiment_decision(eid, "continue", {"look": 1, "p_better": 0.6,
                                  "counts": {"n_a": 1, "acc_a": 1, "n_b": 1, "acc_b": 0}},
                                  "2/20 rated answers per arm before any decision")
    store.forget_conversation(gone)
    path = tmp_path / "export.jsonl"
    store.export_jsonl(path)
    rows = lines(path)
    by_type: dict[str, list[dict]] = {}
    for r in rows[1:]:
        by_type.setdefault(r["type"], []).append(r)
    assert [e["id"] for e in by_type["experiment"]] == [eid]
    assert by_type["experiment"][0]["rule"] == {"min_rated": 20}
    assert [a["conversation_id"] for a in by_type["experiment_arm"]] == [kept]
    assert [(d["action"], d["n_a"], d["numbers"]["p_better"])
            for d in by_type["experiment_decision"]] == [("continue", 1, 0.6)]
    with Store.open(tmp_path / "fresh.db", embedder=HashEmbedder()) as fresh:
        report = fresh.import_jsonl(path)
        assert not report.errors, report.errors
        assert report.added["experiment"] == 1 and report.added["experiment_decision"] == 1
        got = fresh.get_experiment(eid)
        assert got["status"] == "stopped" and "imported" in (got["reason"] or "")
        assert fresh.running_experiment() is None
        assert fresh.conversation_arm(kept) == (eid, "candidate")
        assert [d["reason"] for d in fresh.experiment_decisions(eid)] == [
            "2/20 rated answers per arm before any decision"]
        assert fresh.import_jsonl(path).added == {}  # merging twice adds nothing
