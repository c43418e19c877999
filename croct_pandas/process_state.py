"""Process-wide settings a read changes while it runs.

Nested and concurrent reads are counted: the setting is made when the first begins and restored
when the last ends.

- :func:`paused_gc`: parsing JSON pages (and generating a synthetic store) creates containers by
  the million; each automatic collection would walk every container still alive, which can cost
  more than the work itself. JSON trees hold no reference cycles, so reference counting frees
  them as usual.
- :func:`system_arrow_pool`: Arrow's allocations go to the C library's allocator, the heap that
  numpy (and so pandas) already uses. A read frees hundreds of megabytes of intermediate buffers
  and at once needs as much again for the frame. The C heap keeps what was freed and hands it
  out again. pyarrow's default allocator (mimalloc) returns freed memory to the system within
  milliseconds, so the same amount is mapped again, page by page; on Linux with transparent huge
  pages that costs more system time than the read's own work. A pool the user chose (with
  ``ARROW_DEFAULT_MEMORY_POOL`` or ``pyarrow.set_memory_pool``, a proxy over mimalloc included)
  is left as it is, and so is one set while a read runs.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pyarrow as pa

__all__ = ["paused_gc", "system_arrow_pool"]


class _Counted:
    """A setting made by ``apply`` (which returns what ``restore`` needs) for nested blocks."""

    def __init__(self, apply: Callable[[], Any], restore: Callable[[Any], None]) -> None:
        self._apply = apply
        self._restore = restore
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: Any = None
        if hasattr(os, "register_at_fork"):
            # a fork waits for a thread between making the setting and counting it
            os.register_at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_in_parent,
                after_in_child=self._after_fork,
            )

    # looked up on each fork: a child has a lock of its own, and forks again with it
    def _before_fork(self) -> None:
        self._lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork(self) -> None:
        # a child forked during a block has none of the threads inside it: it starts unset
        self._lock = threading.Lock()
        if self._depth:
            self._depth = 0
            self._restore(self._saved)
            self._saved = None

    @contextmanager
    def block(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = self._apply()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._restore(self._saved)
                    self._saved = None


def _gc_off() -> bool:
    enabled = gc.isenabled()
    gc.disable()
    return enabled


def _gc_restore(was_enabled: bool) -> None:
    if was_enabled:
        gc.enable()


def _pool_on() -> pa.MemoryPool | None:
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or not _is_pyarrows_default():
        return None
    current = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    return current


def _is_pyarrows_default() -> bool:
    """Whether the default pool is pyarrow's own mimalloc pool, not one the user set.

    Pools have no identity in Python; a proxy or logging pool over mimalloc reports the same
    backend but keeps its own counters, so the counters tell them apart.
    """
    current = pa.default_memory_pool()
    if current.backend_name != "mimalloc":
        return False
    mimalloc = pa.mimalloc_memory_pool()
    # counted by mimalloc's own counters, and by the current pool's only if it is mimalloc
    probe = pa.allocate_buffer(64, memory_pool=mimalloc)
    # another thread allocating between the two reads makes them differ: the pool then stays
    counters = (current.num_allocations(), current.total_bytes_allocated())
    same = counters == (mimalloc.num_allocations(), mimalloc.total_bytes_allocated())
    del probe
    return same


def _pool_restore(saved: pa.MemoryPool | None) -> None:
    # a pool set while the read ran (from another thread) is the user's: it stays
    if saved is not None and pa.default_memory_pool().backend_name == "system":
        pa.set_memory_pool(saved)


_GC = _Counted(_gc_off, _gc_restore)
_POOL = _Counted(_pool_on, _pool_restore)


def paused_gc() -> AbstractContextManager[None]:
    """Pause the cyclic collector for the block (restored, if it was on, when the last nested or
    concurrent block ends).

    Examples
    --------
    >>> with paused_gc():
    ...     inside = gc.isenabled()
    ...     rows = [{"n": i} for i in range(3)]
    >>> inside, gc.isenabled()
    (False, True)
    """
    return _GC.block()


def system_arrow_pool() -> AbstractContextManager[None]:
    """Allocate Arrow buffers from the C library's heap for the block, unless the user chose a
    pool (see the module's docstring for why).

    Buffers made in the block keep their pool for life, so they may outlive it.

    Examples
    --------
    >>> before = pa.default_memory_pool().backend_name
    >>> with system_arrow_pool():
    ...     inside = pa.default_memory_pool().backend_name
    >>> inside == "system" or before != "mimalloc", pa.default_memory_pool().backend_name == before
    (True, True)
    """
    return _POOL.block()
