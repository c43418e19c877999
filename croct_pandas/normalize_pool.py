"""Normalisation on a second core: pages of a slice, in batches, here or in a worker process.

Parsing JSON into dicts and converting dicts to Arrow both hold the GIL, so the export's threads
cannot share that work; a process can. A :class:`PageBatcher` collects one slice's pages and
normalises them about ``BATCH_EVENTS`` at a time: in a worker while it holds fewer than
``MAX_IN_FLIGHT`` batches (the bodies go to it as received and the tables come back in Arrow's
IPC format), otherwise right here, so neither side waits long for the other. The result is the
same either way and comes back in page order.

The workers (:mod:`croct_pandas.normalize_worker`) are plain child processes, one per usable
core up to two, started by the first batch of ``START_EVENTS`` or more (small reads never start
them) and reused by later reads. They ignore Ctrl-C and exit when this process goes; if one fails
or dies, the batches it held are normalised here instead: nothing is lost. They are only used on
a machine with more than one core; ``CROCT_PANDAS_WORKER=0`` turns them off.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from croct_pandas.normalize import BATCH_EVENTS, NormalizedPage, normalize_items
from croct_pandas.normalize_worker import (
    normalize_bodies,
    read_message,
    unpack_page,
    write_message,
)
from croct_pandas.page import Page

__all__ = ["PageBatcher", "WorkerError", "shutdown_worker", "worker_count", "worker_enabled"]

logger = logging.getLogger("croct_pandas.normalize")

#: Batches handed to a worker and not yet back; more are normalised in the caller's thread.
#: Not lower: a batch normalised here holds its events as Python objects in this process (whose
#: memory the allocator keeps), a queued one only its response bodies. Not higher: queued
#: bodies (~5 MB a batch) wait in this process while the workers fall behind the network.
MAX_IN_FLIGHT = 8
#: The smallest batch that starts the worker: reads smaller than this never pay its start-up.
START_EVENTS = 2_000


#: The worker's program. The package is put in place bare, without running its ``__init__``: the
#: worker needs the normaliser (pyarrow, orjson), not pandas and the rest, and starts 3x sooner.
_BOOTSTRAP = """
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)  # before the imports: a worker starting takes ~0.5 s
import importlib.util, sys, types
spec = importlib.util.find_spec("croct_pandas")
package = types.ModuleType("croct_pandas")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["croct_pandas"] = package
from croct_pandas.normalize_worker import main
main()
"""


class WorkerError(Exception):
    """The worker could not normalise a batch (it failed or is gone)."""


def worker_count() -> int:
    """How many worker processes batches may go to: ``CROCT_PANDAS_WORKER`` when set (``0``
    turns them off), otherwise one per usable core, at most two, and none on a single core
    (this process fetches and builds the frame meanwhile, so two keep two cores busy).

    Examples
    --------
    >>> import os
    >>> os.environ["CROCT_PANDAS_WORKER"] = "0"
    >>> worker_count(), worker_enabled()
    (0, False)
    >>> del os.environ["CROCT_PANDAS_WORKER"]
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    setting = os.environ.get("CROCT_PANDAS_WORKER", "").strip()
    if setting:
        try:
            return max(0, int(setting))
        except ValueError:
            logger.warning("CROCT_PANDAS_WORKER=%r is not a number; using the default", setting)
    return 0 if cores < 2 else min(2, cores)


def worker_enabled() -> bool:
    """Whether batches may go to worker processes (see :func:`worker_count`)."""
    return worker_count() > 0


def _worker_environment() -> dict[str, str]:
    """The worker's environment: ours, with Arrow on the C heap unless the user chose a pool
    (see :mod:`croct_pandas.process_state`; the worker is ours for its whole life)."""
    env = dict(os.environ)
    env.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    return env


