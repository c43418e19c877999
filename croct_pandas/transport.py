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

import errno
import re
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from croct_pandas.errors import TransportError

__all__ = [
    "API_KEY_HEADER",
    "ConnectFailedError",
    "Request",
    "RequestsTransport",
    "Response",
    "Transport",
]

API_KEY_HEADER = "X-Api-Key"
_CHUNK = 1 << 20
#: errnos of a connection that was never made; a reset or a timeout is not one of them
_NOT_CONNECTED = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})
#: urllib3's "HTTPSConnectionPool(host='…', port=443): " prefix; the message names the host anyway
_POOL_PREFIX = re.compile(r"^HTTPS?Connection(?:Pool)?\(host='[^']*', port=\d+\): ")


class ConnectFailedError(TransportError):
    """No connection could be made: the host name did not resolve, or the host refused the
    connection or could not be routed to. Not a timeout, and not a reset after connecting.

    ``host`` is the ``host:port`` that was tried. The client gives up on it after two quick
    retries while it has never had an answer from the host (see ``Client``).

    Examples
    --------
    >>> error = ConnectFailedError("connection failed: 127.0.0.1:1 refused", host="127.0.0.1:1")
    >>> isinstance(error, TransportError), error.host
    (True, '127.0.0.1:1')
    """

    def __init__(self, message: str, *, host: str = "") -> None:
        super().__init__(message)
        self.host = host


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

    Connection errors, timeouts and cut-off bodies become :class:`TransportError`; a connection
    that was never made (the host name did not resolve, the host refused it or has no route)
    becomes its subclass :class:`ConnectFailedError`. Messages name the host and stay short. With
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
            raise _transport_error(exc, request) from None
        return Response(reply.status_code, dict(reply.headers), body)

    def close(self) -> None:
        """Close every thread's session; a later call opens new ones."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


def _transport_error(exc: BaseException, request: Request) -> TransportError:
    """The :class:`TransportError` for a failed request: a :class:`ConnectFailedError` when no
    connection was made at all, with the host kept readable in either case."""
    reason = _reason(exc)
    # the connection's own host, which is the proxy's when the request went through one
    conn = getattr(reason, "conn", None)
    name = getattr(conn, "host", None)
    port = getattr(conn, "port", None)
    where = f"{name}:{port}" if name else urlsplit(request.url).netloc.rpartition("@")[2]
    cause = _connect_cause(reason)
    if cause is not None:
        if isinstance(cause, socket.gaierror):
            what = f"could not resolve the host name {name or where!r}"
        elif cause.errno == errno.ECONNREFUSED:
            what = f"{where} refused the connection"
        else:
            what = f"no route to {where}"
        return ConnectFailedError(f"connection failed: {what} ({_shorten(str(cause))})", host=where)
    if isinstance(exc, requests.Timeout):
        kind = f"timed out after {request.timeout:g} s"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        kind = "response cut off"
    else:
        kind = "connection failed"
    text = _shorten(_POOL_PREFIX.sub("", str(reason)))
    return TransportError(f"{kind} ({where}; {type(exc).__name__}: {text})")


def _reason(exc: BaseException) -> BaseException:
    """What went wrong underneath requests' wrapper, whose own text repeats the whole URL
    (the query and its cursor too, which pushed the host out of a shortened message)."""
    inner = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else exc
    if isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
        return inner.reason
    return inner if isinstance(inner, BaseException) else exc


def _connect_cause(reason: BaseException) -> OSError | None:
    """The OS error that kept a connection from being made (the name did not resolve, the
    host refused or cannot be routed to); None for timeouts and for failures after connecting."""
    if not isinstance(reason, urllib3.exceptions.NewConnectionError):
        return None
    seen: set[int] = set()
    error: BaseException | None = reason
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, socket.gaierror) or (
            isinstance(error, OSError) and error.errno in _NOT_CONNECTED
        ):
            return error
        error = error.__cause__ or error.__context__
    return None


def _shorten(text: str, limit: int = 240) -> str:
    """``text`` up to ``limit`` characters, cut between words."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:") + " ..."
