"""Axes plumbing every chart shares: a new Axes, tick formatters, and the time axis.

The time axis part checks a pandas frequency and names it in words, turns a period index into
naive UTC stamps, and puts concise date ticks on the x axis. matplotlib is imported inside the
functions so that importing this module stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_FREQ_WORDS = {
    "D": "day",
    "W": "week",
    "h": "hour",
    "H": "hour",
    "MS": "month",
    "ME": "month",
    "M": "month",
    "QS": "quarter",
    "QE": "quarter",
    "min": "minute",
}


def _new_axes(ax: Axes | None, size: tuple[float, float] = (8.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # a broken install: matplotlib is a required dependency
        raise ImportError(
            "croct_pandas.plotting needs matplotlib: pip install 'matplotlib>=3.8'"
        ) from exc
    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _slot_chars(ax: Axes, n: int) -> int:
    """About how many characters of a 9-point label fit under one of ``n`` columns."""
    inches = ax.get_position().width * ax.get_figure().get_figwidth()  # type: ignore[union-attr]
    return max(8, int(inches / max(n, 1) * 11))


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def _plain() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.10g}")


def _check_freq(freq: object) -> str:
    try:
        pd.tseries.frequencies.to_offset(freq)
    except (TypeError, ValueError):
        raise ValueError(
            f"freq must be a pandas frequency such as 'D', 'W', 'h' or 'MS'; got {freq!r}"
        ) from None
    return str(freq)


def _naive_utc(index: pd.Index) -> np.ndarray:
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    stamps = pd.DatetimeIndex(index)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    return stamps.to_numpy()


def _date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
