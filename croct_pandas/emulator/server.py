"""``Emulator``: Croct's Export API (``GET /export/events``, ``/export/events/{id}``) on loopback.

Each event is encoded to JSON once, when the emulator is built; a page is the encoded items joined
with commas between a fixed head and tail, found by bisecting the sorted timestamps of the
requested types (the position lists per type filter are built on first use). Cursors are opaque,
URL-safe base64 of a position and a digest of the query they belong to, signed with a secret of
this emulator: a cursor that was altered, came from another emulator or is sent with another
window or type filter is refused with 400.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import hmac
import logging
import secrets
import socket
import struct
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from croct_pandas.emulator.catalog import APP_METADATA
from croct_pandas.emulator.dialect import DIALECTS, convert, event_id
from croct_pandas.emulator.faults import Decision, Faults, Injector
from croct_pandas.emulator.generator import generate_events
from croct_pandas.errors import InvalidArgumentError
from croct_pandas.process_state import paused_gc
from croct_pandas.schema import EVENT_TYPES

logger = logging.getLogger("croct_pandas.emulator")

__all__ = ["Emulator", "RequestRecord"]

_LIST_PATH = "/export/events"
_PROBLEM = "application/problem+json"
_KNOWN_TYPES = frozenset(EVENT_TYPES)
_CURSOR = struct.Struct(">BQ8s")  # version, position, query digest
_SIGNATURE_BYTES = 16
_MASK = "***"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it, and what it answered.

    ``faults`` lists what was injected: ``"latency"``, ``"slow"``, ``"rate_limit"``,
    ``"error:500"`` (or 502, 503), ``"reset"``, ``"truncate"``, ``"repeat:N"``. ``params`` and
    ``headers`` are as sent, except that the API key never appears (it reads ``***``).
    """

    method: str
    path: str
    params: list[tuple[str, str]]
    status: int
    items: int
    faults: list[str]
    time: float
    headers: list[tuple[str, str]]


class _Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, kind: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind


def _invalid(detail: str) -> _Problem:
    return _Problem(400, "Invalid input", detail, "https://croct.help/api/invalid-input")


def _problem_body(status: int, title: str, detail: str, kind: str) -> bytes:
    return orjson.dumps({"type": kind, "title": title, "status": status, "detail": detail})


