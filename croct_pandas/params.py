"""Argument checking shared by :class:`~croct_pandas.client.Client` and ``read_croct_events``.

This module checks the ``events`` filter and the small numbers (``page_size``, ``workers``,
``timeout``); the time bounds are checked in :mod:`croct_pandas.params_time` and the API key and
base URL in :mod:`croct_pandas.params_endpoint`, and every one of their public names is importable
from here too. Pure functions: every check raises
:class:`~croct_pandas.errors.InvalidArgumentError` naming the parameter and what it accepts, before
any request is sent. Nothing here ever puts an API key into a message.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from croct_pandas.errors import InvalidArgumentError
from croct_pandas.errors import bad_argument as _bad
from croct_pandas.params_endpoint import (
    DEFAULT_BASE_URL,
    is_loopback,
    resolve_api_key,
    resolve_base_url,
)
from croct_pandas.params_time import check_window, iso_ms, to_epoch_ms
from croct_pandas.schema import EVENT_TYPES

__all__ = [
    "DEFAULT_BASE_URL",
    "check_events",
    "check_page_size",
    "check_timeout",
    "check_window",
    "check_workers",
    "is_loopback",
    "iso_ms",
    "resolve_api_key",
    "resolve_base_url",
    "to_epoch_ms",
]

MAX_WORKERS = 64


def check_events(events: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Check an ``events`` filter: ``None`` (all types), one type name, or several.

    Names are case-sensitive and must be among :data:`croct_pandas.schema.EVENT_TYPES`;
    duplicates are dropped keeping the first.

    Examples
    --------
    >>> check_events("orderPlaced")
    ('orderPlaced',)
    >>> check_events(["pageOpened", "orderPlaced", "pageOpened"])
    ('pageOpened', 'orderPlaced')
    >>> check_events(None) is None
    True
    """
    if events is None:
        return None
    if isinstance(events, str):
        events = [events]
    elif isinstance(events, (bytes, bytearray)) or not isinstance(events, Iterable):
        raise _bad(
            "events",
            events,
            "events accepts None (all types), one event type name or a list of them",
        )
    out: dict[str, None] = {}
    for item in events:
        if not isinstance(item, str):
            raise _bad("events", item, "every entry of events must be an event type name (str)")
        if item not in EVENT_TYPES:
            raise _bad("events", item, _unknown_type_hint(item))
        out[item] = None
    if not out:
        raise InvalidArgumentError(
            "events=[] selects nothing; pass None for all types or at least one event type name"
        )
    return tuple(out)


def _unknown_type_hint(name: str) -> str:
    by_case = {t.lower(): t for t in EVENT_TYPES}
    guess = by_case.get(name.lower())
    if guess is None:
        # compare in lower case so a typo and a case slip together still find their match
        close = difflib.get_close_matches(name.lower(), list(by_case), n=1, cutoff=0.6)
        guess = by_case[close[0]] if close else None
    hint = f"did you mean {guess!r}? " if guess else ""
    return (
        f"unknown event type; {hint}events accepts these case-sensitive names: "
        f"{', '.join(EVENT_TYPES)}; pass events=None to include every type, newer ones too"
    )


def _check_int(value: Any, name: str, low: int, high: int, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _bad(name, value, f"{name} accepts {what}")
    if not low <= value <= high:
        raise _bad(name, value, f"{name} accepts {what}")
    return int(value)


def check_page_size(n: Any) -> int:
    """Check ``page_size``: an int from 1 to 1000 (the API's limits).

    Examples
    --------
    >>> check_page_size(500)
    500
    """
    return _check_int(n, "page_size", 1, 1000, "an int from 1 to 1000")


def check_workers(n: Any) -> int:
    """Check ``workers``: an int from 1 to 64.

    Examples
    --------
    >>> check_workers(4)
    4
    """
    return _check_int(n, "workers", 1, MAX_WORKERS, f"an int from 1 to {MAX_WORKERS}")


def check_timeout(t: Any) -> float:
    """Check ``timeout``: a positive, finite number of seconds per HTTP request.

    Examples
    --------
    >>> check_timeout(30)
    30.0
    """
    if (
        isinstance(t, (bool, np.bool_))
        or not isinstance(t, (int, float, np.integer, np.floating))
        or not math.isfinite(t)
        or t <= 0
    ):
        raise _bad("timeout", t, "timeout accepts a positive number of seconds per request")
    return float(t)
