"""What a list request asks for: its query checked, and its cursors sealed and opened.

A bad query is a :class:`_Problem` (a 400 ``application/problem+json`` body naming the parameter).
Cursors are opaque, URL-safe base64 of a position and a digest of the query they belong to, signed
with a secret of the emulator: a cursor that was altered, came from another emulator or is sent
with another window or type filter is refused with 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import orjson

from croct_pandas.schema import EVENT_TYPES

__all__: list[str] = []

_KNOWN_TYPES = frozenset(EVENT_TYPES)
_CURSOR = struct.Struct(">BQ8s")  # version, position, query digest
_SIGNATURE_BYTES = 16


class _Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, kind: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind


def _invalid(detail: str) -> _Problem:
    return _Problem(400, "Invalid input", detail, "https://croct.help/api/invalid-input")


def _problem_body(status: int, title: str, detail: str, kind: str) -> bytes:
    return orjson.dumps({"type": kind, "title": title, "status": status, "detail": detail})


def _parse_query(
    params: list[tuple[str, str]],
) -> tuple[int | None, int | None, int, frozenset[str] | None, str | None]:
    single: dict[str, str] = {}
    events: list[str] = []
    for name, value in params:
        if name == "events":
            events.append(value)
        elif name in ("start", "end", "pageSize", "cursor"):
            if name in single:
                raise _invalid(f"{name}: given more than once")
            single[name] = value
    start = _integer(single, "start", 0, 2**63 - 1)
    end = _integer(single, "end", 0, 2**63 - 1)
    if start is not None and end is not None and start >= end:
        raise _invalid(f"end: must be greater than start (start={start}, end={end})")
    size = _integer(single, "pageSize", 1, 1000)
    for kind in events:
        if kind not in _KNOWN_TYPES:
            raise _invalid(
                f"events: unknown event type {kind!r}; accepted: {', '.join(EVENT_TYPES)}"
            )
    cursor = single.get("cursor")
    if cursor == "":
        raise _invalid("cursor: must not be empty; leave it out to start from the beginning")
    return start, end, 100 if size is None else size, frozenset(events) or None, cursor


def _integer(single: dict[str, str], name: str, low: int, high: int) -> int | None:
    text = single.get(name)
    if text is None:
        return None
    stripped = text.strip()
    if not stripped.lstrip("-").isdigit() or not stripped.isascii():
        raise _invalid(f"{name}: must be an integer; got {text!r}")
    value = int(stripped)
    if not low <= value <= high:
        raise _invalid(f"{name}: must be from {low} to {high}; got {value}")
    return value


def _query_digest(start: int | None, end: int | None, types: frozenset[str] | None) -> bytes:
    return hashlib.sha256(
        f"{start}|{end}|{','.join(sorted(types)) if types else '*'}".encode()
    ).digest()[:8]


def _seal(secret: bytes, position: int, digest: bytes) -> str:
    raw = _CURSOR.pack(1, position, digest)
    signature = hmac.new(secret, raw, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(raw + signature).rstrip(b"=").decode()


def _open_cursor(secret: bytes, cursor: str, digest: bytes, size: int) -> int:
    """The position sealed in ``cursor``, which must be at most ``size`` (the store's)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        blob = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (ValueError, UnicodeEncodeError):
        raise _invalid("cursor: not a cursor returned by this API") from None
    if len(blob) != _CURSOR.size + _SIGNATURE_BYTES:
        raise _invalid("cursor: not a cursor returned by this API")
    raw, signature = blob[: _CURSOR.size], blob[_CURSOR.size :]
    expected = hmac.new(secret, raw, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    if not hmac.compare_digest(signature, expected):
        raise _invalid("cursor: not a cursor returned by this API (altered or from elsewhere)")
    version, position, query = _CURSOR.unpack(raw)
    if version != 1 or position > size:
        raise _invalid("cursor: not a cursor returned by this API")
    if not hmac.compare_digest(query, digest):
        raise _invalid(
            "cursor: belongs to another query; send the same start, end and events with "
            "every page of a cursor chain"
        )
    return position
