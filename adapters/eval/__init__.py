"""`hearth eval`: does personalisation work? Base vs retrieval vs adapter vs both, in numbers.

One experiment (`experiment.run_experiment`) on held-out question/answer pairs:
- `data`: the pairs (the user's accepted answers, an mlx-lm JSONL file, or the demo persona)
  and their stable split by hash;
- `context`: a temporary store holding the training part as past accepted answers, and the
  prompts each condition serves (assembled by `agent.llm.prompt.assemble`, as the chat does);
- `measure`: per-item answer NLL, greedy answers, token F1 and ROUGE-L, all through the shared
  evaluator (`adapters.training.evaluate`);
- `stats`: token-weighted means and paired bootstrap intervals;
- `report`: the Markdown table, results.json and chart.png.

The four conditions are `CONDITIONS`. Importing this package does not import MLX.
"""

from __future__ import annotations

CONDITIONS = ("base", "rag", "adapter", "both")
"""base: the bare model; rag: + retrieval from the training part; adapter: + a LoRA adapter
trained on the training part; both: adapter + retrieval."""

__all__ = ["CONDITIONS"]
