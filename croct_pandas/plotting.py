"""Charts of a funnel result: every ``plot_*`` takes ``ax=None`` and returns its Axes.

The numbers come from the result object (:class:`croct_pandas.funnel.FunnelResult`); this module
only draws. The event frame's charts live in :mod:`croct_pandas.plotting_events` and are
importable from here too, as is :func:`duration_text`. matplotlib is imported inside the
functions so that ``import croct_pandas`` stays light in headless jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from croct_pandas.plotting_axes import (
    _FREQ_WORDS,
    _check_freq,
    _date_axis,
    _naive_utc,
    _new_axes,
    _plain,
    _slot_chars,
    _thousands,
)
from croct_pandas.plotting_events import TOP_TYPES as TOP_TYPES
from croct_pandas.plotting_events import event_counts as event_counts
from croct_pandas.plotting_events import plot_events
from croct_pandas.plotting_text import _count, _pct, _unit_of, _wrap
from croct_pandas.plotting_text import duration_text as duration_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_conversion_over_time", "plot_events", "plot_funnel", "plot_time_to_convert"]

_COLOR = "#3b6fd4"


def _steps(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop_duplicates("step").sort_values("step")[["step", "name"]]


def plot_funnel(result: Any, *, ax: Axes | None = None) -> Axes:
    """Draw a funnel as bars of entities per step, labelled with counts and conversion.

    Without a breakdown each bar is labelled with its count and its conversion from step 1, and
    each step's tick says how many entities dropped off since the previous step. With a
    breakdown the bars are grouped per step, one colour per group, labelled with conversion.

    Parameters
    ----------
    result : FunnelResult
        What ``df.croct.funnel(...)`` returned.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, croct_pandas
    >>> df = pd.DataFrame({"type": ["productViewed", "orderPlaced", "productViewed"],
    ...     "timestamp": pd.to_datetime([0, 60_000, 0], unit="ms", utc=True),
    ...     "userId": ["a", "a", "b"]})
    >>> ax = plot_funnel(df.croct.funnel(["productViewed", "orderPlaced"]))
    >>> [float(p.get_height()) for p in ax.patches]
    [2.0, 1.0]
    """
    table = result.table
    group_col = getattr(result, "breakdown", None)
    steps = _steps(table)
    n = len(steps)
    ax = _new_axes(ax, (max(8.0, 1.6 * n), 4.5))
    x = np.arange(n)
    width = _slot_chars(ax, n)
    ticks = [f"{k}. " + _wrap(name, width - 3) for k, name in zip(steps["step"], steps["name"])]
    top = float(pd.to_numeric(table["entities"]).max()) if len(table) else 0.0
    if group_col is None:
        rows = table.sort_values("step")
        heights = rows["entities"].to_numpy(dtype=float)
        bars = ax.bar(x, heights, width=0.6, color=_COLOR)
        labels = [f"{_count(h)}\n{_pct(c)}" for h, c in zip(heights, rows["conversion"])]
        ax.bar_label(bars, labels=labels, padding=3, fontsize=9)
        drops = zip(rows["drop_off"].iloc[1:], rows["step_conversion"].iloc[1:])
        for i, (drop, kept) in enumerate(drops, start=1):
            ticks[i] += f"\n−{_count(drop)} ({_pct(1 - kept)} drop)"
    else:
        groups = list(pd.unique(table[group_col]))
        bar = 0.8 / max(len(groups), 1)
        # side by side, horizontal percentages collide from three groups on
        crowded = len(groups) > 2
        for i, group in enumerate(groups):
            rows = table[_same(table[group_col], group)].sort_values("step")
            pos = rows["step"].to_numpy(dtype=int) - 1 + (i - (len(groups) - 1) / 2) * bar
            label = "(null)" if pd.isna(group) else str(group)
            bars = ax.bar(pos, rows["entities"].to_numpy(dtype=float), bar, label=label)
            ax.bar_label(
                bars,
                labels=[_pct(c) for c in rows["conversion"]],
                padding=2,
                fontsize=7 if crowded else 8,
                rotation=90 if crowded else 0,
            )
        ax.legend(
            title=group_col,
            fontsize=8,
            title_fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
        )
    ax.set_xticks(x, ticks, fontsize=9)
    # headroom for the labels above the tallest bar (and the legend beside it)
    ax.set_ylim(0, max(top, 1.0) * (1.35 if group_col else 1.2))
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_ylabel(_entity_label(result))
    ax.set_title(_funnel_title(result, group_col))
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def _same(column: pd.Series, value: object) -> pd.Series:
    if pd.isna(value):
        return column.isna()
    return (column == value).fillna(False).astype(bool)


def _entity_label(result: Any) -> str:
    by = getattr(result, "by", "userId")
    return {"userId": "people", "sessionId": "sessions"}.get(str(by), f"entities ({by})")


def _funnel_title(result: Any, group_col: str | None) -> str:
    within = getattr(result, "within", None)
    parts = ["Funnel"]
    if group_col:
        parts.append(f"by {group_col}")
    if within is not None and pd.notna(within):
        parts.append(f"(within {duration_text(pd.Timedelta(within))})")
    return " ".join(parts)


def _step_index(table: pd.DataFrame, step: int, param: str) -> int:
    n = int(table["step"].max())
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"{param} must be a step number (1..{n}, or negative from the end)")
    k = int(step) + n + 1 if step < 0 else int(step)
    if not 1 <= k <= n:
        raise ValueError(f"{param} must be a step number from 1 to {n} (or -1 to -{n}); got {step}")
    return k


def plot_time_to_convert(
    result: Any, *, from_step: int = 1, to_step: int = -1, ax: Axes | None = None
) -> Axes:
    """Draw a histogram of the time entities took from one step to another.

    Parameters
    ----------
    result : FunnelResult
        What ``df.croct.funnel(...)`` returned.
    from_step, to_step : int, default 1 and -1
        Step numbers (1-based; negative counts from the end), as
        ``result.time_to_convert`` takes them.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, croct_pandas
    >>> df = pd.DataFrame({"type": ["productViewed", "orderPlaced"] * 2,
    ...     "timestamp": pd.to_datetime([0, 60_000, 0, 300_000], unit="ms", utc=True),
    ...     "userId": ["a", "a", "b", "b"]})
    >>> ax = plot_time_to_convert(df.croct.funnel(["productViewed", "orderPlaced"]))
    >>> ax.get_xlabel()
    'minutes'
    """
    table = result.table
    first = _step_index(table, from_step, "from_step")
    last = _step_index(table, to_step, "to_step")
    names = dict(zip(table["step"].astype(int), table["name"].astype(str)))
    values = pd.to_timedelta(result.time_to_convert(from_step=from_step, to_step=to_step))
    values = values.dropna()
    ax = _new_axes(ax)
    unit_name, unit = _unit_of(values)
    ax.set_title(f"Time from {first}. {names[first]} to {last}. {names[last]}")
    ax.set_xlabel(unit_name)
    ax.set_ylabel(f"{_entity_label(result)} (of {len(values):,})")
    ax.spines[["top", "right"]].set_visible(False)
    if values.empty:
        ax.text(
            0.5,
            0.5,
            f"no entity reached step {last}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="grey",
        )
        return ax
    x = (values / unit).to_numpy(dtype=float)
    count = int(min(40, max(5, np.sqrt(len(x)))))
    median = float(np.median(x))
    positive = x[x > 0]
    bins: Any = count
    # conversion times are heavy-tailed (minutes for most, days for some): past two orders of
    # magnitude a linear axis would squeeze nearly everyone into the first bar
    if len(positive) and positive.max() > 100 * positive.min():
        low = float(positive.min())
        bins = np.geomspace(low, float(positive.max()) * 1.0001, count + 1)
        x = np.maximum(x, low)  # zero-second conversions land in the first bar
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_plain())
        ax.set_xlabel(f"{unit_name} (log scale)")
    ax.hist(x, bins=bins, color=_COLOR, edgecolor="white")
    ax.axvline(
        median,
        color="#c0392b",
        linestyle="--",
        linewidth=1.2,
        label=f"median {median:,.1f} {unit_name}",
    )
    ax.legend(frameon=False)
    ax.yaxis.set_major_formatter(_thousands())
    return ax


def plot_conversion_over_time(result: Any, *, freq: str = "W", ax: Axes | None = None) -> Axes:
    """Draw conversion (step 1 to the last step) per period of the counted attempt's start.

    Parameters
    ----------
    result : FunnelResult
        What ``df.croct.funnel(...)`` returned.
    freq : str, default "W"
        A pandas frequency, as ``result.conversion_over_time`` takes it.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, croct_pandas
    >>> df = pd.DataFrame({"type": ["productViewed", "orderPlaced", "productViewed"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-09"], utc=True),
    ...     "userId": ["a", "a", "b"]})
    >>> ax = plot_conversion_over_time(df.croct.funnel(["productViewed", "orderPlaced"]))
    >>> [float(y) for y in ax.lines[0].get_ydata()]
    [1.0, 0.0]
    """
    from matplotlib.ticker import PercentFormatter

    freq = _check_freq(freq)
    frame = result.conversion_over_time(freq=freq)
    ax = _new_axes(ax)
    conversion = frame["conversion"]
    ax.plot(
        _naive_utc(conversion.index), conversion.to_numpy(dtype=float), marker="o", color=_COLOR
    )
    peak = float(np.nanmax(conversion.to_numpy(dtype=float))) if len(conversion) else 0.0
    ax.set_ylim(0, min(1.0, max(peak * 1.15, 0.05)) if np.isfinite(peak) else 1.0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    names = _steps(result.table)["name"].astype(str).tolist()
    word = _FREQ_WORDS.get(freq, f"period ({freq})")
    ax.set_title(f"Conversion by {word} of first step")
    ax.set_ylabel(f"conversion, {names[0]} → {names[-1]}" if names else "conversion")
    ax.set_xlabel(f"{word} (UTC)")
    _date_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return ax
