"""Hearth's agent: model runtime, prompt assembly, the turn loop and the command line.

Importing this package has no side effects; MLX is imported lazily by `agent.llm.runtime`
after `agent.foundation.blas` has had the chance to put an optimised BLAS in front of it.
"""
