"""Rows of live A/B trials (m007) and the read-outs that trials, drift and preference
training need: experiments, the arm each conversation got, the rule's looks, rated answers.

Only SQL and row shaping live here; what an arm serves, when to stop and what to promote is
decided in `adapters.training.experiments` / `adapters.training.ab_stats`. Experiments and decisions come back
as dicts with JSON columns decoded; rated answers as `RatedAnswer` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from agent.foundation.ids import new_id, now_iso
from memory.db import write
from memory.errors import NotFoundError, StoreError
from memory.records import from_json, to_json

ARMS = ("incumbent", "candidate")
ENDED = ("promoted", "kept", "stopped")


@dataclass(frozen=True)
class RatedAnswer:
    """An assistant answer with its latest feedback (kind None: not rated yet)."""

    message_id: str
    conversation_id: str
    text: str
    kind: str | None
    edited_text: str | None
    created_at: str
    adapter_version: str | None
    prompt_version: int | None
    prompt_messages: list[dict[str, str]] | None
    arm: str | None = None
    forgotten: bool = False


def _experiment_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["rule"] = from_json(out.get("rule"), {})
    return out


def add_experiment(db: Database, kind: str, *, candidate_adapter: str | None = None,
                   incumbent_adapter: str | None = None, candidate_prompt_text: str | None = None,
                   incumbent_prompt: int | None = None, split: float = 0.5,
                   rule: dict[str, Any] | None = None, note: str | None = None) -> str:
    """Start an experiment (one transaction; a prompt trial stores its candidate text as a new
    system-prompt version that stays unserved outside the trial until promoted)."""
    if kind not in ("adapter", "prompt"):
        raise StoreError(f"Experiment kind {kind!r} is not 'adapter' or 'prompt'.")
    eid = new_id()
    with write(db):
        if db.execute("SELECT 1 FROM experiments WHERE status = 'running'").fetchone():
            raise StoreError("An experiment is already running; stop it first "
                             "(`hearth experiments stop`).")
        candidate_prompt = None
        if kind == "prompt":
            if not (candidate_prompt_text and candidate_prompt_text.strip()):
                raise StoreError("A prompt trial needs the candidate prompt's text.")
            (latest,) = db.execute("SELECT coalesce(max(version), 0) FROM system_prompts").fetchone()
            candidate_prompt = int(latest) + 1
            db.execute("INSERT INTO system_prompts (version, text, created_at) VALUES (?, ?, ?)",
                       [candidate_prompt, candidate_prompt_text, now_iso()])
        db.execute(
            "INSERT INTO experiments (id, kind, status, incumbent_adapter, candidate_adapter, "
            "incumbent_prompt, candidate_prompt, split, rule, note, started_at) "
            "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
            [eid, kind, incumbent_adapter, candidate_adapter, incumbent_prompt, candidate_prompt,
             split, to_json(rule or {}), note, now_iso()],
        )
    return eid


def get_experiment(db: Database, experiment_id: str) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM experiments WHERE id = ?", [experiment_id]))
    if not rows:
        raise NotFoundError(f"No experiment {experiment_id}; list them with "
                            "`hearth experiments list`.")
    return _experiment_row(rows[0])


def list_experiments(db: Database) -> list[dict[str, Any]]:
    """Oldest first."""
    return [_experiment_row(r) for r in db.query("SELECT * FROM experiments ORDER BY started_at, id")]


def running_experiment(db: Database) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM experiments WHERE status = 'running'"))
    return _experiment_row(rows[0]) if rows else None


def end_experiment(db: Database, experiment_id: str, status: str, reason: str) -> bool:
    """Mark a running experiment ended; False if it had already ended (nothing changes)."""
    if status not in ENDED:
        raise StoreError(f"An experiment ends as one of {', '.join(ENDED)}, not {status!r}.")
    with write(db):
        cur = db.execute("UPDATE experiments SET status = ?, ended_at = ?, reason = ? "
                         "WHERE id = ? AND status = 'running'",
                         [status, now_iso(), reason, experiment_id])
    return bool(cur.rowcount)


def assign_arm(db: Database, experiment_id: str, conversation_id: str, arm: str) -> str:
    """Record `conversation_id`'s arm unless it has one; returns the arm it has."""
    if arm not in ARMS:
        raise StoreError(f"An arm is 'incumbent' or 'candidate', not {arm!r}.")
    with write(db):
        db.execute("INSERT OR IGNORE INTO experiment_arms (conversation_id, experiment_id, arm, "
                   "assigned_at) VALUES (?, ?, ?, ?)",
                   [conversation_id, experiment_id, arm, now_iso()])
        row = db.execute("SELECT experiment_id, arm FROM experiment_arms WHERE conversation_id = ?",
                         [conversation_id]).fetchone()
    return str(row[1]) if row and row[0] == experiment_id else ""


