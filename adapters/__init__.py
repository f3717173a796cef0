"""Hearth's personal LoRA adapter layer.

Accepted answers become a dataset (`dataset`), a LoRA adapter is trained on it with mlx-lm's
tuner (`train`, run at low priority by `worker`), compared with the active adapter or the base
model by the shared evaluator (`evaluate`, `gate`), versioned and promoted atomically
(`registry`), refreshed on a policy (`refresh`) and nightly (`schedule`).

Importing this package has no side effects and does not import MLX; modules that need it
import it lazily, after `agent.blas.ensure()`.
"""

from adapters.errors import AdapterError

__all__ = ["AdapterError"]
