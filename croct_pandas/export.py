"""``read_croct_events()``: the only module that composes client, normaliser, cache and frame.

The window ``[start, end)`` is cut into time slices, each followed by its own cursor chain,
``workers`` at a time, under one shared rate budget. Every page becomes Arrow tables as it arrives
and goes to a *sink*: memory (``cache=False``) or the Parquet cache, which plans what is missing,
stores pages as they come and checkpoints each slice's cursor.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from croct_pandas.cache_paths import cache_dir
from croct_pandas.client import Client, Page
from croct_pandas.errors import BadRequestError, InvalidArgumentError
from croct_pandas.frame import build_frame, check_dtype_backend
from croct_pandas.normalize_pool import PageBatcher
from croct_pandas.params import (
    check_events,
    check_page_size,
    check_timeout,
    check_window,
    check_workers,
    iso_ms,
    resolve_api_key,
    resolve_base_url,
    to_epoch_ms,
)
from croct_pandas.process_state import paused_gc, system_arrow_pool
from croct_pandas.progress import Progress
from croct_pandas.retry import RateBudget
from croct_pandas.slices import Slice, plan_slices

__all__ = ["ExportResult", "MemorySink", "Sink", "read_croct_events"]

logger = logging.getLogger("croct_pandas.export")


class Sink(Protocol):
    """Where pages go. ``cache=False`` keeps them in memory; the cache stores them on disk."""

    def plan(self) -> list[Slice]: ...

    def on_page(self, task: Slice, page: Page) -> None:
        """Take a page as received (wire dicts); the sink normalises it in its own batches."""

    def on_slice_done(self, task: Slice) -> None: ...

    def restart(self, task: Slice) -> None:
        """Forget what is stored of ``task``'s chain: its stored cursor was refused."""

    def tables(self) -> Iterable[tuple[str, pa.Table]]: ...

    def attrs(self) -> dict[str, Any]: ...


class ExportResult:
    """What one export saw: the response metadata and how many pages and events came."""

    def __init__(self) -> None:
        self.metadata: dict[str, Any] = {}
        self.pages = 0
        self.events = 0
        self._lock = threading.Lock()

    def record(self, page: Page) -> None:
        with self._lock:
            if page.metadata and not self.metadata:
                self.metadata = dict(page.metadata)
            self.pages += 1
            self.events += page.count


class MemorySink:
    """Keeps every page's tables in memory (``cache=False``). Pages of all slices share one
    batcher, so batches are full-sized however finely the window is cut."""

    def __init__(self, window: tuple[int | None, int], workers: int) -> None:
        self.window = window
        self.workers = workers
        self._batcher = PageBatcher()
        self._collected: tuple[list[tuple[str, pa.Table]], set[str]] | None = None

    def plan(self) -> list[Slice]:
        return plan_slices(self.window[0], self.window[1], self.workers)

    def on_page(self, task: Slice, page: Page) -> None:
        # a chain's pages come from one thread, in order: batches keep that order
        self._batcher.add(page)

    def on_slice_done(self, task: Slice) -> None:
        pass

    def restart(self, task: Slice) -> None:
        pass  # its slices never start from a stored cursor

    def _collect(self) -> tuple[list[tuple[str, pa.Table]], set[str]]:
        if self._collected is None:
            self._batcher.flush()
            tables: list[tuple[str, pa.Table]] = []
            versions: set[str] = set()
            for batch in self._batcher.results():
                tables.extend(batch.tables.items())
                versions |= batch.spec_versions
            self._batcher = PageBatcher()
            self._collected = (tables, versions)
        return self._collected

    def tables(self) -> Iterable[tuple[str, pa.Table]]:
        return self._collect()[0]

    def attrs(self) -> dict[str, Any]:
        return {"spec_version": _spec_version(self._collect()[1])}


