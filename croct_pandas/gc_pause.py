"""Pausing Python's cyclic garbage collector while millions of acyclic dicts come and go.

Parsing JSON pages (and generating a synthetic store) creates containers by the million; each
automatic collection would walk every container still alive, which can cost more than the work
itself. JSON trees hold no reference cycles, so reference counting frees them as usual.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic collector for the block; nested and concurrent uses are counted, and
    the collector is restored (if it was on) when the last one ends.

    Examples
    --------
    >>> with paused_gc():
    ...     inside = gc.isenabled()
    ...     rows = [{"n": i} for i in range(3)]
    >>> inside, gc.isenabled()
    (False, True)
    """
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
