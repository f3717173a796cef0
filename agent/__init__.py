"""Hearth's agent, one sub-package per floor (docs/architecture.md): `foundation` (paths,
errors, offline, BLAS, ids), `llm` (model runtime and prompt), `core` (the turn loop and
commands) and `cli` (the command line, a shell).

Importing this package has no side effects; MLX is imported lazily by `agent.llm.runtime`
after `agent.foundation.blas` has had the chance to put an optimised BLAS in front of it.
"""
