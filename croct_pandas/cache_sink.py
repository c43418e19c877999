"""The sink ``read_croct_events`` writes through when the cache is on.

- :meth:`CacheSink.plan`: the window minus what the cache holds for the requested types (final
  intervals only), cut into slices; a chain an interrupted run left half-staged resumes from its
  last stored cursor, and chains it left complete are moved at once, with no request.
- :meth:`CacheSink.on_page`: each page goes to ``_staging/`` as one file carrying its next cursor,
  committed by one rename (from worker threads; each chain belongs to one thread), and into the
  chain's :class:`~croct_pandas.normalize_pool.PageBatcher`, normalised ~10,000 events at a
  time (in the worker process when it has room).
- :meth:`CacheSink.on_slice_done`: the slice's chain is complete on disk, which is its checkpoint.
  When the call's last slice is done, the complete chains move into the dataset together (each
  (type, day) file rewritten once, not once per slice), then the manifest records their intervals,
  then their pages go. A move cut short is done again by the next call's plan().
- :meth:`CacheSink.tables` / :meth:`CacheSink.attrs`: the window's rows, read back from the
  dataset, and what the frame's ``attrs`` should say about them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from croct_pandas.cache_files import listdir, read_json, remove_dataset, remove_tree, write_json
from croct_pandas.cache_manifest import ALL_TYPES, BEGIN, Manifest, subtract
from croct_pandas.cache_move import move_chains
from croct_pandas.cache_staging import (
    Chain,
    normalize_pages,
    page_name,
    read_chain,
    write_page,
)
from croct_pandas.cache_store import (
    DAY_MS,
    SCHEMA_VERSION,
    Namespace,
    day_start,
    read_partition,
)
from croct_pandas.client import Page
from croct_pandas.errors import CacheError, CacheWarning
from croct_pandas.normalize import NormalizedPage
from croct_pandas.normalize_pool import PageBatcher
from croct_pandas.params import iso_ms
from croct_pandas.slices import Slice, split_intervals

__all__ = ["CacheSink", "load_manifest"]

#: Threads reading partition files back (Parquet decoding runs outside the GIL).
READ_THREADS = 4


def load_manifest(ns: Namespace, *, metadata: dict[str, Any], base_url: str) -> Manifest:
    """The namespace's manifest (call with its lock held), rebuilding the namespace with a
    :class:`CacheWarning` when another schema version wrote it or it is unreadable.

    Examples
    --------
    >>> import tempfile
    >>> ns = Namespace(tempfile.mkdtemp(), "app")
    >>> with ns.lock:
    ...     manifest = load_manifest(ns, metadata={"applicationSlug": "a"}, base_url="http://x")
    >>> manifest.version == SCHEMA_VERSION, manifest.coverage
    (True, {})
    """
    doc = read_json(ns.manifest)
    if doc is not None and doc.get("version") == SCHEMA_VERSION:
        return Manifest.from_json(doc)
    fresh = Manifest(SCHEMA_VERSION, metadata=dict(metadata), base_url=base_url)
    if doc is not None and not metadata:
        fresh.metadata = dict(doc.get("metadata") or {})
    if doc is not None or os.path.exists(ns.events) or os.path.exists(ns.staging):
        found = doc.get("version") if doc is not None else "no readable manifest"
        warnings.warn(
            f"the cache folder {ns.path} was written by another cache version ({found}; this "
            f"one is {SCHEMA_VERSION}): it is rebuilt and its events are fetched again",
            CacheWarning,
            stacklevel=4,
        )
        # the dataset goes first: a crash now leaves an old-version manifest, so the next
        # call rebuilds again, never a current manifest beside files of another version
        remove_dataset(ns.events)
        remove_tree(ns.staging)
    write_json(ns.manifest, fresh.to_json(), ns.tmp)
    return fresh


class CacheSink:
    """Pages of one ``read_croct_events`` call into the namespace ``ns`` and back out.

    Pages are staged as received and normalised in batches per chain, kept in memory for the
    move at the end of the call.

    ``metadata`` holds the application's names and slugs (known without a request).
    :func:`croct_pandas.cache.open_sink` builds one; its docstring has an example.
    """

    def __init__(
        self,
        ns: Namespace,
        *,
        window: tuple[int | None, int],
        events: Sequence[str] | None,
        workers: int,
        refresh: bool,
        settle_ms: int,
        now_ms: int,
        metadata: dict[str, Any],
        base_url: str,
    ) -> None:
        self.ns = ns
        self.window = window
        self.events = None if events is None else tuple(sorted(set(events)))
        self.workers = workers
        self.refresh = refresh
        self.settle_ms = settle_ms
        self.now_ms = now_ms
        self.metadata = dict(metadata)
        self.base_url = base_url
        self._span = (BEGIN if window[0] is None else window[0], window[1])
        joined = ",".join(self.events or ())
        self._types_key = (
            "all" if self.events is None else hashlib.sha256(joined.encode()).hexdigest()[:16]
        )
        self._lock = threading.Lock()
        self._next_seq: dict[tuple[int | None, int], int] = {}
        self._chain_fetched: dict[tuple[int | None, int], int] = {}
        #: per chain: the first page normalised here (a resumed chain's earlier pages are on
        #: disk only) and its batcher
        self._first_seq: dict[tuple[int | None, int], int] = {}
        self._batchers: dict[tuple[int | None, int], PageBatcher] = {}
        self._planned = 0
        self._done: list[Slice] = []
        self._loaded: tuple[list[tuple[str, pa.Table]], set[str], Manifest] | None = None

    # -- planning ------------------------------------------------------------------------

    def plan(self) -> list[Slice]:
        with self.ns.lock:
            manifest = self._manifest()
            self.ns.clean_tmp()
            chains = self._staged_chains()
            complete = [c for c in chains if c.complete]
            self._commit(manifest, complete)
            held = [] if self.refresh else manifest.covered(self.events, self.settle_ms)
            # what a stopped run of this call finished is held for its rerun, even where a
            # refresh or the settle rule would fetch it again: the rerun resumes, it does not
            # start over
            held += [c.interval for c in complete if self._resumes(c)]
            gaps = subtract([self._span], held)
            slices: list[Slice] = []
            for chain in chains:
                if chain.complete or chain.meta.get("types_key") != self._types_key:
                    continue
                if not self._resumes(chain):
                    # a refresh refetches what a stopped ordinary call left half done; its own
                    # slices would reuse that chain's folder
                    if not subtract([chain.interval], [self._span]):
                        remove_tree(chain.path)
                    continue
                if subtract([chain.interval], gaps):
                    continue  # held since, or outside this window: not this call's to resume
                gaps = subtract(gaps, [chain.interval])
                start, end = chain.meta["start"], chain.interval[1]
                slices.append(Slice(start, end, chain.next_cursor))
                self._next_seq[(start, end)] = len(chain.pages)
                self._chain_fetched[(start, end)] = chain.fetched_at
        if gaps and gaps[0][0] == BEGIN:
            slices.append(Slice(None, gaps[0][1]))
            gaps = gaps[1:]
        slices += split_intervals(gaps, self.workers)
        slices.sort(key=lambda s: BEGIN if s.start is None else s.start)
        self._planned = len(slices)
        return slices

    def _resumes(self, chain: Chain) -> bool:
        """Whether this call takes up ``chain``, staged by a stopped call: one for the same
        types, and a refresh only one that a refresh staged."""
        same_types = chain.meta.get("types_key") == self._types_key
        return same_types and (not self.refresh or bool(chain.meta.get("refresh")))

    def _manifest(self) -> Manifest:
        return load_manifest(self.ns, metadata=self.metadata, base_url=self.base_url)

    def _chain_dir(self, start: int | None, end: int) -> str:
        name = f"{self._types_key}~{'begin' if start is None else start}~{end}"
        return os.path.join(self.ns.staging, name)

    def _staged_chains(self) -> list[Chain]:
        now = time.time()
        found = (
            read_chain(os.path.join(self.ns.staging, n), now) for n in listdir(self.ns.staging)
        )
        return sorted((c for c in found if c is not None), key=lambda c: c.path)

    # -- pages ---------------------------------------------------------------------------

    def on_page(self, task: Slice, page: Page) -> None:
        chain = (task.start, task.end)
        with self._lock:
            seq = self._next_seq.get(chain, 0)
            self._next_seq[chain] = seq + 1
            self._first_seq.setdefault(chain, seq)
            batcher = self._batchers.setdefault(chain, PageBatcher())
            fetched_at = self._chain_fetched.setdefault(chain, self.now_ms)
            if page.metadata and page.metadata != self.metadata:
                self.metadata = dict(page.metadata)
        meta = {
            "version": SCHEMA_VERSION,
            "seq": seq,
            "types_key": self._types_key,
            "refresh": self.refresh,
            "events": None if self.events is None else list(self.events),
            "start": task.start,
            "end": task.end,
            "fetched_at": fetched_at,
            "next_cursor": page.next_cursor,
            "rows": page.count,
        }
        folder = self._chain_dir(task.start, task.end)
        write_page(os.path.join(folder, page_name(seq)), page.items_json(), meta, folder)
        # only after the page is stored: memory never runs ahead of the disk
        batcher.add(page)

    def restart(self, task: Slice) -> None:
        """Drop the stored pages of ``task``'s chain, whose stored cursor the API refused; the
        slice is then fetched from its start into the same folder."""
        key = (task.start, task.end)
        with self.ns.lock:
            remove_tree(self._chain_dir(task.start, task.end))
        with self._lock:
            for state in (self._next_seq, self._first_seq, self._chain_fetched, self._batchers):
                state.pop(key, None)

    def on_slice_done(self, task: Slice) -> None:
        batcher = self._batchers.get((task.start, task.end))
        if batcher is not None:
            batcher.flush()
        with self._lock:
            self._done.append(task)
            last = len(self._done) >= self._planned
        if last:
            self._commit_done()

    def _commit_done(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        if not done:
            return
        with self.ns.lock:
            manifest = self._manifest()
            chains = []
            normalized: dict[str, list[NormalizedPage]] = {}
            for task in done:
                key = (task.start, task.end)
                folder = self._chain_dir(task.start, task.end)
                chain = read_chain(folder, time.time())
                if chain is None or not chain.complete:
                    # another process ran the same call and moved this chain first: its rows
                    # and record are in place, and what is left here duplicates its pages
                    shutil.rmtree(folder, ignore_errors=True)
                    continue
                chains.append(chain)
                if len(chain.pages) == self._next_seq.get(key):
                    first = self._first_seq.get(key, 0)
                    earlier = normalize_pages(chain.pages[:first]) if first else []
                    batcher = self._batchers.get(key)
                    later = batcher.results() if batcher is not None else []
                    normalized[chain.path] = earlier + later
            self._commit(manifest, chains, normalized)
            for task in done:
                self._batchers.pop((task.start, task.end), None)

    # -- moving chains into the dataset ----------------------------------------------------

    def _commit(
        self,
        manifest: Manifest,
        chains: list[Chain],
        normalized: dict[str, list[NormalizedPage]] | None = None,
    ) -> None:
        """Move complete chains into the dataset, record them, drop their pages (lock held)."""
        groups: dict[tuple[str, ...] | None, list[Chain]] = {}
        for chain in chains:
            if not self._superseded(manifest, chain):
                groups.setdefault(chain.events, []).append(chain)
        for events, group in sorted(groups.items(), key=lambda g: min(c.fetched_at for c in g[1])):
            move_chains(self.ns, events, group, normalized)
            for chain in group:
                manifest.record(events, chain.interval, chain.fetched_at)
        if groups:
            if self.metadata:
                manifest.metadata = dict(self.metadata)
            write_json(self.ns.manifest, manifest.to_json(), self.ns.tmp)
        for chain in chains:
            remove_tree(chain.path)

    @staticmethod
    def _superseded(manifest: Manifest, chain: Chain) -> bool:
        """Whether newer fetches already hold the chain's whole interval for its types."""
        keys = [ALL_TYPES] if chain.events is None else chain.events
        for key in keys:
            newer = [
                (r.start, r.end) for r in manifest.records(key) if r.fetched_at >= chain.fetched_at
            ]
            if subtract([chain.interval], newer):
                return False
        return True

    # -- reading back ----------------------------------------------------------------------

    def _load(self) -> tuple[list[tuple[str, pa.Table]], set[str], Manifest]:
        if self._loaded is not None:
            return self._loaded
        self._commit_done()
        with self.ns.lock:
            manifest = self._manifest()
            if subtract([self._span], manifest.covered(self.events, None)):
                raise CacheError(
                    f"the cache folder {self.ns.path} lost part of the window while it was "
                    "being read (cleared or rebuilt by another process); call again"
                )
            types = self.ns.types_on_disk() if self.events is None else list(self.events)
            wanted = [
                (event_type, self.ns.partition(event_type, day))
                for event_type in types
                for day in self.ns.days_on_disk(event_type)
                if _overlaps(day, self._span)
            ]
            with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="croct-cache") as pool:
                found = list(pool.map(lambda w: read_partition(w[1], w[0]), wanted))
        tables: list[tuple[str, pa.Table]] = []
        versions: set[str] = set()
        for (event_type, _), part in zip(wanted, found):
            if part is not None and part[0].num_rows:
                tables.append((event_type, part[0]))
                versions |= part[1]
        self._loaded = (tables, versions, manifest)
        return self._loaded

    def tables(self) -> Iterable[tuple[str, pa.Table]]:
        return self._load()[0]

    def attrs(self) -> dict[str, Any]:
        tables, versions, manifest = self._load()
        oldest = manifest.oldest_fetch(self.events, self._span)
        unsettled = subtract([self._span], manifest.covered(self.events, self.settle_ms))
        out: dict[str, Any] = {
            "fetched_at": iso_ms(self.now_ms if oldest is None else oldest),
            "provisional": bool(unsettled),
        }
        metadata = manifest.metadata or self.metadata
        if metadata:
            out["metadata"] = dict(metadata)
        if tables:
            out["spec_version"] = versions.pop() if len(versions) == 1 else "mixed"
        return out


def _overlaps(day: str, span: tuple[int, int]) -> bool:
    start = day_start(day)
    return start < span[1] and start + DAY_MS > span[0]
