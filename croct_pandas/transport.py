"""One HTTP request, one HTTP response: the layer under :class:`~croct_pandas.client.Client`.

A *transport* is any callable ``(Request) -> Response``. :class:`RequestsTransport` is the real one
(``requests``, one ``Session`` per thread, redirects never followed); unit tests pass a plain
function instead. Neither side knows about pages, cursors or retries, and a :class:`Request`'s
``repr`` never shows the API key header.

Examples
--------
>>> from croct_pandas.transport import Request, Response
>>> def transport(request: Request) -> Response:
...     return Response(200, {"Content-Type": "application/json"}, b"{}")
>>> transport(Request("GET", "http://127.0.0.1/export/events", [], {}, 5.0)).status
200
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from croct_pandas.errors import TransportError

__all__ = ["API_KEY_HEADER", "Request", "RequestsTransport", "Response", "Transport"]

API_KEY_HEADER = "X-Api-Key"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Request:
    """One HTTP request as a transport sees it. ``repr`` masks the API key header.

    Examples
    --------
    >>> url = "https://api.croct.io/export/events"
    >>> request = Request("GET", url, [], {"X-Api-Key": "s3"}, 30.0)
    >>> "s3" in repr(request), "'X-Api-Key': '***'" in repr(request)
    (False, True)
    """

    method: str
    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    timeout: float

    def __repr__(self) -> str:
        shown = {
            k: ("***" if k.lower() == API_KEY_HEADER.lower() else v)
            for k, v in self.headers.items()
        }
        return (
            f"Request(method={self.method!r}, url={self.url!r}, params={self.params!r}, "
            f"headers={shown!r}, timeout={self.timeout!r})"
        )


@dataclass(frozen=True)
class Response:
    """One HTTP response; ``headers`` lookups ignore case.

    Examples
    --------
    >>> Response(429, {"Retry-After": "2"}).headers["retry-after"]
    '2'
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", CaseInsensitiveDict(self.headers))


Transport = Callable[[Request], Response]


class RequestsTransport:
    """The real transport: ``requests`` with one ``Session`` per thread, redirects not followed.

    Connection errors, timeouts and cut-off bodies become :class:`TransportError`. With
    ``trust_env=False`` (used for loopback hosts) proxy settings from the environment are ignored.

    Examples
    --------
    >>> transport = RequestsTransport(trust_env=False)
    >>> transport.close()
    """

    def __init__(self, *, trust_env: bool = True) -> None:
        self.trust_env = trust_env
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = self.trust_env
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def __call__(self, request: Request) -> Response:
        try:
            # redirects are not followed: requests would resend X-Api-Key to any other host
            reply = self._session().request(
                request.method,
                request.url,
                params=request.params,
                headers=request.headers,
                timeout=(request.timeout, request.timeout),
                allow_redirects=False,
                stream=True,
            )
            with reply:
                # read in large chunks: requests' own .content goes 10 KB at a time, and
                # that loop costs more CPU than the bytes (pages are ~0.5 MB)
                body = b"".join(reply.iter_content(_CHUNK))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(_describe(exc, request)) from None
        return Response(reply.status_code, dict(reply.headers), body)

    def close(self) -> None:
        """Close every thread's session; a later call opens new ones."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


def _describe(exc: BaseException, request: Request) -> str:
    if isinstance(exc, requests.Timeout):
        kind = f"timed out after {request.timeout:g} s"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        kind = "response cut off"
    else:
        kind = "connection failed"
    text = str(exc)
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{kind} ({type(exc).__name__}: {text})"
