"""HTTP access to Croct's Export API: one request, cursor paging, retries. Knows nothing of pandas.

Layers, bottom up:

- a *transport* (``transport.py``): any callable ``(Request) -> Response``.
  :class:`RequestsTransport` is the real one (one ``requests.Session`` per thread); unit tests
  pass a fake one. ``Request``, ``Response`` and ``RequestsTransport`` are re-exported here;
- :meth:`Client.get_page`: one logical request, retried with backoff (``retry.py``);
- :meth:`Client.iter_pages` / :meth:`Client.iter_events`: the cursor chain behind a generator.

The API key lives only in a private wrapper that shows as ``'***'`` and refuses to be pickled; log
lines and error messages carry the path and the query, never a header.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import orjson

from croct_pandas.errors import (
    APIError,
    CancelledError,
    CroctError,
    InvalidArgumentError,
    RateLimitError,
    RetriesExhaustedError,
    TransportError,
    error_from_response,
)
from croct_pandas.page import Page
from croct_pandas.params import (
    check_events,
    check_page_size,
    check_timeout,
    check_window,
    is_loopback,
    resolve_api_key,
    resolve_base_url,
    to_epoch_ms,
)
from croct_pandas.retry import OnWait, RateBudget, parse_retry_after, retry_delay, should_retry
from croct_pandas.transport import (
    API_KEY_HEADER,
    ConnectFailedError,
    Request,
    RequestsTransport,
    Response,
    Transport,
)

__all__ = [
    "Client",
    "ConnectFailedError",
    "Page",
    "RateBudget",
    "Request",
    "RequestsTransport",
    "Response",
]

logger = logging.getLogger("croct_pandas.client")

EVENTS_PATH = "/export/events"
_T = TypeVar("_T")
#: key fingerprints worked out in this process, by a digest of their inputs (see
#: :meth:`Client.key_fingerprint`)
_FINGERPRINTS: dict[bytes, str] = {}
_FINGERPRINTS_KEPT = 64
#: Retries of a connection that cannot be made to a host that has never answered this client:
#: a wrong base_url or no network fails in about a second instead of a minute of backoff
UNREACHED_RETRIES = 2
#: The longest wait before each of those retries, in seconds
UNREACHED_WAIT = 1.0


class _Secret:
    """Holds the API key; shows as ``'***'``, has no ``__dict__`` and refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("an API key is never pickled; build the Client again where it is needed")


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TransportError(f"invalid or truncated JSON body ({len(body)} bytes: {exc})") from None
    if not isinstance(data, dict):
        raise TransportError(f"JSON body is a {type(data).__name__}, not an object")
    return data


def _parse_event_body(body: bytes) -> dict[str, Any]:
    data = _load_object(body)
    if not isinstance(data.get("event"), dict):
        raise TransportError("invalid body: 'event' is not an object")
    return data


def _check_cursor(cursor: Any) -> str | None:
    if cursor is None or (isinstance(cursor, str) and cursor):
        return cursor
    raise InvalidArgumentError(
        f"cursor={cursor!r}: cursor accepts None or a non-empty str, the next_cursor of a Page"
    )