def read_croct_events(
    start: Any = None,
    end: Any = None,
    events: str | Sequence[str] | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    page_size: int = 1000,
    workers: int = 4,
    progress: bool = True,
    dtype_backend: str | None = None,
    timeout: float = 30.0,
    cache: bool | str | os.PathLike[str] = True,
    refresh: bool = False,
    settle: str | pd.Timedelta = "2h",
) -> pd.DataFrame:
    """Export every event of ``[start, end)`` from Croct's Export API into a typed frame.

    Parameters
    ----------
    start, end : int, str, datetime, date or Timestamp, optional
        The window: ``start`` inclusive, ``end`` exclusive. Integers are epoch milliseconds;
        naive times are UTC. ``end=None`` is the time of the call; ``start=None`` is the
        beginning of the data (one cursor chain).
    events : str or list of str, optional
        Event types to export (``None``: every type, including types newer than this package).
    api_key : str, optional
        Defaults to the ``CROCT_API_KEY`` environment variable. Never stored or shown.
    base_url : str, optional
        The API host; defaults to ``CROCT_API_URL``, then ``https://api.croct.io``.
    page_size : int
        Events per request, 1–1000.
    workers : int
        Time slices fetched at once.
    progress : bool
        Show a progress bar (``tqdm.auto``) over the window.
    dtype_backend : {None, "numpy_nullable", "pyarrow"}
        As in pandas' readers; see ``docs/event-frame.md``.
    timeout : float
        Seconds per HTTP request.
    cache : bool or path
        ``True``: the user cache (or ``CROCT_PANDAS_CACHE``); a path: that folder; ``False``:
        no cache.
    refresh : bool
        Refetch the window even where the cache holds it.
    settle : str or Timedelta
        Windows that ended less than this before they were fetched may still receive late
        events: the cache keeps them as provisional and fetches them again.

    Returns
    -------
    pandas.DataFrame
        One row per event, sorted by ``timestamp`` and ``id``; ``attrs["croct"]`` describes it.

    Examples
    --------
    >>> import croct_pandas as cp
    >>> from croct_pandas.emulator import Emulator
    >>> with Emulator(users=20, days=1) as emu:
    ...     df = cp.read_croct_events("2026-01-01", "2026-01-02", ["orderPlaced", "pageOpened"],
    ...                               api_key=emu.api_key, base_url=emu.url, cache=False,
    ...                               progress=False)
    >>> sorted(df["type"].cat.categories)
    ['orderPlaced', 'pageOpened']
    """
    call_time = _now_ms()
    start_ms = to_epoch_ms(start, "start")
    end_ms = to_epoch_ms(end, "end")
    if end_ms is None:
        end_ms = call_time
    check_window(start_ms, end_ms)
    wanted = check_events(events)
    page_size = check_page_size(page_size)
    workers = check_workers(workers)
    timeout = check_timeout(timeout)
    dtype_backend = check_dtype_backend(dtype_backend)
    if not isinstance(progress, bool):
        raise InvalidArgumentError(f"progress={progress!r}: progress accepts True or False")
    if not isinstance(refresh, bool):
        raise InvalidArgumentError(f"refresh={refresh!r}: refresh accepts True or False")
    settle_ms = _check_settle(settle)
    # the key and URL before the cache folder, which a read creates: a call refused for its key
    # leaves nothing behind
    api_key = resolve_api_key(api_key)
    base_url = resolve_base_url(base_url)
    cache_root = cache_dir(cache, may_be_off=True, writable=True)

    with paused_gc(), system_arrow_pool():
        return _export(
            start_ms, end_ms, wanted, api_key, base_url, page_size, workers, progress,
            dtype_backend, timeout, cache_root, refresh, settle_ms, call_time,
        )  # fmt: skip


