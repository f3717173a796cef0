"""Show `hearth eval` results: a Markdown table, results.json and chart.png.

`markdown(results)` is the table printed on stdout; `write(results, folder)` saves every
number (`results.json`, with a format version that `load` checks) and a bar chart of the four
conditions (`chart.png`, matplotlib with the Agg backend, so no display is needed). Nothing
here measures anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from adapters.eval import CONDITIONS
from adapters.eval.experiment import FORMAT_VERSION, Results
from adapters.eval.stats import Interval, Summary
from adapters.training.errors import AdapterError

LABELS = {
    "base": "base",
    "rag": "rag (base + retrieval)",
    "adapter": "adapter",
    "both": "both (adapter + retrieval)",
}
COLOURS = {"base": "#8c8c8c", "rag": "#4c72b0", "adapter": "#dd8452", "both": "#55a868"}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for the table ('—' for missing or not finite).

    >>> fmt(1.23456), fmt(None), fmt(float("nan"))
    ('1.235', '—', '—')
    """
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def fmt_delta(delta: Interval | None, digits: int = 3) -> str:
    """'+0.120 [+0.050, +0.190]' (a paired 95% interval), or '—'.

    >>> fmt_delta(Interval(-0.5, -0.75, -0.25), 2)
    '-0.50 [-0.75, -0.25]'
    """
    if delta is None:
        return "—"
    return f"{delta.value:+.{digits}f} [{delta.low:+.{digits}f}, {delta.high:+.{digits}f}]"


def _row(name: str, s: Summary) -> str:
    cells = [LABELS[name], fmt(s.nll), fmt_delta(s.delta.get("nll")), fmt(s.f1),
             fmt_delta(s.delta.get("f1")), fmt(s.content_f1), fmt_delta(s.delta.get("content_f1")),
             fmt(s.rougeL), fmt(s.probe_nll)]
    return "| " + " | ".join(cells) + " |"