def _check_number(value: Any, name: str, *, minimum: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise InvalidArgumentError(f"{name}={value!r}: {name} accepts {what}")
    if value == float("inf"):
        raise InvalidArgumentError(f"{name}={value!r}: {name} accepts {what}")
    return float(value)


def _check_callable(value: Any, name: str, what: str) -> None:
    if not callable(value):
        raise InvalidArgumentError(f"{name}={value!r}: {name} accepts {what}")


class Client:
    """Raw access to Croct's Export API: pages of events, retried and paged for you.

    Parameters
    ----------
    api_key : str, optional
        The application's API key (with the ``data_export`` permission); defaults to the
        ``CROCT_API_KEY`` environment variable.
    base_url : str, optional
        The API host; defaults to ``CROCT_API_URL``, then ``https://api.croct.io``. Requests go to
        ``{base_url}/export/events``; a trailing ``/export`` is accepted.
    timeout : float
        Seconds per HTTP request (connect and read).
    max_retries : int
        Retries per request after the first attempt, on 408/429/5xx, connection errors,
        timeouts and truncated or invalid bodies. Until the host has answered this client once
        (any HTTP response), a connection that cannot be made at all (the host name does not
        resolve, the connection is refused or has no route) is retried at most twice, after
        waits of at most a second, and then raises RetriesExhaustedError saying the host could
        not be reached; timeouts and resets are always retried ``max_retries`` times.
    backoff, max_backoff : float
        Exponential backoff: the n-th retry waits a random time up to
        ``min(max_backoff, backoff * 2**(n-1))`` seconds.
    max_retry_after : float
        Cap on a server's ``Retry-After``.
    sleep : callable
        ``sleep(seconds)``; tests pass a recorder so they never wait.
    transport : callable, optional
        ``(Request) -> Response``; defaults to :class:`RequestsTransport`.
    budget : RateBudget, optional
        A rate budget shared by every client or thread of one export; a 429 then slows and
        holds all of them. Without one, each request waits out its own 429s.
    on_wait : callable, optional
        ``on_wait(seconds, reason)``, called before every wait (backoff or rate limit).
    rng : random.Random, optional
        The source of backoff jitter (seed it for reproducible waits).
    cancel : threading.Event, optional
        Once set (from any thread), no further request is sent, a wait between retries ends at
        once, and the call raises :class:`~croct_pandas.errors.CancelledError` (a request already
        in flight is let finish; its answer is dropped).

    Examples
    --------
    >>> from croct_pandas.client import Client, Response
    >>> body = b'{"items": [{"id": "e1"}], "metadata": {}, "nextCursor": ""}'
    >>> client = Client("my-key", transport=lambda request: Response(200, {}, body))
    >>> client
    Client(base_url='https://api.croct.io', api_key='***')
    >>> [event["id"] for event in client.iter_events("2026-11-01", "2026-11-02")]
    ['e1']
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: Transport | None = None,
        budget: RateBudget | None = None,
        on_wait: OnWait | None = None,
        rng: random.Random | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.timeout = check_timeout(timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgumentError(
                f"max_retries={max_retries!r}: max_retries accepts an int >= 0"
            )
        self.max_retries = max_retries
        self.backoff = _check_number(backoff, "backoff", minimum=0, what="seconds >= 0")
        self.max_backoff = _check_number(
            max_backoff, "max_backoff", minimum=self.backoff, what="seconds >= backoff"
        )
        self.max_retry_after = _check_number(
            max_retry_after, "max_retry_after", minimum=0, what="seconds >= 0"
        )
        _check_callable(sleep, "sleep", "a function sleep(seconds)")
        if transport is not None:
            _check_callable(transport, "transport", "a function (Request) -> Response")
        if budget is not None and not isinstance(budget, RateBudget):
            raise InvalidArgumentError(f"budget={budget!r}: budget accepts a RateBudget or None")
        if on_wait is not None:
            _check_callable(on_wait, "on_wait", "a function on_wait(seconds, reason)")
        if rng is not None and not isinstance(rng, random.Random):
            raise InvalidArgumentError(f"rng={rng!r}: rng accepts a random.Random or None")
        if cancel is not None and not isinstance(cancel, threading.Event):
            raise InvalidArgumentError(
                f"cancel={cancel!r}: cancel accepts a threading.Event or None"
            )
        self._api_key = _Secret(resolve_api_key(api_key))
        self._sleep = sleep
        self._own_transport = transport is None
        self._transport: Transport = transport or RequestsTransport(
            trust_env=not is_loopback(self.base_url)
        )
        self.budget = budget
        self._on_wait = on_wait
        self._rng = rng if rng is not None else random.Random()
        self._cancel = cancel
        # whether any HTTP response ever came back: from then on a failure to connect is
        # taken for a passing one (a restart, a network blip) and gets the full retries
        self._answered = False

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, api_key='***')"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a Client holds an API key and is never pickled; build one in each process")

    def key_fingerprint(self, salt: bytes, rounds: int) -> str:
        """A one-way, salted, slow fingerprint (PBKDF2-SHA256, hex) of this client's key at its
        base URL: how a cache recognises a key without ever storing it.

        Examples
        --------
        >>> len(Client("my-key").key_fingerprint(b"salt", 1000))
        64
        """
        secret = self._api_key.reveal().encode()
        salted = salt + b"\0" + self.base_url.encode()
        # the process remembers what it worked out (in memory only, under a digest, never the
        # key): every cached read would otherwise pay the slow hash again
        memo = hashlib.sha256(b"%d\0%b\0%b" % (rounds, salted, secret)).digest()
        found = _FINGERPRINTS.get(memo)
        if found is None:
            found = hashlib.pbkdf2_hmac("sha256", secret, salted, rounds).hex()
            if len(_FINGERPRINTS) >= _FINGERPRINTS_KEPT:
                _FINGERPRINTS.clear()
            _FINGERPRINTS[memo] = found
        return found

    def close(self) -> None:
        """Close the HTTP sessions of the default transport (also done by ``with Client():``).

        Examples
        --------
        >>> with Client("my-key") as client:
        ...     client.base_url
        'https://api.croct.io'
        """
        if self._own_transport and isinstance(self._transport, RequestsTransport):
            self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public calls ------------------------------------------------------------------------

    def get_page(
        self,
        start: Any = None,
        end: Any = None,
        events: Any = None,
        *,
        page_size: int = 1000,
        cursor: str | None = None,
    ) -> Page:
        """Fetch one page of ``GET /export/events``, retrying transient failures.

        ``start`` (inclusive) and ``end`` (exclusive) take epoch milliseconds, datetimes or ISO
        strings; ``events`` takes one event type or several (``None``: every type, none sent).

        Raises
        ------
        AuthenticationError, BadRequestError, NotFoundError
            At once: retrying would fail the same way.
        RetriesExhaustedError
            After ``max_retries`` retries; its message says how to resume.

        Examples
        --------
        >>> from croct_pandas.client import Client, Response
        >>> body = b'{"items": [], "metadata": {}, "nextCursor": "c2"}'
        >>> Client("k", transport=lambda r: Response(200, {}, body)).get_page().next_cursor
        'c2'
        """
        params = self._events_params(start, end, events, page_size)
        return self._fetch_page(params, _check_cursor(cursor))

    def iter_pages(
        self,
        start: Any = None,
        end: Any = None,
        events: Any = None,
        *,
        page_size: int = 1000,
        cursor: str | None = None,
    ) -> Iterator[Page]:
        """Iterate the pages of a cursor chain, sending the same window with every page.

        Stops after a page without ``next_cursor`` or at a page with no items; an empty page is
        yielded only when it is the first (so its ``metadata`` can be read). Arguments are
        checked at once, not at the first ``next()``. Pass the last page's ``next_cursor`` as
        ``cursor`` later to continue where this chain ended (Croct's "stateful" sync).

        Examples
        --------
        >>> from croct_pandas.client import Client, Response
        >>> pages = {None: b'{"items": [{"id": "a"}], "nextCursor": "c2"}',
        ...          "c2": b'{"items": [{"id": "b"}], "nextCursor": null}'}
        >>> def transport(request):
        ...     cursor = dict(request.params).get("cursor")
        ...     return Response(200, {}, pages[cursor])
        >>> [page.items[0]["id"] for page in Client("k", transport=transport).iter_pages()]
        ['a', 'b']
        """
        params = self._events_params(start, end, events, page_size)
        return self._chain(params, _check_cursor(cursor))

    def iter_events(
        self,
        start: Any = None,
        end: Any = None,
        events: Any = None,
        *,
        page_size: int = 1000,
        cursor: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Iterate the events (wire dicts) of every page of :meth:`iter_pages`.

        Examples
        --------
        >>> from croct_pandas.client import Client, Response
        >>> body = b'{"items": [{"id": "a"}, {"id": "b"}], "nextCursor": null}'
        >>> client = Client("k", transport=lambda r: Response(200, {}, body))
        >>> [event["id"] for event in client.iter_events(events="pageOpened")]
        ['a', 'b']
        """
        pages = self.iter_pages(start, end, events, page_size=page_size, cursor=cursor)
        return (item for page in pages for item in page.items)

    def get_event(self, event_id: str) -> dict[str, Any]:
        """Fetch one event by id (``GET /export/events/{id}``); 404 raises NotFoundError.

        Examples
        --------
        >>> from croct_pandas.client import Client, Response
        >>> body = b'{"metadata": {}, "event": {"id": "e1"}}'
        >>> Client("k", transport=lambda r: Response(200, {}, body)).get_event("e1")
        {'id': 'e1'}
        """
        if not isinstance(event_id, str) or not event_id:
            raise InvalidArgumentError(f"event_id={event_id!r}: event_id accepts a non-empty str")
        path = f"{EVENTS_PATH}/{quote(event_id, safe='')}"
        data = self._request(path, [], _parse_event_body, cursor=None)
        event: dict[str, Any] = data["event"]
        return event

    # -- internals ---------------------------------------------------------------------------

    def _events_params(
        self, start: Any, end: Any, events: Any, page_size: Any
    ) -> list[tuple[str, str]]:
        start_ms = to_epoch_ms(start, "start")
        end_ms = to_epoch_ms(end, "end")
        check_window(start_ms, end_ms)
        types = check_events(events)
        params: list[tuple[str, str]] = []
        if start_ms is not None:
            params.append(("start", str(start_ms)))
        if end_ms is not None:
            params.append(("end", str(end_ms)))
        params.append(("pageSize", str(check_page_size(page_size))))
        params.extend(("events", name) for name in types or ())
        return params

    def _chain(self, params: list[tuple[str, str]], cursor: str | None) -> Iterator[Page]:
        first = True
        while True:
            page = self._fetch_page(params, cursor)
            if not page.count:
                if first:
                    yield page
                return
            yield page
            if page.next_cursor is None:
                return
            cursor, first = page.next_cursor, False

    def _fetch_page(self, params: list[tuple[str, str]], cursor: str | None) -> Page:
        if cursor is not None:
            params = [*params, ("cursor", cursor)]
        return self._request(
            EVENTS_PATH, params, lambda body: Page.from_body(body, cursor), cursor=cursor
        )

    def _request(
        self,
        path: str,
        params: list[tuple[str, str]],
        parse: Callable[[bytes], _T],
        *,
        cursor: str | None,
    ) -> _T:
        headers = {
            API_KEY_HEADER: self._api_key.reveal(),
            "Accept": "application/json",
            "User-Agent": "croct-pandas",
        }
        request = Request("GET", self.base_url + path, params, headers, self.timeout)
        shown = f"{urlsplit(request.url).path}{'?' + urlencode(params) if params else ''}"
        attempt = unreached = 0
        while True:
            self._check_cancel(shown)
            if self.budget is not None:
                self.budget.acquire(self._on_wait)
                self._check_cancel(shown)
            outcome, retry_after = self._attempt(request, shown, parse)
            self._check_cancel(shown)
            if not isinstance(outcome, CroctError):
                if self.budget is not None:
                    self.budget.on_success()
                return outcome
            failure = outcome
            attempt += 1
            never_answered = False
            if isinstance(failure, ConnectFailedError) and not self._answered:
                never_answered = True
                unreached += 1
                if unreached > min(UNREACHED_RETRIES, self.max_retries):
                    self._unreachable(unreached, failure)
            if attempt > self.max_retries:
                self._exhausted(shown, attempt, failure, cursor)
            delay = retry_delay(
                attempt,
                retry_after=retry_after,
                backoff=self.backoff,
                max_backoff=self.max_backoff,
                max_retry_after=self.max_retry_after,
                rng=self._rng,
            )
            if never_answered:
                delay = min(delay, UNREACHED_WAIT)
            rate_limited = isinstance(failure, RateLimitError)
            logger.debug(
                "retry %d/%d of GET %s in %.2f s after %s",
                attempt,
                self.max_retries,
                shown,
                delay,
                self._scrub(str(failure)),
            )
            if rate_limited and self.budget is not None:
                # the shared budget holds every worker; acquire() does the waiting
                self.budget.on_rate_limited(delay)
                continue
            if rate_limited:
                reason = "rate limited"
            elif never_answered:
                reason = f"connecting, retry {unreached}/{min(UNREACHED_RETRIES, self.max_retries)}"
            else:
                reason = f"retry {attempt}/{self.max_retries}"
            if self._on_wait is not None:
                self._on_wait(delay, reason)
            if self._cancel is not None and self._sleep is time.sleep:
                self._cancel.wait(delay)  # a real wait, which the cancel ends early
            else:
                self._sleep(delay)

    def _check_cancel(self, shown: str) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise CancelledError(f"GET {shown} was cancelled")

    def _attempt(
        self, request: Request, shown: str, parse: Callable[[bytes], _T]
    ) -> tuple[_T | CroctError, float | None]:
        """One try: the parsed body, or the failure and its Retry-After."""
        began = time.perf_counter()
        try:
            response = self._transport(request)
        except TransportError as exc:
            logger.debug(
                "GET %s -> %s in %.3f s", shown, self._scrub(str(exc)), time.perf_counter() - began
            )
            if isinstance(exc, ConnectFailedError):
                return ConnectFailedError(self._scrub(str(exc)), host=self._scrub(exc.host)), None
            return TransportError(self._scrub(str(exc))), None
        self._answered = True
        logger.debug(
            "GET %s -> %d, %d bytes in %.3f s",
            shown,
            response.status,
            len(response.body),
            time.perf_counter() - began,
        )
        if 200 <= response.status < 300:
            try:
                return parse(response.body), None
            except TransportError as exc:
                return exc, None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error = error_from_response(
            response.status, self._problem(response.body), retry_after=retry_after
        )
        if not should_retry(response.status):
            raise error
        return error, retry_after

    def _problem(self, body: bytes) -> Any:
        """The error body as problem details, scrubbed of the key if a server echoed it."""
        try:
            problem = orjson.loads(body)
        except orjson.JSONDecodeError:
            text = body[:200].decode("utf-8", "replace").strip()
            return {"detail": self._scrub(text)} if text else None
        if isinstance(problem, dict):
            return {k: self._scrub(v) if isinstance(v, str) else v for k, v in problem.items()}
        return None

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key.reveal(), "***")

    def _unreachable(self, attempts: int, failure: ConnectFailedError) -> NoReturn:
        raise RetriesExhaustedError(
            f"Could not reach the API at {self.base_url} ({attempts} attempts; last failure: "
            f"{failure}). Check base_url (or the CROCT_API_URL environment variable) and the "
            "network connection (and any proxy settings)",
            last_error=failure,
        )

    def _exhausted(
        self, shown: str, attempts: int, failure: CroctError, cursor: str | None
    ) -> NoReturn:
        what = (
            f"HTTP {failure.status}: {failure.message}"
            if isinstance(failure, APIError)
            else str(failure)
        )
        if cursor is not None:
            resume = f"call again with cursor={cursor!r} to continue from this page"
        else:
            resume = "call again with the same arguments to start this chain over"
        raise RetriesExhaustedError(
            f"GET {shown} failed {attempts} times; last failure: {what}. To resume, {resume} "
            "(read_croct_events resumes from its cache: pages already read are kept)",
            last_error=failure,
        )
