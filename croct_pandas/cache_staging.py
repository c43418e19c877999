"""Staged pages: one file per page as received, and the cursor chains they make up.

Each cursor chain (one slice of one call) stages its pages in ``_staging/<chain>/page-<n>``: one
Arrow IPC file per page, holding the page's wire events as received (JSON) and, in its metadata,
the chain's next cursor, committed by one rename. The pages from ``page-000000`` up to the first
gap are the chain's stored prefix: an interrupted chain resumes from the last one's cursor, and a
chain whose last page ended it (no next cursor, or no items) is complete and waits to be moved.

Pages are staged as received rather than normalised because normalising ~10,000 events at a time
(:class:`~croct_pandas.normalize_pool.PageBatcher`) costs a quarter less than page by page: the sink
normalises each chain in batches as it arrives and hands the tables to the move, and only a chain
left by an interrupted run is normalised from its staged pages.

Complete chains move into the dataset by :func:`croct_pandas.cache_move.move_chains`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from croct_pandas.cache_files import atomic_write, listdir, remove_file
from croct_pandas.cache_manifest import BEGIN
from croct_pandas.cache_store import SCHEMA_VERSION
from croct_pandas.errors import CacheError
from croct_pandas.normalize import NormalizedPage
from croct_pandas.normalize_pool import PageBatcher
from croct_pandas.page import Page

__all__ = [
    "Chain",
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
