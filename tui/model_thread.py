"""One thread for every MLX call the app makes: loading, generating, swapping adapters.

MLX streams are thread-local (mlx >= 0.31.2 on Metal): arrays and caches made on one thread
cannot always be evaluated on another. Textual's thread workers run on a pool of threads,
so they hand model work to this single long-lived thread and wait for it. The wait happens
in a worker, never on the UI thread.

The thread is a daemon and `shutdown()` does not wait for it: quitting during a long model
conversion exits at once (conversion writes atomically, so nothing is left half-done).
It does not know what the work is; it only serialises it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ModelThreadClosed(RuntimeError):
    """The app is quitting; the model thread takes no more work."""


class ModelThread:
    """A single daemon thread; `call()` blocks the calling worker until the job is done."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hearth-mlx", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the model thread and return its result (or raise its exception)."""
        if threading.current_thread() is threading.main_thread():
            raise RuntimeError("ModelThread.call() would block the UI; call it from a worker")
        if self._closed.is_set():
            raise ModelThreadClosed("the app is closing")
        future: Future[T] = Future()
        self._jobs.put((future, lambda: fn(*args, **kwargs)))
        while True:
            try:
                return future.result(timeout=0.25)
            except FutureTimeout:
                if self._closed.is_set():
                    future.cancel()
                    raise ModelThreadClosed("the app is closing") from None

    def shutdown(self) -> None:
        """Take no more work and release waiting callers; the running job finishes alone."""
        if not self._closed.is_set():
            self._closed.set()
            self._jobs.put(None)
