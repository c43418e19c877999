"""Wire events -> per-type Arrow tables, by the schema table. No network, no disk.

A page of wire events (either dialect) becomes one :class:`pyarrow.Table` per event type, in the
*storage schema* of that type (:func:`~croct_pandas.schema.storage_schema`): the core columns,
``context.*`` and the type's ``payload.*`` columns, each with its schema type whatever the page
held, free-form objects as JSON text, and ``_croct_raw`` (JSON text, column -> value as sent)
holding every value that did not fit and every field the schema does not know. The cache stores
exactly these tables, and :mod:`croct_pandas.frame` turns them into the frame.

Whole response bodies usually skip the dicts altogether (:mod:`croct_pandas.normalize_typed`,
which shares the storage table of :mod:`croct_pandas.normalize_table` with this module). From
dicts, the fast path converts a whole group of events with one ``pyarrow.array`` call against
the type's struct and fixes kinds up with vectorised casts; a group that does not fit it
(:mod:`croct_pandas.normalize_check` says which: a value of another type, a renamed key, a list
element with unknown keys) goes value by value through :mod:`croct_pandas.normalize_slow`.
Python dicts live only for one batch. This module holds the entry points and picks the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from croct_pandas.normalize_check import (
    _all_known,
    _check_keys,
    _lists_are_lists,
    bools_read_as_numbers,
)
from croct_pandas.normalize_slow import normalize_group_slow
from croct_pandas.normalize_table import (
    _CONVERSION_ERRORS,
    _dict_values,
    _flatten,
    _item_type,
    _NotFast,
    _storage_table,
)
from croct_pandas.normalize_tree import DISCRIMINATORS, Raw
from croct_pandas.schema import RAW_COLUMN, storage_schema

__all__ = [
    "BATCH_EVENTS",
    "RAW_COLUMN",
    "NormalizedPage",
    "event_type_of",
    "normalize_items",
    "normalize_page",
    "storage_schema",
]

#: Events normalised per call when pages are batched (see
#: :class:`~croct_pandas.normalize_pool.PageBatcher`).
BATCH_EVENTS = 10_000


@dataclass
class NormalizedPage:
    """One page, normalised: a storage-schema table per event type."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    #: spec versions seen on the page: ``"0.7"`` (``id``/``@type``) and/or ``"0.8"``
    spec_versions: set[str] = field(default_factory=set)

    @property
    def num_rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


def event_type_of(event: Mapping[str, Any]) -> str | None:
    """The type of a wire event: ``payload["@type"]`` (0.7.x) or ``payload["type"]`` (0.8.0)."""
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return None
    for key in DISCRIMINATORS:
        value = payload.get(key)
        if isinstance(value, str):
            return value
    return None


def normalize_page(body: bytes) -> tuple[NormalizedPage, dict[str, Any], str | None]:
    """Parse one response body and normalise its items.

    Returns the page, the response ``metadata`` and the ``nextCursor`` (None when empty).

    Examples
    --------
    >>> body = b'{"items": [], "metadata": {}, "nextCursor": ""}'
    >>> page, metadata, cursor = normalize_page(body)
    >>> page.num_rows, cursor
    (0, None)
    """
    doc = orjson.loads(body)
    return normalize_items(doc["items"]), doc.get("metadata") or {}, doc.get("nextCursor") or None


def normalize_items(items: Iterable[Mapping[str, Any]]) -> NormalizedPage:
    """Normalise wire events into one storage-schema table per event type.

    Examples
    --------
    >>> page = normalize_items([{"id": "e1", "timestamp": 1767225600000, "sessionId": "s",
    ...     "userId": "u", "context": None,
    ...     "payload": {"@type": "goalCompleted", "goalId": "signup", "value": "9.5",
    ...                 "currency": None}}])
    >>> page.tables["goalCompleted"].column("payload.value").to_pylist()
    [9.5]
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    out = NormalizedPage()
    for item in items:
        payload = item.get("payload")
        event_type = payload.get("@type") if payload.__class__ is dict else None
        if event_type.__class__ is not str:
            event_type = event_type_of(item) or "unknown"
        groups.setdefault(event_type, []).append(item)
    for event_type, group in groups.items():
        out.tables[event_type], specs = _normalize_group(event_type, group)
        out.spec_versions |= specs
    return out


def _spec_of(item: Mapping[str, Any]) -> str:
    if "eventId" in item:
        return "0.8"
    payload = item.get("payload")
    if isinstance(payload, dict) and "@type" not in payload and "type" in payload:
        return "0.8"
    return "0.7"


def _normalize_group(event_type: str, items: list[Mapping[str, Any]]) -> tuple[pa.Table, set[str]]:
    try:
        return _normalize_fast(event_type, items)
    except _NotFast:
        return normalize_group_slow(event_type, items), {_spec_of(item) for item in items}


# -- the fast path ---------------------------------------------------------------------------


def _normalize_fast(event_type: str, items: list[Mapping[str, Any]]) -> tuple[pa.Table, set[str]]:
    raw = Raw()
    if not _all_known(event_type, items):
        _check_keys(event_type, items, raw)
    for variant in (0, 1):
        if not _lists_are_lists(event_type, items, variant):
            raise _NotFast
        try:
            converted = pa.array(items, type=_item_type(event_type, variant))
        except _CONVERSION_ERRORS:
            continue
        leaves = _flatten(converted)
        if bools_read_as_numbers(items, leaves):
            raise _NotFast
        try:
            table = _storage_table(event_type, items, leaves, raw, _dict_values(items))
        except _CONVERSION_ERRORS:
            continue
        return table, _specs(items, leaves)
    raise _NotFast


def _specs(items: list[Mapping[str, Any]], leaves: dict[str, Any]) -> set[str]:
    """Spec versions of a group: ``id`` marks 0.7.x, ``eventId`` 0.8.0."""
    n = len(items)
    with_id, with_event_id = n - leaves["id"].null_count, n - leaves["eventId"].null_count
    if with_id == n and with_event_id == 0:
        return {"0.7"}
    return {_spec_of(item) for item in items}
