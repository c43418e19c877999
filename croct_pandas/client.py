"""HTTP access to Croct's Export API: the public Client. Knows no pandas.

Layers, bottom up:

- a *transport* (``transport.py``): any callable ``(Request) -> Response``.
  :class:`RequestsTransport` is the real one (one ``requests.Session`` per thread); unit tests
  pass a fake one. ``Request``, ``Response`` and ``RequestsTransport`` are re-exported here;
- one logical request, retried with backoff (``client_request.py``, which takes its delays from
  ``retry.py``); each Client builds one ``RetryingRequester`` from its settings, checked by
  ``client_settings.py``; a body is checked by ``page.py`` before it is handed back;
- :class:`Client`: :meth:`Client.get_page` and :meth:`Client.get_event` (one request each),
  :meth:`Client.iter_pages` / :meth:`Client.iter_events` (the cursor chain behind a generator,
  from ``client_paging.py``, which also builds the query of a window).

The API key lives only in a wrapper (``client_settings.Secret``) that shows as ``'***'`` and
refuses to be pickled; log lines and error messages carry the path and the query, never a header.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn
from urllib.parse import quote

from croct_pandas.client_paging import chain_pages, check_cursor, events_params
from croct_pandas.client_request import UNREACHED_RETRIES as UNREACHED_RETRIES
from croct_pandas.client_request import UNREACHED_WAIT as UNREACHED_WAIT
from croct_pandas.client_request import RetryingRequester
from croct_pandas.client_settings import Secret, check_hooks, check_retry_settings, forwarded
from croct_pandas.errors import InvalidArgumentError
from croct_pandas.page import Page, parse_event_body
from croct_pandas.params import is_loopback, resolve_api_key, resolve_base_url
from croct_pandas.retry import OnWait, RateBudget
from croct_pandas.transport import (
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

EVENTS_PATH = "/export/events"
#: key fingerprints worked out in this process, by a digest of their inputs (see
#: :meth:`Client.key_fingerprint`)
_FINGERPRINTS: dict[bytes, str] = {}
_FINGERPRINTS_KEPT = 64


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
        Once set (from any thread), no further request is sent, a wait between retries or for
        the rate budget ends at once, and the call raises
        :class:`~croct_pandas.errors.CancelledError` (a request already in flight is let finish;
        its answer is dropped). A ``sleep`` you pass (to the client or to a ``RateBudget``) is
        called as it is: the cancel is seen when it returns.

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
        base_url = resolve_base_url(base_url)
        timeout, backoff, max_backoff, max_retry_after = check_retry_settings(
            timeout, max_retries, backoff, max_backoff, max_retry_after
        )
        check_hooks(sleep, transport, budget, on_wait, rng, cancel)
        self._api_key = Secret(resolve_api_key(api_key))
        self._own_transport = transport is None
        self._transport: Transport = transport or RequestsTransport(
            trust_env=not is_loopback(base_url)
        )
        # one per client: it remembers whether this client's host has ever answered (``answered``)
        self._requester = RetryingRequester(
            self._transport,
            self._api_key.reveal,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            sleep=sleep,
            budget=budget,
            on_wait=on_wait,
            rng=rng if rng is not None else random.Random(),
            cancel=cancel,
        )

    # the settings live in the requester, which reads them at every request: set on the client
    # after it is made, they take effect as before
    base_url = forwarded("base_url")
    timeout = forwarded("timeout")
    max_retries = forwarded("max_retries")
    backoff = forwarded("backoff")
    max_backoff = forwarded("max_backoff")
    max_retry_after = forwarded("max_retry_after")
    budget = forwarded("budget")

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
        params = events_params(start, end, events, page_size)
        return self._fetch_page(params, check_cursor(cursor))

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
        params = events_params(start, end, events, page_size)
        return chain_pages(self._fetch_page, params, check_cursor(cursor))

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
        data = self._requester.request(path, [], parse_event_body, cursor=None)
        event: dict[str, Any] = data["event"]
        return event

    # -- internals ---------------------------------------------------------------------------

    def _fetch_page(self, params: list[tuple[str, str]], cursor: str | None) -> Page:
        if cursor is not None:
            params = [*params, ("cursor", cursor)]
        return self._requester.request(
            EVENTS_PATH, params, lambda body: Page.from_body(body, cursor), cursor=cursor
        )
