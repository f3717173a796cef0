"""Hearth's Textual app: chat, history, memory, adapters and settings in the terminal.

`tui.app.run_app()` opens it (`hearth` with no command). Screens live in `tui.screens`,
widgets in `tui.widgets`, one class per file, styles in `.tcss` files beside them. Every call
into `agent`, `memory` and `adapters` goes through `tui.services` and runs in a worker; MLX
work runs on one dedicated thread (`tui.model_thread`). This package holds no SQL and makes
no MLX calls of its own.
"""