class Emulator:
    """A local Croct Export API serving a synthetic (or given) store over real HTTP.

    Parameters
    ----------
    events : list of dict, optional
        Wire events to serve (either dialect); by default a store is generated with
        :func:`generate_events` from ``users``, ``days``, ``seed`` and ``start``.
    users, days, seed, start
        Passed to :func:`generate_events` when ``events`` is None.
    api_key : str, optional
        The key clients must send in ``X-Api-Key``; a random one when None.
    dialect : {"0.7.1", "0.8.0"}
        The wire dialect served.
    faults : Faults, optional
        Fault injection; none by default.
    tail_cursor : bool
        When True the last page still carries a cursor, and a call with it returns no items.
    port : int
        TCP port on 127.0.0.1; 0 picks a free one.

    Examples
    --------
    >>> import requests
    >>> with Emulator(users=5, days=1, api_key="k") as emu:
    ...     page = requests.get(emu.url + "/export/events", params={"pageSize": 2},
    ...                         headers={"X-Api-Key": "k"}).json()
    >>> len(page["items"]), page["items"] == emu.events[:2]
    (2, True)
    """

    def __init__(
        self,
        events: Iterable[dict[str, Any]] | None = None,
        *,
        users: int = 1000,
        days: int = 7,
        seed: int = 0,
        start: str | date = "2026-01-01",
        api_key: str | None = None,
        dialect: str = "0.7.1",
        faults: Faults | None = None,
        tail_cursor: bool = False,
        port: int = 0,
    ) -> None:
        if dialect not in DIALECTS:
            raise InvalidArgumentError(f"dialect must be one of {DIALECTS}; got {dialect!r}")
        if faults is not None and not isinstance(faults, Faults):
            raise InvalidArgumentError(f"faults must be a Faults or None; got {faults!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgumentError(f"port must be an integer from 0 to 65535; got {port!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise InvalidArgumentError("api_key must be a non-empty string or None")
        with paused_gc():
            if events is None:
                raw = generate_events(users=users, days=days, seed=seed, start=start)
            else:
                raw = _private_copy(events)
            self.events = convert(raw, dialect, seed=seed)
            self.events.sort(key=lambda e: (e["timestamp"], event_id(e)))
            self._encoded = [orjson.dumps(e) for e in self.events]
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.dialect = dialect
        self.faults = faults
        self.tail_cursor = bool(tail_cursor)
        self.metadata = dict(APP_METADATA)
        self.requests: list[RequestRecord] = []
        self._port = port
        self._secret = secrets.token_bytes(32)
        self._injector = Injector(faults)
        self._lock = threading.Lock()
        self._types = [_type_of(e) for e in self.events]
        self._timestamps = [e["timestamp"] for e in self.events]
        self._by_id = {event_id(e): i for i, e in enumerate(self.events) if event_id(e)}
        self._views: dict[frozenset[str] | None, tuple[list[int] | None, list[int]]] = {
            None: (None, self._timestamps)
        }
        self._metadata_bytes = orjson.dumps(self.metadata)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        # The store is long-lived and holds millions of objects: left to the cyclic collector,
        # every collection in this process (a client parsing pages, a test) would walk it again.
        gc.freeze()

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL to give a client (the API is under /export)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: use `with Emulator(...)` or start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Emulator:
        """Start serving in a background thread; returns the emulator."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return (
            f"Emulator({where}, dialect={self.dialect!r}, events={len(self.events)}, "
            f"tail_cursor={self.tail_cursor}, faults={self.faults!r})"
        )

    def reset_log(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self.requests.clear()

    # -- requests ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        received = time.time()
        parts = urlsplit(handler.path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        key = handler.headers.get("X-Api-Key")
        decision = Decision()
        items = 0
        try:
            if handler.command != "GET":
                # a body the client may have sent is never read: this connection cannot be reused
                handler.close_connection = True
                raise _Problem(
                    405, "Method not allowed", "only GET is served", "https://croct.help/api/method"
                )
            if not key or not hmac.compare_digest(key.encode(), self.api_key.encode()):
                raise _Problem(
                    401,
                    "Unauthorized",
                    "a valid API key is required in the X-Api-Key header",
                    "https://croct.help/api/unauthorized",
                )
            decision = self._injector.decide(key)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.status == 429:
                raise _Problem(
                    429,
                    "Too many requests",
                    "the rate limit of this API key was exceeded",
                    "https://croct.help/api/rate-limit-exceeded",
                )
            if decision.status is not None:
                raise _Problem(
                    decision.status,
                    "Internal server error" if decision.status == 500 else "Service unavailable",
                    "the request could not be processed; try again",
                    "https://croct.help/api/internal-error",
                )
            status, body, items, repeated = self._route(parts.path, params, decision.repeat)
            content_type = "application/json"
        except _Problem as problem:
            status, content_type, repeated = problem.status, _PROBLEM, 0
            body = _problem_body(problem.status, problem.title, problem.detail, problem.kind)
        injected = list(decision.injected) + ([f"repeat:{repeated}"] if repeated else [])
        self._record(handler, parts.path, params, status, items, injected, received)
        headers = [("Content-Type", content_type)]
        if status == 429 and decision.retry_after is not None:
            headers.append(("Retry-After", str(decision.retry_after)))
        if status == 405:
            headers.append(("Allow", "GET"))
        handler.answer(status, headers, body, decision)

    def _record(
        self,
        handler: _Handler,
        path: str,
        params: list[tuple[str, str]],
        status: int,
        items: int,
        injected: list[str],
        received: float,
    ) -> None:
        key = self.api_key

        def mask(name: str, value: str) -> str:
            if name.lower() in _SECRET_HEADERS or value == key:
                return _MASK
            # a very short key would also match inside ordinary words
            return value.replace(key, _MASK) if len(key) >= 6 and key in value else value

        record = RequestRecord(
            method=handler.command,
            path=path,
            params=[(k, mask(k, v)) for k, v in params],
            status=status,
            items=items,
            faults=injected,
            time=received,
            headers=[(k, mask(k, v)) for k, v in handler.headers.items()],
        )
        with self._lock:
            self.requests.append(record)

    def _route(
        self, path: str, params: list[tuple[str, str]], repeat: int
    ) -> tuple[int, bytes, int, int]:
        if path == _LIST_PATH:
            return self._page(params, repeat)
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

    # -- paging -----------------------------------------------------------------------------

    def _page(self, params: list[tuple[str, str]], repeat: int) -> tuple[int, bytes, int, int]:
        start, end, size, types, cursor = _parse_query(params)
        digest = hashlib.sha256(
            f"{start}|{end}|{','.join(sorted(types)) if types else '*'}".encode()
        ).digest()[:8]
        positions, stamps = self._view(types)
        low = 0 if start is None else bisect_left(stamps, start)
        high = len(stamps) if end is None else bisect_left(stamps, end)
        first = low
        repeated = 0
        if cursor is not None:
            after = self._open_cursor(cursor, digest)
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
            next_cursor = self._seal(_global(positions, last - 1) + 1, digest)
        elif self.tail_cursor:
            ended = _global(positions, high - 1) + 1 if high > 0 else 0
            next_cursor = self._seal(ended, digest)
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

    def _seal(self, position: int, digest: bytes) -> str:
        raw = _CURSOR.pack(1, position, digest)
        signature = hmac.new(self._secret, raw, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(raw + signature).rstrip(b"=").decode()

    def _open_cursor(self, cursor: str, digest: bytes) -> int:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            blob = base64.b64decode(padded, altchars=b"-_", validate=True)
        except (ValueError, UnicodeEncodeError):
            raise _invalid("cursor: not a cursor returned by this API") from None
        if len(blob) != _CURSOR.size + _SIGNATURE_BYTES:
            raise _invalid("cursor: not a cursor returned by this API")
        raw, signature = blob[: _CURSOR.size], blob[_CURSOR.size :]
        expected = hmac.new(self._secret, raw, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        if not hmac.compare_digest(signature, expected):
            raise _invalid("cursor: not a cursor returned by this API (altered or from elsewhere)")
        version, position, query = _CURSOR.unpack(raw)
        if version != 1 or position > len(self._encoded):
            raise _invalid("cursor: not a cursor returned by this API")
        if not hmac.compare_digest(query, digest):
            raise _invalid(
                "cursor: belongs to another query; send the same start, end and events with "
                "every page of a cursor chain"
            )
        return position


def _private_copy(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        # a deep copy: the caller's dicts are never touched, nor shared with the served store
        raw = orjson.loads(orjson.dumps(list(events)))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidArgumentError(f"events must be JSON-able wire events: {exc}") from None
    if not all(isinstance(e, dict) and isinstance(e.get("timestamp"), int) for e in raw):
        raise InvalidArgumentError("events must be dicts, each with an integer 'timestamp'")
    return raw


def _global(positions: list[int] | None, index: int) -> int:
    return index if positions is None else positions[index]


def _type_of(event: dict[str, Any]) -> str:
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return ""
    kind = payload.get("@type", payload.get("type", ""))
    return kind if isinstance(kind, str) else ""


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


class _Server(ThreadingHTTPServer):
    """Loopback server whose per-request failures (a client that hung up mid-answer, which
    fault tests do on purpose) go to the log, not to stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes; Nagle would hold the second one back
    disable_nagle_algorithm = True
    # idle keep-alive connections are dropped after this many seconds
    timeout = 60
    server_version = "croct-emulator"
    sys_version = ""

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        with self.emulator._lock:
            self.emulator._sockets.add(self.connection)

    def finish(self) -> None:
        with self.emulator._lock:
            self.emulator._sockets.discard(self.connection)
        # the peer (or an injected reset) may already have closed the socket
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self.emulator._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the emulator keeps its own log, without keys

    def answer(
        self, status: int, headers: list[tuple[str, str]], body: bytes, decision: Decision
    ) -> None:
        sent = body
        if decision.truncate:
            # a complete response whose JSON stops short: Content-Length matches the cut body
            sent = body[: max(1, min(len(body) - 1, int(len(body) * decision.cut)))]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(sent)))
        self.end_headers()
        try:
            if decision.reset:
                self.wfile.write(sent[: max(1, min(len(sent) - 1, int(len(sent) * decision.cut)))])
                self._reset()
            else:
                self.wfile.write(sent)
        except OSError:
            self.close_connection = True

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
