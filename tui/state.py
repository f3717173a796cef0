"""What the status bar shows, as one immutable value the app replaces when something changes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppStatus:
    """The app-wide state behind the status bar."""

    model: str = ""
    """The loaded model's id ('' while loading)."""
    backend: str = ""
    """'Metal', 'CUDA' or 'CPU'."""
    adapter: str | None = None
    """The personal adapter version serving answers (None: the base model)."""
    tokens_per_s: float | None = None
    """Decode speed of the last answer."""
    loading: str | None = "loading the model…"
    """What the model loader is doing; None once the model is ready."""
    offline: bool = True
    """True while the process refuses network connections."""
    activity: str | None = None
    """Background work worth a glance: 'answering…', 'training 12/40'."""
    stale: str | None = None
    """Why the serving adapter is marked stale by the drift monitor (None: it is not)."""