class _Worker:
    """The child process and the two threads that write requests to it and read its replies."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_worker_environment(),
            # its own session: a terminal's Ctrl-C goes to the export, not to the worker
            start_new_session=os.name == "posix",
        )
        self.in_flight = 0
        self.alive = True
        self._lock = threading.Lock()
        self._waiting: deque[Future[NormalizedPage]] = deque()
        self._outbox: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        # named apart from the export's "croct" threads: these live as long as the worker
        self._reader = threading.Thread(target=self._read, name="normalizer-reader", daemon=True)
        self._writer = threading.Thread(target=self._write, name="normalizer-writer", daemon=True)
        self._reader.start()
        self._writer.start()

    def submit(self, bodies: list[bytes]) -> Future[NormalizedPage] | None:
        """Queue a batch; None when the worker is gone or already holds enough."""
        with self._lock:
            if not self.alive or self.in_flight >= MAX_IN_FLIGHT:
                return None
            self.in_flight += 1
            future: Future[NormalizedPage] = Future()
            self._waiting.append(future)
            self._outbox.put(bodies)  # in the lock: requests and futures stay in one order
        return future

    def _write(self) -> None:
        assert self.proc.stdin is not None
        while (bodies := self._outbox.get()) is not None:
            try:
                # the bodies travel beside the pickle, as they are, not copied into it
                write_message(self.proc.stdin, [pickle.PickleBuffer(body) for body in bodies])
            except (OSError, ValueError):
                self._fail("the worker stopped taking batches")
                return

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                status, value = read_message(self.proc.stdout)
            except Exception:  # EOF, a cut pickle: the worker is gone
                self._fail("the worker exited")
                return
            with self._lock:
                if not self._waiting:  # failed already (the writer lost the pipe)
                    return
                future = self._waiting.popleft()
                self.in_flight -= 1
            try:
                if status != "ok":
                    raise WorkerError(value)
                future.set_result(unpack_page(value))
            except Exception as exc:  # a reply that does not unpack is a failed batch
                future.set_exception(exc if isinstance(exc, WorkerError) else WorkerError(exc))

    def _fail(self, reason: str) -> None:
        with self._lock:
            self.alive = False
            waiting, self._waiting = list(self._waiting), deque()
            self.in_flight = 0
        if waiting:
            logger.debug("%s; %d batches are normalised in this process", reason, len(waiting))
        for future in waiting:
            future.set_exception(WorkerError(reason))

    def close(self, timeout: float = 5.0, *, kill: bool = False) -> None:
        """Stop the process (killed after ``timeout`` seconds, or at once with ``kill``) and
        close both pipes."""
        self._outbox.put(None)
        if kill:
            # a worker that failed may have stopped reading: the writer thread can then sit in
            # a write holding the pipe's lock, and closing the pipe would wait for it for good
            with contextlib.suppress(OSError):
                self.proc.kill()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._fail("the worker was shut down")
        # the reader meets the end of the pipe now that the process is gone; closing the pipe
        # under a read would wait for that read anyway. Left open, the pipe's file object is
        # only collected at interpreter exit, with a ResourceWarning (seen under python -X dev)
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout)
        if self.proc.stdout is not None and not self._reader.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdout.close()


_lock = threading.Lock()
_workers: list[_Worker] = []


def _submit(bodies: list[bytes], *, start: bool) -> Future[NormalizedPage] | None:
    """Hand a batch to the least busy worker; None when none has room (or none runs and
    ``start`` is false)."""
    with _lock:
        gone = [w for w in _workers if not w.alive]
        _workers[:] = [w for w in _workers if w.alive]
        if not _workers and start and worker_enabled():
            try:
                _workers.extend(_Worker() for _ in range(worker_count()))
            except OSError as exc:
                logger.debug("no worker process (%s); normalising in this process", exc)
        ranked = sorted(_workers, key=lambda w: w.in_flight)
    for dead in gone:  # outside the lock; its process has exited or is exiting: reap it
        dead.close(timeout=1.0, kill=True)
    for worker in ranked:
        future = worker.submit(bodies)
        if future is not None:
            return future
    return None


def shutdown_worker() -> None:
    """Stop the worker processes if any run (a later batch starts new ones).

    Examples
    --------
    >>> shutdown_worker()
    """
    with _lock:
        workers, _workers[:] = list(_workers), []
    for worker in workers:
        worker.close()


def _forget_after_fork() -> None:
    """A forked child must not write to its parent's workers' pipes: it starts its own."""
    global _lock
    _lock = threading.Lock()
    _workers.clear()  # the child's copy of the list; the parent's workers are untouched


atexit.register(shutdown_worker)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


class _Sent:
    """A batch in the worker. Its bodies are kept until the tables are back, to normalise here
    should the worker fail; the parsed items are not (memory holds no batch twice)."""

    def __init__(self, future: Future[NormalizedPage], bodies: list[bytes]) -> None:
        self.future = future
        self.bodies: list[bytes] | None = bodies
        future.add_done_callback(self._release)

    def _release(self, future: Future[NormalizedPage]) -> None:
        if future.exception() is None:
            self.bodies = None

    def result(self) -> NormalizedPage:
        try:
            return self.future.result()
        except WorkerError as exc:
            logger.debug("normalising a batch here: %s", exc)
            assert self.bodies is not None
            return normalize_bodies(self.bodies)


def _normalize_here(pages: Sequence[Page]) -> NormalizedPage:
    bodies = [page.body for page in pages]
    if all(bodies):
        return normalize_bodies(bodies)  # typed when it can be: no dicts at all
    items: list[Any] = []
    for page in pages:
        items.extend(page.items)
    return normalize_items(items)


class _Slot:
    """A batch's place in the results, taken when it is cut so that order never depends on
    which thread finishes first."""

    value: NormalizedPage | _Sent | None = None

    def result(self) -> NormalizedPage:
        value = self.value
        assert value is not None, "a batch was cut but never normalised"
        return value.result() if isinstance(value, _Sent) else value


class PageBatcher:
    """Pages (of one slice, or of many from several threads), normalised about ``size`` events
    at a time, with results in the order the batches were cut.

    Per-call costs (a dozen Arrow casts per event type) then stay small next to the work per
    event, and no more than one batch per thread is ever held as Python dicts here.

    Examples
    --------
    >>> event = {"id": "e1", "timestamp": 1767225600000, "sessionId": "s", "userId": "u",
    ...          "context": None, "payload": {"@type": "tabOpened", "tabId": "t"}}
    >>> batcher = PageBatcher(size=2)
    >>> batcher.add(Page(items=[event], metadata={}, next_cursor=None))
    >>> batcher.flush()
    >>> [batch.num_rows for batch in batcher.results()]
    [1]
    """

    def __init__(self, size: int = BATCH_EVENTS) -> None:
        self.size = size
        self._pages: list[Page] = []
        self._events = 0
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()

    def add(self, page: Page) -> None:
        """Hold ``page``; once ``size`` events are held, normalise them (or hand them over)."""
        with self._lock:
            self._pages.append(page)
            self._events += page.count
            cut = self._cut() if self._events >= self.size else None
        if cut is not None:
            self._dispatch(*cut)

    def flush(self) -> None:
        """Normalise whatever is held."""
        with self._lock:
            cut = self._cut() if self._pages else None
        if cut is not None:
            self._dispatch(*cut)

    def results(self) -> list[NormalizedPage]:
        """Every batch so far, normalised, in order (waits for the workers')."""
        with self._lock:
            slots = list(self._slots)
        return [slot.result() for slot in slots]

    def _cut(self) -> tuple[_Slot, list[Page], int]:
        slot = _Slot()
        self._slots.append(slot)
        pages, events = self._pages, self._events
        self._pages, self._events = [], 0
        return slot, pages, events

    @staticmethod
    def _dispatch(slot: _Slot, pages: list[Page], events: int) -> None:
        # outside the lock: other threads keep adding pages meanwhile
        bodies = [page.body for page in pages]
        future = _submit(bodies, start=events >= START_EVENTS) if all(bodies) else None
        slot.value = _normalize_here(pages) if future is None else _Sent(future, bodies)
