"""``Emulator``: Croct's Export API (``GET /export/events``, ``/export/events/{id}``) on loopback.

The emulator owns the served store (built once, see :mod:`~croct_pandas.emulator.pages`), starts
and stops the loopback server (:mod:`~croct_pandas.emulator.handler`), checks the API key, applies
injected faults and keeps the log of requests, with the key masked.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from croct_pandas.emulator.catalog import APP_METADATA
from croct_pandas.emulator.dialect import DIALECTS, convert, event_id
from croct_pandas.emulator.faults import Decision, Faults, Injector
from croct_pandas.emulator.generator import generate_events
from croct_pandas.emulator.handler import _Handler, _Server
from croct_pandas.emulator.pages import _Pages
from croct_pandas.emulator.query import _Problem, _problem_body
from croct_pandas.errors import InvalidArgumentError
from croct_pandas.process_state import paused_gc

__all__ = ["Emulator", "RequestRecord"]

_PROBLEM = "application/problem+json"
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
            self._pages = _Pages(self.events, APP_METADATA)
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.dialect = dialect
        self.faults = faults
        self.tail_cursor = bool(tail_cursor)
        self.metadata = dict(APP_METADATA)
        self.requests: list[RequestRecord] = []
        self._port = port
        self._injector = Injector(faults)
        self._lock = threading.Lock()
        self._server: _Server | None = None
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
            status, body, items, repeated = self._pages.route(
                parts.path, params, decision.repeat, tail_cursor=self.tail_cursor
            )
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


def _private_copy(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        # a deep copy: the caller's dicts are never touched, nor shared with the served store
        raw = orjson.loads(orjson.dumps(list(events)))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidArgumentError(f"events must be JSON-able wire events: {exc}") from None
    if not all(isinstance(e, dict) and isinstance(e.get("timestamp"), int) for e in raw):
        raise InvalidArgumentError("events must be dicts, each with an integer 'timestamp'")
    return raw
