"""Fixtures for the app's tests: a real temporary store, the tiny model, and app builders.

The store is real (SQLite in the test's HEARTH_HOME) with the hashing embedder, so tests need
no embedding model. The tiny runtime is a 2-layer random Llama with the real tokenizer: it
answers nonsense, fast and, with temperature 0, the same nonsense every time.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.llm.runtime import Runtime, SamplingOptions, TokenEvent
from memory.embed import HashEmbedder
from memory.store import Store
from tui.app import HearthApp

GREEDY = SamplingOptions(temperature=0.0, max_tokens=12)


@pytest.fixture(scope="session")
def shared_tiny(tiny_model_dir: Any) -> Runtime:
    """One tiny runtime for the whole session (loading its tokenizer takes seconds)."""
    from agent.llm.models import ModelRef

    return Runtime.load(ModelRef("tiny", tiny_model_dir, "tiny-checksum"))


@pytest.fixture
def tiny_runtime(shared_tiny: Runtime) -> Iterator[Runtime]:
    """The shared tiny runtime, reset: no adapter, an empty prompt cache."""
    shared_tiny.set_adapter(None)
    shared_tiny.reset_cache()
    yield shared_tiny
    shared_tiny.set_adapter(None)


@pytest.fixture
def store(hearth_home: Any) -> Iterator[Store]:
    s = Store.open(embedder=HashEmbedder())
    yield s
    s.close()


@pytest.fixture
def make_app(store: Store) -> Iterator[Callable[..., HearthApp]]:
    """Build a HearthApp over the test store. With a runtime (or factory) the model loads;
    without one it stays "loading" for the whole test, as on a slow first start."""
    release = threading.Event()

    def still_loading() -> Any:
        release.wait(60)
        raise RuntimeError("the test is over")

    def build(runtime: Any = None, factory: Callable[[], Any] | None = None, **kw: Any) -> HearthApp:
        if factory is None:
            factory = (lambda: runtime) if runtime is not None else still_loading
        kw.setdefault("options", GREEDY)
        app = HearthApp(runtime_factory=factory, store=store, warm_up=False, **kw)
        if factory is still_loading:
            STILL_LOADING.add(app)
        return app

    yield build
    release.set()


async def paste(pilot: Any, text: str) -> None:
    """Paste `text` into the focused widget (as a terminal delivers a paste), faster than
    typing it key by key; tests still press the real keys for everything else."""
    from textual import events

    focused = pilot.app.focused
    assert focused is not None, "nothing focused to paste into"
    focused.post_message(events.Paste(text))
    await pilot.pause()


STILL_LOADING: weakref.WeakSet[HearthApp] = weakref.WeakSet()
"""Apps whose model never finishes loading (tests of the app while it loads)."""


async def settle(pilot: Any) -> None:
    """Wait for the workers (but a model load that never ends), then for the screen."""
    app = pilot.app
    workers = [w for w in app.workers if not (app in STILL_LOADING and w.group == "model")]
    if workers:  # (an empty list would mean "all workers" to wait_for_complete)
        await app.workers.wait_for_complete(workers)
    await pilot.pause()


class GatedRuntime:
    """Wraps a Runtime so a test can press Esc mid-answer without racing the model: after
    the first token (or, with `before_first`, during the "prefill") it waits for the cancel."""

    def __init__(self, inner: Runtime, before_first: bool = False) -> None:
        self._inner = inner
        self.before_first = before_first
        self.waiting = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def stream(self, messages: Any, options: Any = None, cancel: threading.Event | None = None,
               stable: int | None = None, prefix: str = "", avoid: Any = (), allow: Any = None) -> Iterator[Any]:
        assert cancel is not None
        if self.before_first:
            self.waiting.set()
            cancel.wait(10)
            yield TokenEvent("", None, 0, 0, 0.0, 0.0, 0, "cancelled")
            return
        for i, event in enumerate(self._inner.stream(messages, options, cancel, stable=stable,
                                                              prefix=prefix, avoid=avoid, allow=allow)):
            yield event
            if i == 0:
                self.waiting.set()
                cancel.wait(10)


def register_adapter(store: Store, runtime: Runtime, tmp: Any, seed: int, promote: bool = True,
                     metrics: dict[str, Any] | None = None) -> str:
    """Register a real (random) LoRA adapter for `runtime`'s model through adapters.training.registry,
    as a refresh would; returns its version id (v1, v2, ...)."""
    import json

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model

    from adapters.training import registry

    donor, _ = load_model(Path(runtime.ref.path))  # the weights only: no tokenizer to load
    donor.freeze()
    params = {"rank": 4, "scale": 20.0, "dropout": 0.0}
    linear_to_lora_layers(donor, 2, params)
    mx.random.seed(seed)
    weights = {k: mx.random.normal(v.shape) * 0.05
               for k, v in tree_flatten(donor.trainable_parameters())}
    folder = tmp / f"lora-{seed}"
    folder.mkdir(parents=True)
    mx.save_safetensors(str(folder / "adapters.safetensors"), weights)
    (folder / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": params}))
    ref = runtime.ref
    base = registry.Base(ref.id, ref.path, ref.checksum)
    version = registry.begin(store, base, f"snap-{seed}", 16, 4, {"rank": 4})
    lineage = {"base_model_id": ref.id, "base_checksum": ref.checksum, "message_ids": []}
    target = registry.write_folder(version, folder, lineage)
    metrics = metrics or {
        "candidate": {"personal_nll": 1.8, "probe_nll": 2.52},
        "reference": {"personal_nll": 2.0, "probe_nll": 2.5},
    }
    reason = "personal NLL -10%, probe +1%" if promote else "probe regressed"
    registry.record(store, version, target, promote, "promote" if promote else "reject",
                    reason, metrics)
    return version
