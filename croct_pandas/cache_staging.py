"""Staged pages and how they move into the dataset.

Each cursor chain (one slice of one call) stages its pages in ``_staging/<chain>/page-<n>``: one
Arrow IPC file per page, holding the page's wire events as received (JSON) and, in its metadata,
the chain's next cursor, committed by one rename. The pages from ``page-000000`` up to the first
gap are the chain's stored prefix: an interrupted chain resumes from the last one's cursor, and a
chain whose last page ended it (no next cursor, or no items) is complete and waits to be moved.

Pages are staged as received rather than normalised because normalising ~10,000 events at a time
(:class:`~croct_pandas.normalize_pool.PageBatcher`) costs a quarter less than page by page: the sink
normalises each chain in batches as it arrives and hands the tables to the move, and only a chain
left by an interrupted run is normalised from its staged pages.

:func:`move_chains` moves complete chains into the dataset: for every (type, UTC day) file they
touch, the new file is the old rows outside their intervals plus their rows, written aside and
renamed over the old one. Doing it twice gives the same files, so a move cut short by a crash is
simply done again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.cache_manifest import BEGIN, subtract, union
from croct_pandas.cache_store import (
    DAY_MS,
    SCHEMA_VERSION,
    Namespace,
    atomic_write,
    day_of,
    day_start,
    listdir,
    read_partition,
    remove_file,
    remove_partition,
    write_partition,
)
from croct_pandas.errors import CacheError
from croct_pandas.normalize import NormalizedPage
from croct_pandas.normalize_pool import PageBatcher
from croct_pandas.page import Page

__all__ = [
    "Chain",
    "move_chains",
    "normalize_pages",
    "page_name",
    "read_chain",
    "read_items",
    "write_page",
]

#: Staged chains untouched for this long are dropped (half-written page files much sooner).
STALE_CHAIN_S = 86_400.0
STALE_TMP_S = 600.0
_PAGE = "page-"
_META_KEY = b"croct_pandas"
_SORT = [("timestamp", "ascending"), ("id", "ascending")]
#: Threads writing partition files during a move.
MOVE_THREADS = 4


def page_name(seq: int) -> str:
    """The file name of a chain's ``seq``-th page (never ending in ``.parquet``).

    Examples
    --------
    >>> page_name(3)
    'page-000003'
    """
    return f"{_PAGE}{seq:06d}"


def write_page(
    path: str, items: Sequence[Mapping[str, Any]] | bytes, meta: Mapping[str, Any], tmp_dir: str
) -> None:
    """Commit one page (its wire events, or their JSON array as bytes, and ``meta``, with the
    chain's next cursor) as ONE file by one rename, so a page is either stored with its cursor or
    not at all.

    ``meta`` carries ``version`` (:data:`SCHEMA_VERSION`), ``seq``, ``events``, ``types_key``,
    ``start``, ``end``, ``fetched_at``, ``next_cursor`` and ``rows``.

    Examples
    --------
    >>> import os, tempfile, time
    >>> folder = os.path.join(tempfile.mkdtemp(), "all~1767225600000~1767312000000")
    >>> meta = {"version": SCHEMA_VERSION, "seq": 0, "events": None, "types_key": "all",
    ...         "start": 1767225600000, "end": 1767312000000, "fetched_at": 1767400000000,
    ...         "next_cursor": "c1", "rows": 1}
    >>> write_page(os.path.join(folder, page_name(0)), [{"id": "e1"}], meta, folder)
    >>> chain = read_chain(folder, time.time())
    >>> len(chain.pages), chain.next_cursor, chain.complete
    (1, 'c1', False)
    >>> read_items(chain.pages[0])
    [{'id': 'e1'}]
    """
    text = items if isinstance(items, bytes) else orjson.dumps(list(items))
    body = pa.table({"items": pa.array([text], pa.binary())})
    body = body.replace_schema_metadata({_META_KEY: orjson.dumps(dict(meta))})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, body.schema) as writer:
        writer.write_table(body)
    atomic_write(path, sink.getvalue().to_pybytes(), tmp_dir)


def read_items(path: str) -> list[dict[str, Any]]:
    """The wire events of a staged page (see :func:`write_page` for an example)."""
    try:
        with pa.memory_map(path) as source:
            body = pa.ipc.open_file(source).read_all()
        items = orjson.loads(body.column("items")[0].as_py())
    except (OSError, pa.ArrowInvalid, orjson.JSONDecodeError) as exc:
        raise CacheError(f"the staged page {path} cannot be read: {exc}") from None
    if not isinstance(items, list):
        raise CacheError(f"the staged page {path} holds no list of events")
    return items


def normalize_pages(paths: Sequence[str]) -> list[NormalizedPage]:
    """Staged pages normalised in batches, in page order."""
    batcher = PageBatcher()
    for path in paths:
        batcher.add(Page(read_items(path), {}, None))  # no body: normalised here
    batcher.flush()
    return batcher.results()


def _read_page_meta(path: str) -> dict[str, Any] | None:
    try:
        with pa.memory_map(path) as source:
            schema = pa.ipc.open_file(source).schema
    except (OSError, pa.ArrowInvalid):
        return None
    raw = (schema.metadata or {}).get(_META_KEY)
    try:
        meta = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(meta, dict) or meta.get("version") != SCHEMA_VERSION:
        return None
    return meta


# -- chains --------------------------------------------------------------------------------


@dataclass
class Chain:
    """The stored prefix of one staged chain (see :func:`write_page` for an example)."""

    path: str
    pages: list[str]
    #: the first page's metadata: events, types_key, start, end, fetched_at
    meta: dict[str, Any]
    next_cursor: str | None
    complete: bool

    @property
    def events(self) -> tuple[str, ...] | None:
        events = self.meta.get("events")
        return None if events is None else tuple(events)

    @property
    def interval(self) -> tuple[int, int]:
        start = self.meta["start"]
        return (BEGIN if start is None else int(start), int(self.meta["end"]))

    @property
    def fetched_at(self) -> int:
        return int(self.meta["fetched_at"])


def read_chain(path: str, now: float) -> Chain | None:
    """The pages of a chain from page 0 up to the first missing or unreadable one; None when
    there are none (leftovers older than a day are dropped on the way).

    The chain is complete when its last page ended it: no next cursor, or no items. See
    :func:`write_page` for an example.
    """
    names = listdir(path)
    for name in names:
        if name.startswith("_tmp-") and _age(os.path.join(path, name), now) > STALE_TMP_S:
            remove_file(os.path.join(path, name))
    run: list[str] = []
    metas: list[dict[str, Any]] = []
    for seq, name in enumerate(sorted(n for n in names if n.startswith(_PAGE))):
        if name != page_name(seq):
            break
        meta = _read_page_meta(os.path.join(path, name))
        if meta is None or meta.get("seq") != seq:
            break
        run.append(os.path.join(path, name))
        metas.append(meta)
    stale = _age(run[-1] if run else path, now) > STALE_CHAIN_S
    if not run or stale:
        if names and stale:
            shutil.rmtree(path, ignore_errors=True)
        return None
    last = metas[-1]
    complete = last.get("next_cursor") is None or not last.get("rows")
    return Chain(path, run, metas[0], last.get("next_cursor"), complete)


def _age(path: str, now: float) -> float:
    try:
        return now - os.path.getmtime(path)
    except OSError:
        return 0.0


# -- moving chains into the dataset --------------------------------------------------------


def move_chains(
    ns: Namespace,
    events: Sequence[str] | None,
    chains: Sequence[Chain],
    normalized: Mapping[str, list[NormalizedPage]] | None = None,
) -> None:
    """Replace the chains' intervals, for the types they fetched, by their rows (call with the
    namespace's lock held). Every chain must have fetched ``events`` (None: every type).

    ``normalized`` maps a chain's path to its pages already normalised, in order; other chains
    are normalised from their staged pages.

    Examples
    --------
    >>> import os, tempfile, time
    >>> from croct_pandas.cache_store import Namespace, read_partition
    >>> ns = Namespace(tempfile.mkdtemp(), "app")
    >>> event = {"id": "e1", "timestamp": 1767225600000, "sessionId": "s", "userId": "u",
    ...          "context": None, "payload": {"@type": "tabOpened", "tabId": "t"}}
    >>> folder = os.path.join(ns.staging, "all~1767225600000~1767312000000")
    >>> meta = {"version": SCHEMA_VERSION, "seq": 0, "events": None, "types_key": "all",
    ...         "start": 1767225600000, "end": 1767312000000, "fetched_at": 1767400000000,
    ...         "next_cursor": None, "rows": 1}
    >>> write_page(os.path.join(folder, page_name(0)), [event], meta, folder)
    >>> move_chains(ns, None, [read_chain(folder, time.time())])
    >>> read_partition(ns.partition("tabOpened", "2026-01-01"), "tabOpened")[0].num_rows
    1
    """
    intervals = union(c.interval for c in chains)
    staged: dict[str, list[pa.Table]] = {}
    versions: set[str] = set()
    for chain in sorted(chains, key=lambda c: c.interval):
        pages = (normalized or {}).get(chain.path)
        if pages is None:
            pages = normalize_pages(chain.pages)
        per_type: dict[str, list[pa.Table]] = {}
        for page in pages:
            versions |= page.spec_versions
            for event_type, table in page.tables.items():
                per_type.setdefault(event_type, []).append(table)
        for event_type, tables in per_type.items():
            table = pa.concat_tables(tables)
            ts = table.column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)
            inside = _inside(ts, [chain.interval])
            staged.setdefault(event_type, []).append(
                table if inside.all() else table.filter(inside)
            )
    types = sorted(set(ns.types_on_disk()) | set(staged)) if events is None else sorted(events)

    def move_type(event_type: str) -> None:
        new_days = _by_day(_last_copies(staged.get(event_type, [])))
        old_days = {d for d in ns.days_on_disk(event_type) if _overlaps_any(d, intervals)}
        for day in sorted(old_days | set(new_days)):
            _rewrite(ns, event_type, day, intervals, new_days.get(day), versions)

    # types touch different files; Parquet encoding and compression run outside the GIL
    with ThreadPoolExecutor(MOVE_THREADS, thread_name_prefix="croct-cache") as pool:
        for done in [pool.submit(move_type, t) for t in types]:
            done.result()


def _rewrite(
    ns: Namespace,
    event_type: str,
    day: str,
    intervals: list[tuple[int, int]],
    new: pa.Table | None,
    versions: set[str],
) -> None:
    """One partition file: old rows outside ``intervals`` plus ``new``, committed by a rename."""
    path = ns.partition(event_type, day)
    parts = [new] if new is not None else []
    kept_versions = set(versions) if new is not None else set()
    start = day_start(day)
    # a day wholly inside the intervals loses every old row: no need to read it
    old = None if _covers(intervals, (start, start + DAY_MS)) else read_partition(path, event_type)
    if old is not None:
        ts = old[0].column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)
        inside = _inside(ts, intervals)
        if not inside.any() and new is None:
            return  # nothing of this file changes
        kept = old[0].filter(~inside)
        if kept.num_rows:
            parts.insert(0, kept)
            kept_versions |= old[1]
    if not parts:
        remove_partition(path)
        return
    table = parts[0] if len(parts) == 1 else pa.concat_tables(parts).sort_by(_SORT)
    write_partition(path, table, kept_versions, ns.tmp)


def _last_copies(tables: list[pa.Table]) -> pa.Table | None:
    """One type's staged rows, the last copy of each id kept, sorted by timestamp and id."""
    if not tables:
        return None
    table = pa.concat_tables(tables)
    ids = table.column("id")
    if pc.count_distinct(ids).as_py() != table.num_rows:
        rows = pa.table({"id": ids, "_row": pa.array(np.arange(table.num_rows), pa.int64())})
        last = rows.group_by("id", use_threads=False).aggregate([("_row", "max")])
        table = table.take(last.column("_row_max"))
    return table.sort_by(_SORT)


def _by_day(table: pa.Table | None) -> dict[str, pa.Table]:
    """A table sorted by timestamp, cut into zero-copy slices per UTC day."""
    if table is None or not table.num_rows:
        return {}
    days = np.floor_divide(
        table.column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False), DAY_MS
    )
    bounds = np.flatnonzero(np.diff(days)) + 1
    starts = [0, *bounds.tolist()]
    ends = [*bounds.tolist(), len(days)]
    return {day_of(int(days[s]) * DAY_MS): table.slice(s, e - s) for s, e in zip(starts, ends)}


def _inside(ts: np.ndarray, intervals: list[tuple[int, int]]) -> np.ndarray:
    """Which times fall in one of the sorted, disjoint ``intervals``."""
    starts = np.array([s for s, _ in intervals], dtype=np.int64)
    ends = np.array([e for _, e in intervals], dtype=np.int64)
    at = np.searchsorted(starts, ts, side="right") - 1
    return (at >= 0) & (ts < ends[np.clip(at, 0, None)])


def _covers(intervals: list[tuple[int, int]], span: tuple[int, int]) -> bool:
    return not subtract([span], intervals)


def _overlaps_any(day: str, intervals: list[tuple[int, int]]) -> bool:
    start = day_start(day)
    return any(s < start + DAY_MS and e > start for s, e in intervals)
