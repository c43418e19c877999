"""The served store: the bodies of ``GET /export/events`` pages and ``/export/events/{id}``.

Each event is encoded to JSON once, when the store is built; a page is the encoded items joined
with commas between a fixed head and tail, found by bisecting the sorted timestamps of the
requested types (the position lists per type filter are built on first use).
"""

from __future__ import annotations

import secrets
import threading
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from croct_pandas.emulator.dialect import event_id
from croct_pandas.emulator.query import (
    _open_cursor,
    _parse_query,
    _Problem,
    _query_digest,
    _seal,
)

__all__: list[str] = []

_LIST_PATH = "/export/events"


class _Pages:
    """Answers a path and query with a body, over ``events`` sorted by timestamp and id."""

    def __init__(self, events: list[dict[str, Any]], metadata: Mapping[str, Any]) -> None:
        self._encoded = [orjson.dumps(e) for e in events]
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._types = [_type_of(e) for e in events]
        self._timestamps = [e["timestamp"] for e in events]
        self._by_id = {event_id(e): i for i, e in enumerate(events) if event_id(e)}
        self._views: dict[frozenset[str] | None, tuple[list[int] | None, list[int]]] = {
            None: (None, self._timestamps)
        }
        self._metadata_bytes = orjson.dumps(metadata)

    def route(
        self, path: str, params: list[tuple[str, str]], repeat: int, *, tail_cursor: bool
    ) -> tuple[int, bytes, int, int]:
        """Status, body, items served and items repeated; a :class:`_Problem` when refused."""
        if path == _LIST_PATH:
            return self._page(params, repeat, tail_cursor)
        if path.startswith(_LIST_PATH + "/") and len(path) > len(_LIST_PATH) + 1:
            wanted = unquote(path[len(_LIST_PATH) + 1 :])
            index = self._by_id.get(wanted)
            if index is None:
                raise _Problem(
                    404,
                    "Resource not found",
                    f"no event with id {wanted!r}",
                    "https://croct.help/api/resource-not-found",
                )
            body = b'{"metadata":' + self._metadata_bytes + b',"event":' + self._encoded[index]
            return 200, body + b"}", 1, 0
        raise _Problem(
            404, "Resource not found", f"no endpoint at {path}", "https://croct.help/api/not-found"
        )

    def _page(
        self, params: list[tuple[str, str]], repeat: int, tail_cursor: bool
    ) -> tuple[int, bytes, int, int]:
        start, end, size, types, cursor = _parse_query(params)
        digest = _query_digest(start, end, types)
        positions, stamps = self._view(types)
        low = 0 if start is None else bisect_left(stamps, start)
        high = len(stamps) if end is None else bisect_left(stamps, end)
        first = low
        repeated = 0
        if cursor is not None:
            after = _open_cursor(self._secret, cursor, digest, len(self._encoded))
            first = max(low, after if positions is None else bisect_left(positions, after))
            # at-least-once delivery: the page starts a few items before the cursor
            repeated = max(0, min(repeat, size - 1, first - low))
            first -= repeated
        last = min(high, first + size)
        chosen = range(first, last) if positions is None else positions[first:last]
        encoded = self._encoded
        items = b",".join([encoded[i] for i in chosen])
        count = max(0, last - first)
        if last < high:
            next_cursor = _seal(self._secret, _global(positions, last - 1) + 1, digest)
        elif tail_cursor:
            ended = _global(positions, high - 1) + 1 if high > 0 else 0
            next_cursor = _seal(self._secret, ended, digest)
        else:
            next_cursor = ""
        body = b"".join(
            (
                b'{"items":[',
                items,
                b'],"metadata":',
                self._metadata_bytes,
                b',"nextCursor":"',
                next_cursor.encode(),
                b'"}',
            )
        )
        return 200, body, count, repeated

    def _view(self, types: frozenset[str] | None) -> tuple[list[int] | None, list[int]]:
        view = self._views.get(types)
        if view is None:
            assert types is not None
            positions = [i for i, kind in enumerate(self._types) if kind in types]
            stamps = self._timestamps
            view = (positions, [stamps[i] for i in positions])
            with self._lock:
                self._views[types] = view
        return view


def _global(positions: list[int] | None, index: int) -> int:
    return index if positions is None else positions[index]


def _type_of(event: dict[str, Any]) -> str:
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return ""
    kind = payload.get("@type", payload.get("type", ""))
    return kind if isinstance(kind, str) else ""
