"""`hearth models list|convert`: the converted-model cache."""

from __future__ import annotations

import argparse
import shutil
from typing import Any

from agent.cli.options import progress_bar
from agent.llm import models


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list or convert models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="converted models in the cache")
    ls.set_defaults(handler=cmd_list)
    conv = msub.add_parser("convert", help="convert the bundled GGUF into an mlx-lm folder")
    conv.add_argument("--force", action="store_true", help="convert again even if present")
    conv.add_argument("--quantized", action="store_true", default=None,
                      help="keep 4/8-bit weights (default on Metal/CUDA; float32 on CPU)")
    conv.set_defaults(handler=cmd_convert)


def cmd_list(args: argparse.Namespace) -> int:
    rows = models.list_models()
    if not rows:
        print("no converted models yet; `hearth models convert` or just start a chat")
    for r in rows:
        state = "ok" if r["valid"] else "INCOMPLETE (will be rebuilt)"
        print(f"{r['name']}\t{r['dtype']}\t{state}\t{r['path']}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    quantized = args.quantized if args.quantized is not None else models.backend() != "cpu"
    if args.force:
        shutil.rmtree(models.bundled_folder(quantized), ignore_errors=True)
    ref = models.ensure_bundled(quantized=quantized, progress=progress_bar("converting"))
    print(f"{ref.id}: {ref.path} (source sha256 {ref.checksum})")
    return 0
