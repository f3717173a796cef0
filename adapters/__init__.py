"""Hearth's personal LoRA adapter layer.

Accepted answers become a dataset snapshot (`dataset`); a LoRA candidate is trained on it with
mlx-lm's tuner (`train`, with the answer-only loss and batching in `batching`), run at low
priority (`priority`, `worker`); the shared evaluator (`evaluate`) measures it and the active
adapter or base, and `gate` decides; `registry` versions and promotes atomically (`files`);
`refresh` applies the policy (`conditions`: lock, battery, activity); `schedule` writes the
nightly systemd / launchd files. Settings live in `config`; errors are `AdapterError`.

Importing this package has no side effects and does not import MLX; modules that need it
import it lazily, after `agent.foundation.blas.ensure()`.
"""

from adapters.training.errors import AdapterError

__all__ = ["AdapterError"]