def conversation_arm(db: Database, conversation_id: str) -> tuple[str, str] | None:
    """(experiment id, arm) a conversation was given, or None."""
    row = db.execute("SELECT experiment_id, arm FROM experiment_arms WHERE conversation_id = ?",
                     [conversation_id]).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def conversation_created(db: Database, conversation_id: str) -> str | None:
    row = db.execute("SELECT created_at FROM conversations WHERE id = ?", [conversation_id]).fetchone()
    return str(row[0]) if row else None


def add_decision(db: Database, experiment_id: str, action: str, numbers: dict[str, Any],
                 reason: str) -> int:
    """Store one look of the rule (or a stop) with its numbers."""
    counts = numbers.get("counts") or {}
    with write(db):
        cur = db.execute(
            "INSERT INTO experiment_decisions (experiment_id, created_at, action, look, n_a, "
            "acc_a, n_b, acc_b, p_better, p_same, numbers, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [experiment_id, now_iso(), action, numbers.get("look"), int(counts.get("n_a", 0)),
             int(counts.get("acc_a", 0)), int(counts.get("n_b", 0)), int(counts.get("acc_b", 0)),
             numbers.get("p_better"), numbers.get("p_same"), to_json(numbers), reason],
        )
    return int(cur.lastrowid or 0)


def decisions(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    rows = db.query("SELECT * FROM experiment_decisions WHERE experiment_id = ? ORDER BY id",
                    [experiment_id])
    return [{**r, "numbers": from_json(r["numbers"], {})} for r in rows]


_RATED = """
SELECT m.id, m.conversation_id, m.text, m.created_at, m.adapter_version, m.prompt_version,
  m.prompt_messages, f.kind,
  (SELECT e.edited_text FROM feedback e WHERE e.message_id = m.id AND e.kind = 'edited'
   ORDER BY e.id DESC LIMIT 1) AS edited_text,
  a.arm, fe.message_id IS NOT NULL AS forgotten
FROM messages m
LEFT JOIN feedback f ON f.id = (SELECT max(id) FROM feedback WHERE message_id = m.id)
LEFT JOIN experiment_arms a ON a.conversation_id = m.conversation_id
LEFT JOIN forgotten_examples fe ON fe.message_id = m.id
WHERE m.role = 'assistant'
"""


def _rated(row: dict[str, Any]) -> RatedAnswer:
    return RatedAnswer(row["id"], row["conversation_id"], row["text"], row["kind"],
                       row["edited_text"], row["created_at"], row["adapter_version"],
                       row["prompt_version"], from_json(row["prompt_messages"]), row["arm"],
                       bool(row["forgotten"]))


def experiment_answers(db: Database, experiment_id: str) -> list[RatedAnswer]:
    """Answers given in the experiment's conversations while it ran, with their arm."""
    exp = get_experiment(db, experiment_id)
    sql = _RATED + " AND a.experiment_id = ? AND m.created_at >= ?"
    params: list[Any] = [experiment_id, exp["started_at"]]
    if exp.get("ended_at"):
        sql += " AND m.created_at <= ?"
        params.append(exp["ended_at"])
    return [_rated(r) for r in db.query(sql + " ORDER BY m.created_at, m.id", params)]


def rated_answers(db: Database, adapter_version: str | None = None, since: str | None = None,
                  limit: int | None = None, kinds: tuple[str, ...] | None = None) -> list[RatedAnswer]:
    """Rated answers, newest first: served by `adapter_version` ('' = the base model; None =
    any), given after `since`, of the feedback `kinds` if given."""
    sql, params = _RATED + " AND f.kind IS NOT NULL", list[Any]()
    if adapter_version is not None:
        sql += " AND coalesce(m.adapter_version, '') = ?"
        params.append(adapter_version)
    if since is not None:
        sql += " AND m.created_at >= ?"
        params.append(since)
    if kinds:
        sql += f" AND f.kind IN ({', '.join('?' for _ in kinds)})"
        params += list(kinds)
    sql += " ORDER BY m.created_at DESC, m.id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [_rated(r) for r in db.query(sql, params)]


def recent_questions(db: Database, limit: int, since: str | None = None) -> list[str]:
    """The newest user messages' text, newest first."""
    sql, params = "SELECT text FROM messages WHERE role = 'user'", list[Any]()
    if since is not None:
        sql += " AND created_at >= ?"
        params.append(since)
    params.append(int(limit))
    return [str(r[0]) for r in db.execute(sql + " ORDER BY created_at DESC, id DESC LIMIT ?", params)]
