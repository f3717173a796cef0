"""Options and progress shared by the command groups: `--model`/`--allow-download` and a
tqdm progress callback. The command modules import this, never `main` (which imports them).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="PATH|REPO",
                        help="an mlx-lm model folder (default: the bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--allow-download", action="store_true",
                        help="allow fetching --model from the Hugging Face hub (off by default)")


def progress_bar(desc: str) -> Any:
    """A tqdm-backed `(done, total)` callback for long work, drawn on stderr."""

    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:  # created on first use: no empty bar when there is nothing to do
            bars.append(tqdm(desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True,
                             disable=not sys.stderr.isatty()))
        bar = bars[0]
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update
