"""One page of ``GET /export/events``: its envelope checked at once, its events parsed on demand.

A body is checked whole as it arrives (well-formed UTF-8 JSON, ``items`` a list of objects,
``metadata`` an object, ``nextCursor`` a string) by msgspec, which finds the bytes of each event
without building it. The events become dicts only when :attr:`Page.items` is first read: the
export hands most bodies to the normalising worker process as they are, so this process never
builds their events at all. The body of one event (``GET /export/events/{id}``) is checked by
:func:`parse_event_body`. A body that fails a check is a :class:`TransportError` (retried).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from croct_pandas.errors import TransportError

__all__ = ["Page", "load_events_json", "parse_event_body"]


class _Envelope(msgspec.Struct):
    items: list[msgspec.Raw]
    metadata: dict[str, Any] | None = None
    nextCursor: str | None = None


_DECODER = msgspec.json.Decoder(_Envelope)
_OPEN_BRACE = ord("{")


class Page:
    """One page of ``GET /export/events``.

    ``items`` are the wire events (dicts, parsed when first read); ``next_cursor`` is ``None``
    when the server sent none (or an empty one); ``cursor`` is the one that was sent for this
    page (``None`` for the first page of a chain); ``nbytes`` is the size of the body and
    ``body`` the body itself as received (empty for a page built by hand).

    Examples
    --------
    >>> page = Page(items=[{"id": "e1"}], metadata={}, next_cursor=None)
    >>> len(page.items), page.next_cursor
    (1, None)
    >>> body = b'{"items": [{"id": "e1"}, {"id": "e2"}], "nextCursor": "c2"}'
    >>> page = Page.from_body(body, cursor="c1")
    >>> page.count, page.next_cursor, page.items[1]
    (2, 'c2', {'id': 'e2'})
    """

    __slots__ = ("_items", "_raw", "body", "count", "cursor", "metadata", "nbytes", "next_cursor")

    def __init__(
        self,
        items: list[dict[str, Any]],
        metadata: dict[str, Any],
        next_cursor: str | None,
        cursor: str | None = None,
        nbytes: int = 0,
        body: bytes = b"",
    ) -> None:
        self._items: list[dict[str, Any]] | None = items
        self._raw: list[msgspec.Raw] | None = None
        self.metadata = metadata
        self.next_cursor = next_cursor
        self.cursor = cursor
        self.nbytes = nbytes
        self.body = body
        #: the number of events (known without parsing them)
        self.count = len(items)

    @classmethod
    def from_body(cls, body: bytes, cursor: str | None = None) -> Page:
        """Check a response body and wrap it; :class:`TransportError` when it is not a page
        (the client retries those)."""
        try:
            envelope = _DECODER.decode(body)
            body.decode("utf-8")  # msgspec does not look inside the events' strings
        except msgspec.ValidationError as exc:
            raise TransportError(f"invalid body: {exc}") from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise TransportError(
                f"invalid or truncated JSON body ({len(body)} bytes: {exc})"
            ) from None
        raw = envelope.items
        if not all(memoryview(item)[0] == _OPEN_BRACE for item in raw):
            raise TransportError("invalid body: 'items' is not a list of objects")
        metadata, next_cursor = envelope.metadata or {}, envelope.nextCursor or None
        page = cls([], metadata, next_cursor, cursor, len(body), body)
        page._items, page._raw, page.count = None, raw, len(raw)
        return page

    @property
    def items(self) -> list[dict[str, Any]]:
        if self._items is None:
            self._items = load_events_json(self.body)["items"]
        return self._items

    def last_item(self) -> dict[str, Any] | None:
        """The page's last event, parsing only that one."""
        if self._items is not None or self._raw is None:
            return self.items[-1] if self.items else None
        return load_events_json(memoryview(self._raw[-1])) if self._raw else None

    def items_json(self) -> bytes:
        """The events as one JSON array, as sent when the body is at hand."""
        if self._raw is not None:
            return b"[" + b",".join(map(bytes, self._raw)) + b"]"
        return orjson.dumps(self.items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return (self.items, self.metadata, self.next_cursor, self.cursor, self.nbytes) == (
            other.items,
            other.metadata,
            other.next_cursor,
            other.cursor,
            other.nbytes,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Page(items=<{self.count} events>, metadata={self.metadata!r}, "
            f"next_cursor={self.next_cursor!r}, cursor={self.cursor!r}, nbytes={self.nbytes!r})"
        )


def load_events_json(data: bytes | memoryview) -> Any:
    """Parse JSON that holds events: what the body check let through and orjson still refuses
    (an out-of-range number, a lone surrogate escape) is a :class:`TransportError`.

    Examples
    --------
    >>> load_events_json(b'{"items": []}')
    {'items': []}
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # numbers or escapes that the body check let through and orjson refuses
        raise TransportError(f"invalid JSON in a page's events: {exc}") from None


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TransportError(f"invalid or truncated JSON body ({len(body)} bytes: {exc})") from None
    if not isinstance(data, dict):
        raise TransportError(f"JSON body is a {type(data).__name__}, not an object")
    return data


def parse_event_body(body: bytes) -> dict[str, Any]:
    """Check the body of ``GET /export/events/{id}``: a JSON object whose ``event`` is an object.

    Examples
    --------
    >>> parse_event_body(b'{"metadata": {}, "event": {"id": "e1"}}')["event"]
    {'id': 'e1'}
    >>> parse_event_body(b'{"event": []}')
    Traceback (most recent call last):
    ...
    croct_pandas.errors.TransportError: invalid body: 'event' is not an object
    """
    data = _load_object(body)
    if not isinstance(data.get("event"), dict):
        raise TransportError("invalid body: 'event' is not an object")
    return data
