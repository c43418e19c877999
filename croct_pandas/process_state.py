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
  ``ARROW_DEFAULT_MEMORY_POOL`` or ``pyarrow.set_memory_pool``) is left as it is.
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
            os.register_at_fork(after_in_child=self._after_fork)

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
    current = pa.default_memory_pool()
    # mimalloc is pyarrow's own default: anything else (or the variable) is the user's choice
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or current.backend_name != "mimalloc":
        return None
    pa.set_memory_pool(pa.system_memory_pool())
    return current


def _pool_restore(saved: pa.MemoryPool | None) -> None:
    if saved is not None:
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
