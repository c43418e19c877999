"""Fault injection for the emulator: what can go wrong, how often, decided reproducibly.

:class:`Faults` is the configuration a user writes; :class:`Injector` turns it into one
:class:`Decision` per request. Every request draws the same number of values from one RNG seeded by
``Faults.seed``, so the same sequence of requests meets the same faults on every run; only the rate
limit (a token bucket) depends on the clock, as a real one does.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from croct_pandas.errors import InvalidArgumentError

__all__ = ["Decision", "Faults", "Injector"]

_ERROR_STATUSES = (500, 502, 503)


@dataclass(frozen=True, kw_only=True)
class Faults:
    """What the emulator gets wrong on purpose, each at its own rate.

    Parameters
    ----------
    seed : int
        Seeds the decisions: the same requests in the same order meet the same faults.
    error_rate : float
        Share of requests answered 500, 502 or 503 with a problem-details body.
    rate_limit : float or None
        Requests per second allowed per API key (token bucket, bursts up to one second's worth);
        requests over it get 429.
    reset_rate : float
        Share of requests whose connection is reset after the headers and part of the body.
    truncate_rate : float
        Share of requests answered with a complete HTTP response whose JSON body is cut short.
    slow_rate, slow_s : float
        Share of requests that wait ``slow_s`` seconds before answering.
    latency_s : float
        Seconds added to every answer.
    repeat_rate : float
        Share of cursor pages that start by re-sending the last few items of the previous page.
    retry_after : bool
        Whether 429 answers carry ``Retry-After`` (whole seconds).

    ``error_rate + reset_rate + truncate_rate`` may not exceed 1: a request meets at most one of
    these three.

    Examples
    --------
    >>> Faults(error_rate=0.1, rate_limit=20)
    Faults(seed=0, error_rate=0.1, rate_limit=20, reset_rate=0.0, truncate_rate=0.0, slow_rate=0.0, slow_s=0.0, latency_s=0.0, repeat_rate=0.0, retry_after=True)
    """  # noqa: E501

    seed: int = 0
    error_rate: float = 0.0
    rate_limit: float | None = None
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    slow_rate: float = 0.0
    slow_s: float = 0.0
    latency_s: float = 0.0
    repeat_rate: float = 0.0
    retry_after: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InvalidArgumentError(f"seed must be an integer; got {self.seed!r}")
        for name in ("error_rate", "reset_rate", "truncate_rate", "slow_rate", "repeat_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise InvalidArgumentError(f"{name} must be a number from 0 to 1; got {value!r}")
        for name in ("slow_s", "latency_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 3600.0:
                raise InvalidArgumentError(
                    f"{name} must be a number of seconds from 0 to 3600; got {value!r}"
                )
        if self.rate_limit is not None and (
            not _is_number(self.rate_limit) or not self.rate_limit > 0
        ):
            raise InvalidArgumentError(
                f"rate_limit must be None or requests per second above 0; got {self.rate_limit!r}"
            )
        if self.error_rate + self.reset_rate + self.truncate_rate > 1.0 + 1e-9:
            raise InvalidArgumentError(
                "error_rate + reset_rate + truncate_rate must not exceed 1 (a request meets at "
                "most one of them)"
            )
        if not isinstance(self.retry_after, bool):
            raise InvalidArgumentError(
                f"retry_after must be True or False; got {self.retry_after!r}"
            )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Decision:
    """What happens to one request.

    ``status`` is 429 or a 5xx when the request is refused, else None; ``cut`` is the share of the
    body sent before a reset or kept by a truncation; ``repeat`` is how many items of the previous
    page to re-send; ``delay`` the seconds to wait before answering.
    """

    status: int | None = None
    retry_after: int | None = None
    reset: bool = False
    truncate: bool = False
    cut: float = 1.0
    repeat: int = 0
    delay: float = 0.0
    injected: tuple[str, ...] = field(default_factory=tuple)


class Injector:
    """Draws a :class:`Decision` per request from a :class:`Faults` (thread-safe).

    Examples
    --------
    >>> injector = Injector(Faults(seed=1, error_rate=1.0))
    >>> injector.decide("key").status in (500, 502, 503)
    True
    """

    def __init__(self, faults: Faults | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._clock = clock
        # buckets are keyed by a digest so that no key is held here beyond the emulator's own
        self._buckets: dict[bytes, tuple[float, float]] = {}

    def decide(self, api_key: str) -> Decision:
        f = self.faults
        with self._lock:
            # a fixed number of draws per request keeps later decisions independent of this one
            mode, which, cut, slow, repeat, count = (self._rng.random() for _ in range(6))
            wait = self._take(api_key) if f.rate_limit is not None else None
        injected: list[str] = []
        delay = f.latency_s
        if f.latency_s > 0:
            injected.append("latency")
        if wait is not None:
            injected.append("rate_limit")
            retry = max(1, math.ceil(wait)) if f.retry_after else None
            return Decision(status=429, retry_after=retry, injected=tuple(injected))
        if slow < f.slow_rate:
            delay += f.slow_s
            injected.append("slow")
        if mode < f.error_rate:
            status = _ERROR_STATUSES[int(which * len(_ERROR_STATUSES))]
            injected.append(f"error:{status}")
            return Decision(status=status, delay=delay, injected=tuple(injected))
        reset = f.error_rate <= mode < f.error_rate + f.reset_rate
        truncate = not reset and mode < f.error_rate + f.reset_rate + f.truncate_rate
        if reset:
            injected.append("reset")
        elif truncate:
            injected.append("truncate")
        items = 1 + int(count * 3) if repeat < f.repeat_rate else 0
        return Decision(
            reset=reset,
            truncate=truncate,
            cut=0.1 + 0.8 * cut,
            repeat=items,
            delay=delay,
            injected=tuple(injected),
        )

    def _take(self, api_key: str) -> float | None:
        """Take a token from the key's bucket: None when allowed, else seconds until one frees."""
        rate = float(self.faults.rate_limit or 0.0)
        capacity = max(1.0, rate)
        now = self._clock()
        digest = hashlib.sha256(api_key.encode()).digest()
        tokens, then = self._buckets.get(digest, (capacity, now))
        tokens = min(capacity, tokens + (now - then) * rate)
        if tokens >= 1.0:
            self._buckets[digest] = (tokens - 1.0, now)
            return None
        self._buckets[digest] = (tokens, now)
        return (1.0 - tokens) / rate
