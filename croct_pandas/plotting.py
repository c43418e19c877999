"""Charts of funnels and events: every ``plot_*`` takes ``ax=None`` and returns its Axes.

The numbers come from the result objects (:class:`croct_pandas.funnel.FunnelResult`) or from a
small aggregation here; this module only draws. matplotlib is imported inside the functions so
that ``import croct_pandas`` stays light in headless jobs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_conversion_over_time", "plot_events", "plot_funnel", "plot_time_to_convert"]

#: Event types drawn one by one in ``plot_events``; the rest are summed into "other".
TOP_TYPES = 8
_COLOR = "#3b6fd4"
_UNITS = (
    ("days", pd.Timedelta(days=1)),
    ("hours", pd.Timedelta(hours=1)),
    ("minutes", pd.Timedelta(minutes=1)),
    ("seconds", pd.Timedelta(seconds=1)),
)


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


def _slot_chars(ax: Axes, n: int) -> int:
    """About how many characters of a 9-point label fit under one of ``n`` columns."""
    inches = ax.get_position().width * ax.get_figure().get_figwidth()  # type: ignore[union-attr]
    return max(8, int(inches / max(n, 1) * 11))


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


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def _plain() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.10g}")


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


def event_counts(df: pd.DataFrame, *, freq: str = "D", top: int = TOP_TYPES) -> pd.DataFrame:
    """Events per period (rows, UTC) and type (columns): the ``top`` types, then ``other``.

    Examples
    --------
    >>> df = pd.DataFrame({"type": ["a", "b", "a"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-02"], utc=True)})
    >>> event_counts(df, top=1).to_numpy().tolist()
    [[1, 1], [1, 0]]
    """
    freq = _check_freq(freq)
    if not isinstance(df, pd.DataFrame) or not {"type", "timestamp"} <= set(df.columns):
        raise ValueError("df must be an event frame with 'type' and 'timestamp' columns")
    types = df["type"].astype("string").fillna("(null)")
    counts = (
        pd.DataFrame({"timestamp": df["timestamp"], "type": types})
        .groupby([pd.Grouper(key="timestamp", freq=freq), "type"])
        .size()
        .unstack(fill_value=0)
    )
    order = counts.sum().sort_values(ascending=False, kind="stable").index
    counts = counts[order]
    if len(order) > top:
        counts = counts[order[:top]].assign(other=counts[order[top:]].sum(axis=1))
    counts.columns = pd.Index([str(c) for c in counts.columns], name="type")
    return counts


def _palette() -> list[Any]:
    from matplotlib import colormaps

    # tab10 without its grey, which stands for "other"
    colors = list(colormaps["tab10"].colors)  # type: ignore[attr-defined]
    return colors[:7] + colors[8:]


def plot_events(df: pd.DataFrame, *, freq: str = "D", ax: Axes | None = None) -> Axes:
    """Draw events over time, one line per event type (the most frequent ones, then "other").

    Parameters
    ----------
    df : pandas.DataFrame
        An event frame (``type`` and ``timestamp`` columns).
    freq : str, default "D"
        A pandas frequency: the width of each period (UTC).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> df = pd.DataFrame({"type": ["pageOpened", "pageOpened", "orderPlaced"],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-02"], utc=True)})
    >>> ax = plot_events(df)
    >>> [line.get_label() for line in ax.lines]
    ['pageOpened', 'orderPlaced']
    """
    counts = event_counts(df, freq=freq)
    ax = _new_axes(ax, (9.0, 4.5))
    x = _naive_utc(counts.index)
    palette = _palette()
    for i, name in enumerate(counts.columns):
        ax.plot(
            x,
            counts[name].to_numpy(),
            marker="o" if len(x) < 20 else None,
            markersize=3,
            linewidth=1.5,
            label=name,
            color="grey" if name == "other" else palette[i % len(palette)],
        )
    word = _FREQ_WORDS.get(freq, f"period ({freq})")
    ax.set_title("Events over time by type")
    ax.set_ylabel(f"events per {word}")
    ax.set_xlabel(f"{word} (UTC)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(_thousands())
    _date_axis(ax)
    if len(counts.columns):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return ax
