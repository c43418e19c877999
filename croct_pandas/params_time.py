"""Time bounds: ``start`` and ``end`` in any accepted form to epoch milliseconds, and back.

:func:`to_epoch_ms` takes epoch milliseconds, datetimes, dates, pandas Timestamps, numpy
datetime64 and ISO 8601 strings (naive times are UTC) and refuses epoch seconds or microseconds;
:func:`check_window` checks that ``start`` comes before ``end``; :func:`iso_ms` writes epoch
milliseconds as ISO 8601 UTC. Every check raises
:class:`~croct_pandas.errors.InvalidArgumentError` naming the parameter and what it accepts.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from croct_pandas.errors import InvalidArgumentError
from croct_pandas.errors import bad_argument as _bad

__all__ = ["check_window", "iso_ms", "to_epoch_ms"]

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
