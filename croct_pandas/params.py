"""Argument checking shared by :class:`~croct_pandas.client.Client` and ``read_croct_events``.

Pure functions, no I/O beyond reading two environment variables. Every check raises
:class:`~croct_pandas.errors.InvalidArgumentError` naming the parameter and what it accepts, before
any request is sent. Nothing here ever puts an API key into a message.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from croct_pandas.errors import InvalidArgumentError
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

DEFAULT_BASE_URL = "https://api.croct.io"
MAX_WORKERS = 64

# Below 1e11 ms is before 1973: almost surely epoch seconds (Croct's old docs used seconds).
_MIN_MS = 10**11
# 1e14 ms is the year 5138: anything larger is epoch microseconds or nanoseconds.
_MAX_MS = 10**14
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})?)?"
)
_ACCEPTS = (
    "epoch milliseconds (int), a datetime, date, pandas Timestamp, numpy datetime64 or an "
    "ISO 8601 string such as '2026-11-01', '2026-11-01T10:00' or '2026-11-01T10:00:00Z' "
    "(naive times are UTC)"
)


def _bad(name: str, value: Any, why: str) -> InvalidArgumentError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidArgumentError(f"{name}={shown}: {why}")


def to_epoch_ms(value: Any, name: str) -> int | None:
    """Convert a time argument to epoch milliseconds (UTC); ``None`` stays ``None``.

    Parameters
    ----------
    value : None, int, float, datetime, date, pandas.Timestamp, numpy.datetime64 or str
        Integers are epoch milliseconds; naive times are UTC; a date is its midnight UTC. A time
        between two milliseconds counts as the next one: events carry whole milliseconds, so
        ``start <= timestamp`` and ``timestamp < end`` then select the same events as the
        exact time would.
    name : str
        The parameter's name, used in the error message.

    Raises
    ------
    InvalidArgumentError
        For anything else, for integers that look like epoch seconds (below ``10**11``) or
        microseconds, and for non-integral floats.

    Examples
    --------
    >>> to_epoch_ms("2026-11-01", "start")
    1793491200000
    >>> to_epoch_ms("2026-11-01T02:00+02:00", "start")
    1793491200000
    >>> to_epoch_ms(None, "end") is None
    True
    >>> to_epoch_ms("2026-11-01T00:00:00.0005", "start")  # rounded up, never down
    1793491200001
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise _bad(name, value, f"a boolean is not a time; {name} accepts {_ACCEPTS}")
    if isinstance(value, (int, np.integer)):
        return _check_ms(int(value), name, value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or not float(value).is_integer():
            why = f"epoch milliseconds must be a whole number; {name} accepts {_ACCEPTS}"
            raise _bad(name, value, why)
        return _check_ms(int(value), name, value)
    if value is pd.NaT or (isinstance(value, np.datetime64) and np.isnat(value)):
        raise _bad(name, value, f"NaT is not a time; pass None for no bound or {_ACCEPTS}")
    if isinstance(value, pd.Timestamp):
        return _timestamp_ms(value)
    if isinstance(value, datetime):
        aware = value if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)
        return -((_EPOCH - aware) // _MS)  # rounded up to the millisecond
    if isinstance(value, date):
        return (datetime(value.year, value.month, value.day, tzinfo=timezone.utc) - _EPOCH) // _MS
    if isinstance(value, np.datetime64):
        return _timestamp_ms(pd.Timestamp(value))
    if isinstance(value, str):
        return _parse_iso(value, name)
    raise _bad(name, value, f"unsupported type {type(value).__name__}; {name} accepts {_ACCEPTS}")


def _check_ms(ms: int, name: str, raw: Any) -> int:
    if ms < _MIN_MS:
        raise _bad(name, raw, "looks like epoch seconds; pass milliseconds or a datetime")
    if ms >= _MAX_MS:
        raise _bad(
            name,
            raw,
            "looks like epoch microseconds or nanoseconds; pass milliseconds or a datetime",
        )
    return ms


def _timestamp_ms(ts: pd.Timestamp) -> int:
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    # Timestamp.value is nanoseconds in every pandas unit; a time inside a millisecond rounds up
    # (an event at T is before T + 0.5 ms, so neither bound may move below the time given)
    return -(-int(ts.value) // 1_000_000)


def _parse_iso(text: str, name: str) -> int:
    stripped = text.strip()
    if not _ISO.fullmatch(stripped):
        raise _bad(name, text, f"not an ISO 8601 date or time; {name} accepts {_ACCEPTS}")
    try:
        ts = pd.Timestamp(stripped)
    except (ValueError, OverflowError) as exc:
        raise _bad(
            name, text, f"not a valid date or time ({exc}); {name} accepts {_ACCEPTS}"
        ) from None
    return _timestamp_ms(ts)


def check_window(start_ms: int | None, end_ms: int | None) -> None:
    """Check that ``start`` is before ``end`` when both are given.

    Examples
    --------
    >>> check_window(1793491200000, 1793577600000)
    >>> check_window(None, 1793577600000)
    """
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise InvalidArgumentError(
            f"start ({iso_ms(start_ms)}) must be before end ({iso_ms(end_ms)}): start is "
            "inclusive, end exclusive"
        )


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds, as ``attrs`` and the cache write it.

    Examples
    --------
    >>> iso_ms(1767225600123)
    '2026-01-01T00:00:00.123Z'
    """
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


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


def resolve_api_key(api_key: str | None) -> str:
    """The API key: the argument, else the ``CROCT_API_KEY`` environment variable.

    Surrounding whitespace (a stray newline from a ``.env`` file) is removed. The key itself never
    appears in an error message.

    Examples
    --------
    >>> resolve_api_key("  my-key\\n")
    'my-key'
    """
    source = "api_key"
    if api_key is None:
        api_key = os.environ.get("CROCT_API_KEY")
        source = "the CROCT_API_KEY environment variable"
    if api_key is not None and not isinstance(api_key, str):
        raise InvalidArgumentError(f"api_key must be a str, not {type(api_key).__name__}")
    key = (api_key or "").strip()
    if not key:
        raise InvalidArgumentError(
            "no API key: it is read from the api_key= argument, then the CROCT_API_KEY "
            f"environment variable, and {source} is missing or empty"
        )
    if not key.isascii() or not key.isprintable():
        # an HTTP library would echo the header value in its own error; refuse it here instead
        raise InvalidArgumentError(
            f"the API key from {source} holds characters an HTTP header cannot carry "
            "(control or non-ASCII characters); check how it was copied"
        )
    return key


def is_loopback(url: str) -> bool:
    """Whether a URL's host is loopback: ``localhost``, ``127.0.0.0/8`` or ``::1``.

    Examples
    --------
    >>> is_loopback("http://127.0.0.1:8080"), is_loopback("https://api.croct.io")
    (True, False)
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: str | None) -> str:
    """The API host: the argument, else ``CROCT_API_URL``, else ``https://api.croct.io``.

    A trailing ``/`` or ``/export`` is removed, so requests go to ``{base}/export/events`` and the
    ``/export`` is never doubled. Plain ``http`` is accepted for loopback hosts only.

    Examples
    --------
    >>> resolve_base_url("https://api.croct.io/export/")
    'https://api.croct.io'
    >>> resolve_base_url("http://127.0.0.1:4000")
    'http://127.0.0.1:4000'
    """
    if base_url is None:
        base_url = os.environ.get("CROCT_API_URL") or DEFAULT_BASE_URL
    what = f"base_url accepts an http(s) URL with a host, such as {DEFAULT_BASE_URL!r}"
    if not isinstance(base_url, str):
        raise _bad("base_url", base_url, what)
    if "@" in base_url:
        # never echo it: a user:password part may hold a secret
        raise InvalidArgumentError(
            "base_url must not carry credentials (user:password@); pass the key as api_key"
        )
    try:
        parts = urlsplit(base_url.strip())
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        raise _bad("base_url", base_url, what) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _bad("base_url", base_url, what)
    if parts.query or parts.fragment:
        raise _bad("base_url", base_url, "base_url takes no query string or fragment")
    path = parts.path.rstrip("/")
    if path.lower().endswith("/export"):
        path = path[: -len("/export")]
    path = path.rstrip("/")
    normalised = f"{scheme}://{parts.netloc.lower()}{path}"
    if scheme == "http" and not is_loopback(normalised):
        raise _bad(
            "base_url",
            base_url,
            "plain http would send the API key unencrypted; use https (http is accepted only "
            "for loopback hosts such as 127.0.0.1 or localhost)",
        )
    return normalised