def markdown(results: Results) -> str:
    """The four conditions as a Markdown table, with a line saying what was measured."""
    head = ("| condition | NLL/token ↓ | Δ NLL vs base | token F1 ↑ | Δ F1 | content F1 ↑ "
            "| Δ content F1 | ROUGE-L ↑ | probe NLL ↓ |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    rows = [_row(name, results.summaries[name]) for name in CONDITIONS]
    return "\n".join([head, rule, *rows, "", footnote(results), *quiz_table(results)])


def quiz_table(results: Results) -> list[str]:
    """The fact quiz as a Markdown table (nothing when the run had no quiz)."""
    quiz = results.meta.get("quiz")
    if not quiz:
        return []
    lines = ["", f"Fact quiz ({quiz['n']} questions asking trained facts in new words; "
             "share of greedy answers that state the fact, 95% bootstrap interval):", "",
             "| condition | facts stated ↑ | 95% interval |", "|---|---:|---:|"]
    for name in CONDITIONS:
        c = quiz["conditions"].get(name, {})
        ci = c.get("ci") or {}
        lines.append(f"| {LABELS[name]} | {c.get('hits', 0)}/{c.get('n', 0)} = {fmt(c.get('score'), 2)} "
                     f"| [{fmt(ci.get('low'), 2)}, {fmt(ci.get('high'), 2)}] |")
    return lines


def footnote(results: Results) -> str:
    """One paragraph: data sizes, training, time, and how to read the intervals."""
    m = results.meta
    train = m.get("train", {})
    secs = m.get("seconds", {}).get("total")
    scored = f"{m.get('n_scored')} held-out pairs scored"
    if m.get("n_scored") != m.get("n_heldout"):
        scored += f" (of {m.get('n_heldout')})"
    return (
        f"{scored}; {m.get('n_train')} training pairs stored as memory, "
        f"{m.get('adapter_train_examples')} trained on ({m.get('adapter_valid_examples')} "
        f"validate the trainer); adapter: {train.get('steps')} steps, best at "
        f"{train.get('best_step')}; model {m.get('model')}; {fmt(secs, 0)} s. "
        "Δ = condition − base with a paired 95% bootstrap interval over held-out pairs; "
        f"content F1 leaves out the stock words {_stock(m)}; "
        "probe NLL measures the weights (retrieval leaves it unchanged)"
        + (f"; the adapter's divergence from the base on the probe (the gate's KL): "
           f"{fmt(m['probe_kl'], 4)} nats/token." if m.get("probe_kl") is not None else ".")
        + (f" `hearth refresh`'s gate would {'promote' if m['gate']['promote'] else 'reject'} "
           f"this adapter ({m['gate']['reason']})." if m.get("gate") else "")
    )


def _stock(meta: dict[str, Any]) -> str:
    words = meta.get("style_words") or []
    return "(" + ", ".join(words[:8]) + (", …" if len(words) > 8 else "") + ")" if words else "(none)"


def load(path: Path) -> Results:
    """Results from a results.json written by `write` (to redraw or re-tabulate them)."""

    raw = json.loads(path.read_text())
    if raw.get("format") != FORMAT_VERSION:
        raise AdapterError(f"{path} has format {raw.get('format')!r}, not {FORMAT_VERSION}: "
                           "rerun `hearth eval --out` with this version")
    summaries = {}
    for name, c in raw["conditions"].items():
        summaries[name] = Summary(
            c["nll"], c["f1"], c["rougeL"], c.get("content_f1", float("nan")), c["n"],
            c["tokens"], c.get("probe_nll"),
            {k: Interval(**v) for k, v in c.get("ci", {}).items()},
            {k: Interval(**v) for k, v in c.get("delta_vs_base", {}).items()})
    return Results(summaries, raw["items"], raw["meta"])


def write(results: Results, folder: Path) -> list[Path]:
    """results.json and chart.png in `folder` (created); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "results.json"
    data.write_text(json.dumps(results.to_dict(), indent=2, ensure_ascii=False) + "\n")
    chart = folder / "chart.png"
    draw_chart(results, chart)
    return [data, chart]


def _panel(ax: Any, results: Results, metric: str, title: str) -> None:
    names = list(CONDITIONS)
    values, low, high = [], [], []
    for name in names:
        s = results.summaries[name]
        value = s.probe_nll if metric == "probe_nll" else getattr(s, metric)
        value = float("nan") if value is None else value
        ci = s.ci.get(metric)
        values.append(value)
        low.append(value - ci.low if ci else 0.0)
        high.append(ci.high - value if ci else 0.0)
    x = range(len(names))
    ax.bar(x, values, color=[COLOURS[n] for n in names], yerr=[low, high], capsize=4)
    ax.set_xticks(list(x), names)
    ax.set_title(title, fontsize=10)
    ax.margins(y=0.12)
    for i, (v, up) in enumerate(zip(values, high, strict=True)):
        if math.isfinite(v):
            ax.annotate(f"{v:.2f}", (i, v + up), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 2), textcoords="offset points")


def _quiz_panel(ax: Any, quiz: dict[str, Any]) -> None:
    names = list(CONDITIONS)
    values, low, high = [], [], []
    for name in names:
        c = quiz["conditions"][name]
        ci = c.get("ci") or {"low": c["score"], "high": c["score"]}
        values.append(c["score"])
        low.append(c["score"] - ci["low"])
        high.append(ci["high"] - c["score"])
    x = range(len(names))
    ax.bar(x, values, color=[COLOURS[n] for n in names], yerr=[low, high], capsize=4)
    ax.set_xticks(list(x), names)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"fact quiz: {quiz['n']} facts asked anew", fontsize=10)
    for i, (v, up) in enumerate(zip(values, high, strict=True)):
        ax.annotate(f"{v:.2f}", (i, v + up), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")


def draw_chart(results: Results, path: Path) -> None:
    """Five panels (NLL, F1, content F1, ROUGE-L, probe NLL): a bar per condition, 95% CIs."""
    import matplotlib  # lazy: imports matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: imports matplotlib

    panels = [("nll", "answer NLL / token (lower is better)"),
              ("f1", "token F1 (higher is better)"),
              ("content_f1", "content F1: facts, not style"),
              ("rougeL", "ROUGE-L (higher is better)"),
              ("probe_nll", "general probe NLL (lower is better)")]
    quiz = results.meta.get("quiz")
    fig, axes = plt.subplots(1, len(panels) + bool(quiz), figsize=(17 + 3.4 * bool(quiz), 3.6))
    for ax, (metric, title) in zip(axes, panels, strict=False):
        _panel(ax, results, metric, title)
    if quiz:
        _quiz_panel(axes[-1], quiz)
    m = results.meta
    fig.suptitle(f"hearth eval: {m.get('n_scored')} held-out pairs, {m.get('model')} "
                 "(bars: 95% bootstrap intervals)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
