"""The words and numbers written on the charts: counts, percentages, durations, wrapped labels.

pandas and numpy only: :mod:`croct_pandas.funnel_result` imports :func:`duration_text` for its
header, and that must not pull in matplotlib.
"""

from __future__ import annotations

import re

import pandas as pd

_UNITS = (
    ("days", pd.Timedelta(days=1)),
    ("hours", pd.Timedelta(hours=1)),
    ("minutes", pd.Timedelta(minutes=1)),
    ("seconds", pd.Timedelta(seconds=1)),
)


def _count(n: float) -> str:
    return f"{int(n):,}" if pd.notna(n) else "–"


def _pct(x: float) -> str:
    return f"{x:.1%}" if pd.notna(x) else "–"


def _wrap(name: object, width: int) -> str:
    """Wrap at spaces and camelCase humps, so ``checkoutStarted`` breaks as checkout/Started."""
    lines: list[str] = []
    for token in re.split(r"(?<=[a-z0-9])(?=[A-Z])|(?<= )", str(name)):
        if lines and len(lines[-1]) + len(token) <= width:
            lines[-1] += token
        else:
            lines.append(token)
    return "\n".join(line.strip() for line in lines)


def duration_text(td: pd.Timedelta) -> str:
    """A whole number of the largest unit that divides ``td`` (``'7 days'``, ``'90 minutes'``).

    Examples
    --------
    >>> duration_text(pd.Timedelta("7D")), duration_text(pd.Timedelta("1h"))
    ('7 days', '1 hour')
    >>> duration_text(pd.Timedelta("1.5s")), duration_text(pd.Timedelta(0))
    ('1.5 seconds', '0 seconds')
    """
    for name, unit in _UNITS:
        if td >= unit and td % unit == pd.Timedelta(0):
            count = int(td / unit)
            return f"{count} {name[:-1] if count == 1 else name}"
    seconds = td.total_seconds()
    return f"{seconds:g} {'second' if seconds == 1 else 'seconds'}"


def _unit_of(values: pd.Series) -> tuple[str, pd.Timedelta]:
    median = values.median()
    for name, unit in _UNITS:
        if pd.notna(median) and median >= 2 * unit:
            return name, unit
    return _UNITS[-1]
