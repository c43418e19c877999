"""The event frame's charts: events per period and type, counted and drawn as one line a type.

:func:`event_counts` aggregates (pandas only); :func:`plot_events` draws its result.
matplotlib is imported inside the functions so that ``import croct_pandas`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from croct_pandas.plotting_axes import (
    _FREQ_WORDS,
    _check_freq,
    _date_axis,
    _naive_utc,
    _new_axes,
    _thousands,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Event types drawn one by one in ``plot_events``; the rest are summed into "other".
TOP_TYPES = 8


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
