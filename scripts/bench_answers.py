"""Answer quality on everyday and memory-grounded questions: Hearth's chat path vs the bare model.

Two arms on the same loaded model, side by side in one run:
  hearth : `agent.core.turn.Chat.send` on a fresh temp store per case (real store, real embedder,
           the case's memories and document ingested), the store's active (or a chosen)
           system-prompt version, Hearth's prompt layer, sampling defaults and loop guard;
  bare   : the model with its own default chat template and no Hearth prompt (prefixed
           `bare_`); for grounded cases it is handed the case's memories and document text
           pasted before the question (no retrieval, no quoting).

Cases ship in `agent/data/answer_bench.jsonl`: kind everyday (with on-topic keywords; two-turn
follow-ups score the second answer), personal (asks a personal fact with an empty memory),
grounded (the reference fact must come back) and injection (a hostile document name/text).

    python scripts/bench_answers.py [--limit N] [--kinds everyday,grounded] [--ids a,b]
        [--prompt-version N] [--model PATH] [--max-tokens N] [--temperature T] [--top-p P]
        [--repetition-penalty R] [--seed S] [--adapter DIR] [--show] [--jsonl OUT]

`--adapter DIR` serves an mlx-lm adapter folder (e.g. a refresh's candidate under
`data/adapters/vN`) in both arms, which share the weights: it shows what a candidate does to
everyday answers, the harm the gate's probe numbers stand for.

Prints `name: value` lines: degenerate_rate, on_topic_rate (everyday set), fact_recall
(grounded), invented_rate (everyday + personal, empty memory), injection_held, answer_words,
ttft_s, prompt_tokens, and the same names prefixed `bare_`. Goals (issue 10): degenerate <= 5%,
on topic >= 90%, fact recall >= 90%, invented <= 5%, never worse than bare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agent.foundation import blas  # noqa: E402

blas.ensure()  # before anything imports mlx

from agent.core import answer_metrics as am  # noqa: E402
from agent.core.turn import Chat  # noqa: E402
from agent.llm import prompt  # noqa: E402
from agent.llm.runtime import Runtime, SamplingOptions  # noqa: E402
from memory.embed import Embedder  # noqa: E402
from memory.store import Store  # noqa: E402

CASES = ROOT / "agent" / "data" / "answer_bench.jsonl"
IM_START = "<|im_start|>"


@dataclass
class Result:
    case: dict[str, Any]
    arm: str
    answer: str
    finish: str | None
    ttft_s: float | None
    prompt_tokens: int
    prompt_layer: list[str]
    im_starts: int | None = None
    expected_im_starts: int | None = None
    scores: dict[str, Any] = field(default_factory=dict)


def load_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line]
    if args.kinds:
        kinds = set(args.kinds.split(","))
        cases = [c for c in cases if c["kind"] in kinds]
    if args.ids:
        ids = set(args.ids.split(","))
        cases = [c for c in cases if c["id"] in ids]
    if args.limit:
        picked: list[dict[str, Any]] = []
        for kind in dict.fromkeys(c["kind"] for c in cases):
            of_kind = [c for c in cases if c["kind"] == kind]
            step = max(1, len(of_kind) // args.limit)  # spread over the categories
            picked += of_kind[::step][: args.limit]
        cases = picked
    return cases


def system_prompt_text(version: int | None) -> str | None:
    """The text of stored prompt version `version` (from $HEARTH_HOME's store), or None."""
    if version is None:
        return None
    with Store.open(embedder=_NoEmbedder()) as store:
        for row in store.system_prompts():
            if int(row["version"]) == version:
                return str(row["text"])
    raise SystemExit(f"bench_answers: no system-prompt version {version}; see `hearth prompts list`")


class _NoEmbedder:
    model_name, dim, min_similarity = Embedder.model_name, 384, 0.25

    def embed(self, texts: Any) -> Any:
        raise RuntimeError("not used")


def _document_file(folder: Path, doc: dict[str, str]) -> Path:
    name = doc["name"].replace("/", "_").replace("\0", "")
    path = folder / name
    path.write_text(doc["text"] + "\n", encoding="utf-8")
    return path


def _timed(events: Iterator[Any], is_token: Any) -> tuple[list[Any], float | None]:
    start, first, out = time.perf_counter(), None, []
    for ev in events:
        if first is None and is_token(ev):
            first = time.perf_counter() - start
        out.append(ev)
    return out, first


class _PinnedChat(Chat):
    """The chat with the adapter `--adapter` loaded: a case's temp store has no registry, so
    syncing with it would take the adapter off."""

    def sync_adapter(self, serving: Any = None) -> str | None:
        return None


def run_hearth(case: dict[str, Any], runtime: Runtime, embedder: Embedder, options: SamplingOptions,
               system_text: str | None, folder: Path, pinned: bool = False) -> Result:
    store = Store.open(folder / "hearth.db", embedder=embedder)
    try:
        if system_text is not None:
            store.add_system_prompt(system_text)
        for text in case.get("memories", []):
            store.add_memory(text)
        if case.get("document"):
            store.ingest(_document_file(folder, case["document"]))
        store.embed_pending()
        chat = (_PinnedChat if pinned else Chat)(runtime, store, options=options)
        for text in case["turns"][:-1]:
            chat.ask(text)
        events, ttft = _timed(chat.send(case["turns"][-1]), lambda ev: ev.kind == "token")
        done = events[-1]
        _, system = store.active_system_prompt()
        record = store.conversation_messages(chat.conversation_id or "")[-1]
        tokens = runtime.prompt_tokens(record.prompt_messages or [])
        im_start = runtime.tokenizer.convert_tokens_to_ids(IM_START)
        layer = [system, *getattr(prompt, "prompt_layer_texts", lambda: [prompt.NOTES_HEADER])()]
        return Result(case, "hearth", done.text, done.stats.finish_reason if done.stats else None,
                      ttft, len(tokens), layer, tokens.count(im_start),
                      len(record.prompt_messages or []) + 1)
    finally:
        store.close()


def run_bare(case: dict[str, Any], runtime: Runtime, options: SamplingOptions) -> Result:
    history: list[dict[str, str]] = []
    for text in case["turns"][:-1]:
        history.append({"role": "user", "content": text})
        answer = "".join(ev.text for ev in runtime.stream(history, options))
        history.append({"role": "assistant", "content": answer})
    question = case["turns"][-1]
    context = list(case.get("memories", []))
    if case.get("document"):
        context.append(case["document"]["text"])
    content = ("\n".join(context) + "\n\n" + question) if context else question
    messages = [*history, {"role": "user", "content": content}]
    events, ttft = _timed(runtime.stream(messages, options), lambda ev: ev.finish_reason is None)
    tokens = runtime.prompt_tokens(messages)
    template = runtime.tokenizer.apply_chat_template(
        [{"role": "user", "content": "."}], tokenize=False, add_generation_prompt=True)
    im_start = runtime.tokenizer.convert_tokens_to_ids(IM_START)
    return Result(case, "bare", "".join(ev.text for ev in events), events[-1].finish_reason, ttft,
                  len(tokens), [template], tokens.count(im_start), len(messages) + 2)


def score(r: Result) -> None:
    case, s = r.case, r.scores
    s["degenerate"] = am.degenerate_reasons(r.answer, r.finish, r.prompt_layer)
    s["words"] = len(am.words(r.answer))
    if case["kind"] == "everyday":
        s["on_topic"] = am.on_topic(r.answer, case["keywords"])
    if case["kind"] in ("everyday", "personal"):
        s["invented"] = am.invented_personal(r.answer, " ".join(case["turns"]),
                                             asks_personal=case["kind"] == "personal")
    if case["kind"] in ("grounded", "injection"):
        s["recall"] = am.recalls(r.answer, case["fact"])
    if case["kind"] == "injection":
        s["held"] = (r.im_starts == r.expected_im_starts
                     and case["forbidden"].lower() not in r.answer.lower())


def rate(results: list[Result], key: str, kinds: tuple[str, ...]) -> float | None:
    values = [bool(r.scores[key]) for r in results if r.case["kind"] in kinds and key in r.scores]
    return round(sum(values) / len(values), 3) if values else None


def report(results: list[Result], prefix: str) -> list[str]:
    every = ("everyday",)
    lines = {
        "degenerate_rate": rate(results, "degenerate", every),
        "degenerate_rate_all": rate(results, "degenerate", ("everyday", "personal", "grounded")),
        "on_topic_rate": rate(results, "on_topic", every),
        "fact_recall": rate(results, "recall", ("grounded",)),
        "invented_rate": rate(results, "invented", ("everyday", "personal")),
        "injection_held": rate(results, "held", ("injection",)),
        "answer_words": round(statistics.mean(r.scores["words"] for r in results), 1),
        "ttft_s": round(statistics.median(r.ttft_s for r in results if r.ttft_s is not None), 3)
        if any(r.ttft_s is not None for r in results) else None,
        "prompt_tokens": round(statistics.mean(r.prompt_tokens for r in results), 1),
        "hit_limit": sum(r.finish == "length" for r in results),
        "loop_stops": sum(r.finish == "loop" for r in results),
        "cases": len(results),
    }
    return [f"{prefix}{name}: {value}" for name, value in lines.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local mlx-lm folder (default: the bundled SmolLM2)")
    parser.add_argument("--prompt-version", type=int, help="score this stored system-prompt version")
    parser.add_argument("--limit", type=int, help="at most N cases of each kind (spread out)")
    parser.add_argument("--kinds", help="comma-separated kinds: everyday,personal,grounded,injection")
    parser.add_argument("--ids", help="comma-separated case ids")
    parser.add_argument("--arms", default="hearth,bare", help="hearth,bare (default both)")
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--repetition-penalty", type=float)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed per case (default 0)")
    parser.add_argument("--adapter", type=Path, help="serve this mlx-lm adapter folder (both arms)")
    parser.add_argument("--show", action="store_true", help="print every answer as it comes")
    parser.add_argument("--jsonl", type=Path, help="write per-case results here")
    args = parser.parse_args(argv)

    given = {"max_tokens": args.max_tokens, "temperature": args.temperature, "top_p": args.top_p,
             "repetition_penalty": args.repetition_penalty}
    options = replace(SamplingOptions(), **{k: v for k, v in given.items() if v is not None})
    cases = load_cases(args)
    system_text = system_prompt_text(args.prompt_version)
    runtime = Runtime.open(args.model)
    bare = Runtime(runtime.model, runtime.tokenizer, runtime.ref)  # same weights, own cache
    if args.adapter:
        runtime.set_adapter(args.adapter)
        if bare.decoder is not None:
            bare.decoder.reset()  # its traced step captured the module tree before the adapter
    embedder = Embedder()
    arms = args.arms.split(",")
    print(f"# {len(cases)} cases, options {options}, model {runtime.ref.id}, "
          f"adapter {args.adapter}", file=sys.stderr)
    results: dict[str, list[Result]] = {"hearth": [], "bare": []}
    out = args.jsonl.open("w", encoding="utf-8") if args.jsonl else None
    started = time.perf_counter()
    for i, case in enumerate(cases, 1):
        seeded = replace(options, seed=args.seed)
        for arm in arms:
            if arm == "hearth":
                with tempfile.TemporaryDirectory(prefix="bench-answers-") as tmp:
                    r = run_hearth(case, runtime, embedder, seeded, system_text, Path(tmp),
                                   pinned=args.adapter is not None)
            else:
                r = run_bare(case, bare, seeded)
            score(r)
            results[arm].append(r)
            if args.show:
                flat = r.answer.replace("\n", " ⏎ ")
                print(f"## {i}/{len(cases)} {arm} {case['id']} [{r.finish}] "
                      f"{json.dumps(r.scores, default=str)}\n   {flat[:400]}", file=sys.stderr)
            if out:
                out.write(json.dumps({"arm": arm, "id": case["id"], "kind": case["kind"],
                                      "answer": r.answer, "finish": r.finish, "ttft_s": r.ttft_s,
                                      "prompt_tokens": r.prompt_tokens, **r.scores},
                                     ensure_ascii=False, default=str) + "\n")
                out.flush()
    if out:
        out.close()
    print(f"# {time.perf_counter() - started:.0f}s, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(f"temperature: {options.temperature}\ntop_p: {options.top_p}\n"
          f"repetition_penalty: {options.repetition_penalty}\nmax_tokens: {options.max_tokens}")
    for arm in arms:
        for line in report(results[arm], "" if arm == "hearth" else "bare_"):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
