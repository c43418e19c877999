"""A Client's settings: checked when it is made, held by its requester, its key kept out of sight.

:func:`check_retry_settings` and :func:`check_hooks` check the constructor's arguments (each bad
one is an :class:`~croct_pandas.errors.InvalidArgumentError` naming the parameter and what it
accepts); the Client hands them to its :class:`~croct_pandas.client_request.RetryingRequester`,
which holds them, and :func:`forwarded` makes the Client attributes that read and set them there.
The API key is held by :class:`Secret`, which shows as ``'***'`` and refuses to be pickled.
"""

from __future__ import annotations

import random
import threading
from typing import Any, NoReturn

from croct_pandas.errors import InvalidArgumentError
from croct_pandas.params import check_timeout
from croct_pandas.retry import RateBudget

__all__ = ["Secret", "check_hooks", "check_retry_settings", "forwarded"]


class Secret:
    """Holds the API key; shows as ``'***'``, has no ``__dict__`` and refuses to be pickled.

    Examples
    --------
    >>> key = Secret("my-key")
    >>> key
    '***'
    >>> print(key)
    '***'
    >>> key.reveal()
    'my-key'
    """

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


def _check_number(value: Any, name: str, *, minimum: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise InvalidArgumentError(f"{name}={value!r}: {name} accepts {what}")
    if value == float("inf"):
        raise InvalidArgumentError(f"{name}={value!r}: {name} accepts {what}")
    return float(value)


def _check_callable(value: Any, name: str, what: str) -> None:
    if not callable(value):
        raise InvalidArgumentError(f"{name}={value!r}: {name} accepts {what}")


def check_retry_settings(
    timeout: Any, max_retries: Any, backoff: Any, max_backoff: Any, max_retry_after: Any
) -> tuple[float, float, float, float]:
    """Check the retry settings, in this order; return ``timeout``, ``backoff``,
    ``max_backoff`` and ``max_retry_after`` as floats (``max_retries`` is kept as given).

    Examples
    --------
    >>> check_retry_settings(30, 8, 0.5, 30, 60)
    (30.0, 0.5, 30.0, 60.0)
    >>> check_retry_settings(30, 8, 2, 1, 60)
    Traceback (most recent call last):
    ...
    croct_pandas.errors.InvalidArgumentError: max_backoff=1: max_backoff accepts seconds >= backoff
    """
    timeout = check_timeout(timeout)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidArgumentError(f"max_retries={max_retries!r}: max_retries accepts an int >= 0")
    backoff = _check_number(backoff, "backoff", minimum=0, what="seconds >= 0")
    max_backoff = _check_number(
        max_backoff, "max_backoff", minimum=backoff, what="seconds >= backoff"
    )
    max_retry_after = _check_number(
        max_retry_after, "max_retry_after", minimum=0, what="seconds >= 0"
    )
    return timeout, backoff, max_backoff, max_retry_after


def check_hooks(
    sleep: Any, transport: Any, budget: Any, on_wait: Any, rng: Any, cancel: Any
) -> None:
    """Check what a Client calls or shares, in this order (``None`` is accepted for all but
    ``sleep``).

    Examples
    --------
    >>> import time
    >>> check_hooks(time.sleep, None, None, None, None, None)
    >>> check_hooks(time.sleep, None, None, None, 42, None)
    Traceback (most recent call last):
    ...
    croct_pandas.errors.InvalidArgumentError: rng=42: rng accepts a random.Random or None
    """
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
        raise InvalidArgumentError(f"cancel={cancel!r}: cancel accepts a threading.Event or None")


def forwarded(name: str) -> Any:
    """A Client attribute that is its requester's setting ``name`` (read and set).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> class Holder:
    ...     timeout = forwarded("timeout")
    ...     def __init__(self):
    ...         self._requester = SimpleNamespace(timeout=30.0)
    >>> holder = Holder()
    >>> holder.timeout = 5.0
    >>> holder._requester.timeout
    5.0
    """

    def get(client: Any) -> Any:
        return getattr(client._requester, name)

    def put(client: Any, value: Any) -> None:
        setattr(client._requester, name, value)

    return property(get, put)
