"""Moving complete staged chains into the dataset (call with the namespace's lock held).

:func:`move_chains` takes complete chains (see :mod:`croct_pandas.cache_staging`), normalised
as they arrived or from their staged pages: for every (type, UTC day) file they touch, the new
file is the old rows outside their intervals plus their rows, written aside and renamed over the
old one. Doing it twice gives the same files, so a move cut short by a crash is simply done again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from croct_pandas.cache_manifest import subtract, union
from croct_pandas.cache_staging import Chain, normalize_pages
from croct_pandas.cache_store import (
    DAY_MS,
    Namespace,
    day_of,
    day_start,
    read_partition,
    remove_partition,
    write_partition,
)
from croct_pandas.normalize import NormalizedPage

__all__ = ["move_chains"]

_SORT = [("timestamp", "ascending"), ("id", "ascending")]
#: Threads writing partition files during a move.
MOVE_THREADS = 4


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
    >>> from croct_pandas.cache_staging import page_name, read_chain, write_page
    >>> from croct_pandas.cache_store import SCHEMA_VERSION, Namespace, read_partition
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
