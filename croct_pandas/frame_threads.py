"""The threads that run a frame's Arrow work: one pool, shared by every call.

Arrow releases the GIL, so the per-type preparation and column gathers of a large input run on a
few threads, with results handed back in the caller's order whichever thread made them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__: list[str] = []

#: fewer rows than this are gathered on the calling thread: threads would cost more than they save
_THREADED_ROWS = 20_000
_MAX_WORKERS = 4
T = TypeVar("T")


class _Workers:
    """Threads for the Arrow work (which releases the GIL), or the calling thread alone.

    ``submit`` runs the call at once when there are no threads; either way its outcome (value
    or exception) comes out of ``result()`` in the order the caller asks. Calls not started
    when the block ends (an error left them unused) are cancelled.
    """

    def __init__(self, rows: int) -> None:
        count = min(_MAX_WORKERS, os.cpu_count() or 1) if rows >= _THREADED_ROWS else 1
        self._pool = _shared_pool(count) if count > 1 else None
        self._futures: set[Future[Any]] = set()

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in list(self._futures):
            future.cancel()
        self._futures.clear()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._pool is not None:
            future = self._pool.submit(fn, *args)
            # only calls still to run are kept (for cancelling): a finished call's value
            # belongs to whoever asked for it, and goes once they drop it
            self._futures.add(future)
            future.add_done_callback(self._futures.discard)
            return future
        future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as error:  # handed to the caller by result(), as a pool would
            future.set_exception(error)
        return future

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        return [future.result() for future in [self.submit(fn, item) for item in items]]


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _shared_pool(count: int) -> ThreadPoolExecutor:
    """One pool for every call, made on first use (and again in a forked child).

    Long-lived threads keep their allocator's memory warm: threads started per call made
    Arrow's pool fault in fresh pages each time, which cost more than the threads saved.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            # a child forked after the pool started has its objects but none of its threads
            # named apart from an export's "croct" threads, which end with the export: these
            # live as long as the process
            _POOL = (os.getpid(), ThreadPoolExecutor(count, "frame-builder"))
        return _POOL[1]