def _export(
    start_ms: int | None,
    end_ms: int,
    wanted: tuple[str, ...] | None,
    api_key: str | None,
    base_url: str | None,
    page_size: int,
    workers: int,
    progress: bool,
    dtype_backend: str | None,
    timeout: float,
    cache_root: str | None,
    refresh: bool,
    settle_ms: int,
    call_time: int,
) -> pd.DataFrame:
    bar = Progress(start_ms, end_ms, enabled=progress)
    # set when the export fails or is interrupted: every slice's thread then stops at once,
    # in a wait (backoff or rate budget) or before its next request, instead of retrying on in
    # the background
    stop = threading.Event()
    client = Client(
        api_key,
        base_url=base_url,
        timeout=timeout,
        budget=RateBudget(),
        on_wait=bar.on_wait,
        cancel=stop,
    )
    result = ExportResult()
    rows: int | None = None  # the frame's, once made: the bar's final figure
    try:
        if cache_root is None:
            sink: Any = MemorySink((start_ms, end_ms), workers)
        else:
            from croct_pandas.cache import open_sink

            sink = open_sink(
                cache_root,
                client,
                window=(start_ms, end_ms),
                events=wanted,
                workers=workers,
                refresh=refresh,
                settle_ms=settle_ms,
                now_ms=call_time,
            )
        tasks = sink.plan()
        bar.skip_covered(tasks)
        _run(client, sink, tasks, wanted, page_size, workers, bar, result, stop)
        bar.note("building the frame")
        attrs = {
            "metadata": result.metadata,
            "start": _iso(start_ms),
            "end": _iso(end_ms),
            "events": sorted(wanted) if wanted is not None else None,
            "spec_version": None,  # the sink says which versions it read
            "fetched_at": _iso(call_time),
            "provisional": end_ms > call_time - settle_ms,
        }
        attrs.update(sink.attrs())
        frame = build_frame(
            sink.tables(),
            events=wanted,
            dtype_backend=dtype_backend,
            start=start_ms,
            end=end_ms,
            attrs=attrs,
        )
        rows = len(frame)
        return frame
    finally:
        bar.close(rows)
        client.close()


def _run(
    client: Client,
    sink: Sink,
    tasks: list[Slice],
    events: tuple[str, ...] | None,
    page_size: int,
    workers: int,
    bar: Progress,
    result: ExportResult,
    stop: threading.Event,
) -> None:
    if not tasks:
        return

    def follow(task: Slice) -> None:
        try:
            chain(task)
        except BadRequestError:
            if task.cursor is None or task in answered:
                raise
            # the stored cursor of a stopped call is refused (expired, or another deployment
            # signed it): the slice starts again from its start, its stored pages dropped
            logger.warning("a stored cursor was refused; that part of the window is fetched again")
            sink.restart(task)
            chain(Slice(task.start, task.end))

    answered: set[Slice] = set()

    def chain(task: Slice) -> None:
        position = task.start
        for page in client.iter_pages(
            task.start, task.end, events, page_size=page_size, cursor=task.cursor
        ):
            answered.add(task)
            if stop.is_set():
                return
            sink.on_page(task, page)
            result.record(page)
            last = _last_timestamp(page)
            bar.advance(task, position, last, page.count)
            position = last if last is not None else position
        if not stop.is_set():
            sink.on_slice_done(task)
            bar.finish(task, position)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(tasks)), thread_name_prefix="croct")
    futures: list[Future[None]] = [pool.submit(follow, task) for task in tasks]
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # re-raises the first failure at once
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _last_timestamp(page: Page) -> int | None:
    last = page.last_item()  # parses one event, not the page
    if last is not None and isinstance(last.get("timestamp"), int):
        return int(last["timestamp"])
    for item in reversed(page.items):
        ts = item.get("timestamp")
        if isinstance(ts, int):
            return ts
    return None


def _check_settle(settle: Any) -> int:
    accepts = "settle accepts a duration >= 0 such as '2h', '30min', '0s' or pd.Timedelta(hours=2)"
    if isinstance(settle, (bool, int, float, np.integer, np.floating)):
        # a bare number has no unit (pandas would read 5 as 5 nanoseconds)
        raise InvalidArgumentError(f"settle={settle!r}: a number has no unit; {accepts}")
    try:
        delta = pd.Timedelta(settle)
    except (TypeError, ValueError):
        delta = pd.NaT
    if delta is pd.NaT or delta < pd.Timedelta(0):
        raise InvalidArgumentError(f"settle={settle!r}: {accepts}")
    return int(delta / pd.Timedelta(milliseconds=1))


def _spec_version(seen: set[str]) -> str | None:
    if not seen:
        return None
    return next(iter(seen)) if len(seen) == 1 else "mixed"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)
