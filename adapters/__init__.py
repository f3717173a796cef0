"""Hearth's personal LoRA adapter layer, on two floors (docs/architecture.md).

`adapters.training` is the layer's own logic: accepted answers become a dataset snapshot
(`dataset`); a LoRA candidate is trained on it with mlx-lm's tuner (`train`, with the
answer-only loss and batching in `batching`); the shared evaluator (`evaluate`) measures it
and the active adapter or base, and `gate` decides; `registry` versions and promotes
atomically (`files`). Settings live in `config`; errors are `AdapterError`.

`adapters.jobs` orchestrates it: `refresh` applies the policy (`conditions`: lock, battery,
activity), run at low priority (`priority`, `worker`); `schedule` writes the nightly
systemd / launchd files. `adapters.eval` is `hearth eval`.

Importing this package has no side effects and does not import MLX; modules that need it
import it lazily, after `agent.foundation.blas.ensure()`.
"""

from adapters.training.errors import AdapterError

__all__ = ["AdapterError"]
