"""One logical request to the Export API: sent, retried with backoff, failures made errors.

:class:`RetryingRequester` is what :class:`~croct_pandas.client.Client` builds from its checked
settings and calls for every page or event. It owns the retry loop (``retry.py`` supplies the
delays, ``Retry-After`` and the shared rate budget), the unreached-host policy, the cancel-aware
waits, and the wording of ``RetriesExhaustedError``. Log lines keep the logger name
``croct_pandas.client``; the key is scrubbed from every message it builds.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlencode, urlsplit

import orjson

from croct_pandas.errors import (
    APIError,
    CancelledError,
    CroctError,
    RateLimitError,
    RetriesExhaustedError,
    TransportError,
    error_from_response,
)
from croct_pandas.retry import (
    OnWait,
    RateBudget,
    cancellable_wait,
    parse_retry_after,
    retry_delay,
    should_retry,
)
from croct_pandas.transport import API_KEY_HEADER, ConnectFailedError, Request, Transport

__all__ = ["UNREACHED_RETRIES", "UNREACHED_WAIT", "RetryingRequester"]

# the lines speak for the Client and are filtered under its name, wherever the code lives
logger = logging.getLogger("croct_pandas.client")

_T = TypeVar("_T")
#: Retries of a connection that cannot be made to a host that has never answered this client:
#: a wrong base_url or no network fails in about a second instead of a minute of backoff
UNREACHED_RETRIES = 2
#: The longest wait before each of those retries, in seconds
UNREACHED_WAIT = 1.0


@dataclass(eq=False, repr=False)
class RetryingRequester:
    """Sends one logical GET at a time, retried; one per client (it remembers an answer).

    Every argument is taken as already checked (``Client.__init__`` checks them); ``reveal_key``
    is a function that reveals the key, so the key itself is never an attribute here (and no
    repr is generated).

    Examples
    --------
    >>> import random
    >>> from croct_pandas.transport import Response
    >>> replies = iter([Response(503, {}, b""), Response(200, {}, b'{"ok": 1}')])
    >>> waits = []
    >>> requester = RetryingRequester(
    ...     lambda request: next(replies), lambda: "my-key", "https://api.croct.io",
    ...     timeout=30.0, max_retries=2, backoff=0.5, max_backoff=30.0, max_retry_after=60.0,
    ...     sleep=waits.append, budget=None, on_wait=None, rng=random.Random(1), cancel=None)
    >>> requester.request("/export/events", [], len, cursor=None), len(waits)
    (9, 1)
    """

    transport: Transport
    reveal_key: Callable[[], str]
    base_url: str
    _: KW_ONLY
    timeout: float
    max_retries: int
    backoff: float
    max_backoff: float
    max_retry_after: float
    sleep: Callable[[float], None]
    budget: RateBudget | None
    on_wait: OnWait | None
    rng: random.Random
    cancel: threading.Event | None
    # whether any HTTP response ever came back: from then on a failure to connect is
    # taken for a passing one (a restart, a network blip) and gets the full retries
    answered: bool = field(default=False, init=False)

    def request(
        self,
        path: str,
        params: list[tuple[str, str]],
        parse: Callable[[bytes], _T],
        *,
        cursor: str | None,
    ) -> _T:
        """GET ``base_url + path`` until ``parse`` accepts a 2xx body, or raise why not.

        ``cursor`` only shapes the resume hint of a ``RetriesExhaustedError``.

        Examples
        --------
        >>> import random
        >>> from croct_pandas.transport import Response
        >>> requester = RetryingRequester(
        ...     lambda request: Response(200, {}, request.url.encode()), lambda: "k", "http://h",
        ...     timeout=1.0, max_retries=0, backoff=0.0, max_backoff=0.0, max_retry_after=0.0,
        ...     sleep=print, budget=None, on_wait=None, rng=random.Random(), cancel=None)
        >>> requester.request("/export/events/e1", [], bytes.decode, cursor=None)
        'http://h/export/events/e1'
        """
        headers = {
            API_KEY_HEADER: self.reveal_key(),
            "Accept": "application/json",
            "User-Agent": "croct-pandas",
        }
        request = Request("GET", self.base_url + path, params, headers, self.timeout)
        shown = f"{urlsplit(request.url).path}{'?' + urlencode(params) if params else ''}"
        attempt = unreached = 0
        while True:
            self._check_cancel(shown)
            if self.budget is not None:
                self.budget.acquire(self.on_wait, self.cancel)
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
            if isinstance(failure, ConnectFailedError) and not self.answered:
                never_answered = True
                unreached += 1
                if unreached > min(UNREACHED_RETRIES, self.max_retries):
                    self._unreachable(unreached, failure)
            if attempt > self.max_retries:
                _exhausted(shown, attempt, failure, cursor)
            delay = retry_delay(
                attempt,
                retry_after=retry_after,
                backoff=self.backoff,
                max_backoff=self.max_backoff,
                max_retry_after=self.max_retry_after,
                rng=self.rng,
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
            if self.on_wait is not None:
                self.on_wait(delay, reason)
            cancellable_wait(self.sleep, delay, self.cancel)  # the loop's next turn checks it

    def _check_cancel(self, shown: str) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise CancelledError(f"GET {shown} was cancelled")

    def _attempt(
        self, request: Request, shown: str, parse: Callable[[bytes], _T]
    ) -> tuple[_T | CroctError, float | None]:
        """One try: the parsed body, or the failure and its Retry-After."""
        began = time.perf_counter()
        try:
            response = self.transport(request)
        except TransportError as exc:
            logger.debug(
                "GET %s -> %s in %.3f s", shown, self._scrub(str(exc)), time.perf_counter() - began
            )
            if isinstance(exc, ConnectFailedError):
                return ConnectFailedError(self._scrub(str(exc)), host=self._scrub(exc.host)), None
            return TransportError(self._scrub(str(exc))), None
        self.answered = True
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
        return text.replace(self.reveal_key(), "***")

    def _unreachable(self, attempts: int, failure: ConnectFailedError) -> NoReturn:
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        raise RetriesExhaustedError(
            f"Could not reach the API at {self.base_url} ({tries}; last failure: "
            f"{failure}). Check base_url (or the CROCT_API_URL environment variable) and the "
            "network connection (and any proxy settings)",
            last_error=failure,
        )


def _exhausted(shown: str, attempts: int, failure: CroctError, cursor: str | None) -> NoReturn:
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
