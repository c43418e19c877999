"""When to retry, how long to wait, and one rate budget shared by every worker of an export.

Each decision is a small pure function so tests can check it without waiting: the retry decision
(:func:`should_retry`), the delay maths (:func:`backoff_ceiling`, :func:`parse_retry_after`,
:func:`retry_delay`) and the randomness (:func:`full_jitter`, which takes its random source).
:class:`RateBudget` takes its clock and its sleep, so it runs on a fake clock in tests.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = [
    "RateBudget",
    "backoff_ceiling",
    "cancellable_wait",
    "full_jitter",
    "parse_retry_after",
    "retry_delay",
    "should_retry",
]

#: ``(seconds, reason)``, called before every wait so a progress bar can show it.
OnWait = Callable[[float, str], None]


def should_retry(status: int | None) -> bool:
    """Whether a failed attempt is worth repeating.

    ``status`` is the HTTP status, or ``None`` when there was no usable answer (a connection
    error, a timeout, a truncated or invalid body): those are retried, as are 408, 429 and 5xx.
    Other statuses (400, 401, 403, 404, …) would fail the same way again.

    Examples
    --------
    >>> should_retry(None), should_retry(503), should_retry(429), should_retry(401)
    (True, True, True, False)
    """
    return status is None or status in (408, 429) or status >= 500


def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    """The exponential backoff ceiling of retry number ``attempt`` (1 for the first retry).

    Examples
    --------
    >>> [backoff_ceiling(n, 0.5, 30.0) for n in (1, 2, 3, 8, 9)]
    [0.5, 1.0, 2.0, 30.0, 30.0]
    """
    # capping the exponent first keeps 2**n from overflowing a float after ~1000 retries
    return min(cap, base * 2.0 ** min(attempt - 1, 64))


def full_jitter(ceiling: float, rng: random.Random) -> float:
    """A delay drawn uniformly from ``[0, ceiling]`` ("full jitter"), so that workers which
    failed together do not retry together.

    Examples
    --------
    >>> 0.0 <= full_jitter(2.0, random.Random(0)) <= 2.0
    True
    """
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Returns ``None`` for a missing or unreadable header; a date in the past gives 0.

    Examples
    --------
    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("Sun, 01 Nov 2026 10:00:05 GMT",
    ...                   now=datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc))
    5.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def retry_delay(
    attempt: int,
    *,
    retry_after: float | None,
    backoff: float,
    max_backoff: float,
    max_retry_after: float,
    rng: random.Random,
) -> float:
    """The wait before retry number ``attempt``.

    The server's ``Retry-After`` is obeyed, capped at ``max_retry_after``; without one the wait is
    exponential backoff with full jitter.

    Examples
    --------
    >>> retry_delay(1, retry_after=120.0, backoff=0.5, max_backoff=30.0, max_retry_after=60.0,
    ...             rng=random.Random(0))
    60.0
    """
    if retry_after is not None:
        return min(retry_after, max_retry_after)
    return full_jitter(backoff_ceiling(attempt, backoff, max_backoff), rng)


def cancellable_wait(
    sleep: Callable[[float], None], seconds: float, cancel: threading.Event | None
) -> bool:
    """Wait ``seconds`` with ``sleep``; True when ``cancel`` is set by the end of it.

    A real wait (``time.sleep``) ends at once when ``cancel`` is set; a ``sleep`` the caller
    passed (a recorder in tests, say) is called as it is, and the cancel is seen when it returns.

    Examples
    --------
    >>> import threading
    >>> cancel = threading.Event()
    >>> cancel.set()
    >>> cancellable_wait(time.sleep, 60.0, cancel)  # returns at once
    True
    >>> cancellable_wait(lambda seconds: None, 60.0, None)
    False
    """
    if cancel is None:
        sleep(seconds)
        return False
    if sleep is time.sleep:
        return cancel.wait(seconds)
    sleep(seconds)
    return cancel.is_set()


class RateBudget:
    """One request-rate budget shared, thread-safely, by every worker of an export (AIMD).

    The rate starts unlimited. A 429 (:meth:`on_rate_limited`) halves it (from the rate observed
    over the last ``window`` seconds when it was unlimited) and makes every worker wait out the
    server's ``Retry-After``; reports arriving while that wait runs count as the same episode.
    Each success (:meth:`on_success`) adds ``increase`` requests per second, until ``max_rate``
    is reached and the rate is unlimited again. :meth:`acquire` blocks until a request may go.

    Examples
    --------
    >>> now = [0.0]
    >>> budget = RateBudget(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    >>> budget.acquire()
    0.0
    >>> budget.on_rate_limited(2.0)
    >>> budget.acquire()  # waited out the Retry-After
    2.0
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        min_rate: float = 0.2,
        max_rate: float = 50.0,
        increase: float = 0.5,
        window: float = 5.0,
    ) -> None:
        if not 0 < min_rate < max_rate or increase <= 0 or window <= 0:
            raise ValueError("RateBudget needs 0 < min_rate < max_rate, increase > 0, window > 0")
        self._clock = clock
        self._sleep = sleep
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.increase = increase
        self.window = window
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._next_slot = -math.inf
        self._blocked_until = -math.inf
        self._sent: deque[float] = deque()

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:.2f}/s"
        return f"RateBudget(rate={rate})"

    @property
    def rate(self) -> float | None:
        """Requests per second allowed now; ``None`` when unlimited."""
        return self._rate

    def acquire(
        self, on_wait: OnWait | None = None, cancel: threading.Event | None = None
    ) -> float:
        """Block until a request may go; return the seconds waited.

        ``on_wait(seconds, "rate limited")`` is called before each sleep. A ``cancel`` event
        that is set ends the wait at once (the return is then early: the caller checks it).

        Examples
        --------
        >>> RateBudget().acquire()  # unlimited: never waits
        0.0
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                ready = self._blocked_until
                if self._rate is not None:
                    ready = max(ready, self._next_slot)
                # a tolerance, so float rounding of clock + wait never asks for a 1e-16 s wait
                if ready <= now + 1e-9:
                    if self._rate is not None:
                        self._next_slot = max(now, self._next_slot) + 1.0 / self._rate
                    self._record(now)
                    return waited
                wait = ready - now
            # sleep outside the lock: other workers must still be able to report and queue
            if on_wait is not None:
                on_wait(wait, "rate limited")
            if cancellable_wait(self._sleep, wait, cancel):
                return waited
            waited += wait

    def on_success(self) -> None:
        """A request succeeded: grow the allowed rate by ``increase`` (additive increase).

        Examples
        --------
        >>> budget = RateBudget(increase=1.0)
        >>> budget.on_rate_limited(0.0)  # nothing sent yet: the rate starts at the floor
        >>> budget.rate, (budget.on_success(), budget.rate)[1]
        (0.2, 1.2)
        """
        with self._lock:
            if self._rate is not None:
                self._rate += self.increase
                if self._rate >= self.max_rate:
                    self._rate = None

    def on_rate_limited(self, wait: float) -> None:
        """The server answered 429: halve the rate and hold every worker for ``wait`` seconds.

        Examples
        --------
        >>> budget = RateBudget(min_rate=1.0)
        >>> budget.on_rate_limited(0.0)
        >>> budget.rate
        1.0
        """
        with self._lock:
            now = self._clock()
            if now >= self._blocked_until:
                # one cut per episode, however many workers saw the same 429 wave
                current = self._rate if self._rate is not None else self._observed_rate(now)
                self._rate = max(self.min_rate, current / 2.0)
            self._blocked_until = max(self._blocked_until, now + max(0.0, wait))

    def _record(self, now: float) -> None:
        self._sent.append(now)
        while self._sent and self._sent[0] < now - self.window:
            self._sent.popleft()

    def _observed_rate(self, now: float) -> float:
        while self._sent and self._sent[0] < now - self.window:
            self._sent.popleft()
        if not self._sent:
            return self.min_rate * 2.0
        span = max(now - self._sent[0], 1.0)
        return len(self._sent) / span
