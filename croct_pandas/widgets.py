"""``df.croct.explore()``: filters, funnel steps and a chart that redraws as they change.

The controls only read and write a :class:`~croct_pandas.widgets_state.Query`; everything that
computes lives in :mod:`croct_pandas.widgets_state`. ipywidgets and matplotlib are imported when
an explorer is built, never when the package is.
"""

from __future__ import annotations

import base64
import html
import io
import time
from typing import Any

import pandas as pd

from croct_pandas.widgets_state import WINDOWS, ExplorerState, Query

__all__ = ["Explorer", "explore"]

_BY = {"people": "userId", "sessions": "sessionId"}
_NO_BREAKDOWN = "(none)"


def _ipywidgets() -> Any:
    try:
        import ipywidgets
    except ImportError as exc:  # a broken install: ipywidgets is a required dependency
        raise ImportError(
            "df.croct.explore() needs ipywidgets (and a Jupyter front end): "
            "pip install 'ipywidgets>=8.1'"
        ) from exc
    return ipywidgets


def explore(df: pd.DataFrame) -> Any:
    """An interactive funnel explorer over an event frame.

    Filters (date range, event types, URL contains, and each session's device and country when
    the frame knows them) narrow the rows; the funnel's steps are picked and ordered from the
    frame's event types, with a window, people or sessions, and an optional breakdown. The chart
    and the table redraw after each change.

    Parameters
    ----------
    df : pandas.DataFrame
        An event frame from :func:`croct_pandas.read_croct_events`.

    Returns
    -------
    ipywidgets.VBox
        The app; its ``explorer`` attribute is the :class:`Explorer` that drives it.

    Examples
    --------
    >>> import croct_pandas, pandas as pd
    >>> df = pd.DataFrame({"type": ["productViewed", "orderPlaced", "productViewed"],
    ...     "timestamp": pd.to_datetime([0, 60_000, 0], unit="ms", utc=True),
    ...     "userId": ["a", "a", "b"], "sessionId": ["s1", "s1", "s2"]})
    >>> app = explore(df)
    >>> app.explorer.result.table["entities"].tolist()
    [2, 1]
    """
    return Explorer(df).widget


class Explorer:
    """The explorer's controls, chart and table, wired to an :class:`ExplorerState`.

    Set any control's ``value`` (``explorer.controls["steps"].value = [...]``) and the chart
    (``explorer.chart``, an ``Output``) and the table (``explorer.table``, an ``HTML``) redraw.

    Examples
    --------
    >>> import croct_pandas, pandas as pd
    >>> df = pd.DataFrame({"type": ["pageOpened", "orderPlaced"], "userId": ["a", "a"],
    ...     "sessionId": ["s", "s"], "timestamp": pd.to_datetime([0, 1], unit="ms", utc=True)})
    >>> explorer = Explorer(df)
    >>> explorer.controls["steps"].value = ["orderPlaced", "pageOpened"]
    >>> explorer.result.table["entities"].tolist()
    [1, 0]
    """

    def __init__(self, df: pd.DataFrame) -> None:
        w = _ipywidgets()
        self.state = ExplorerState(df)
        self.result: Any = None
        #: Seconds the last redraw took (compute and draw).
        self.last_redraw = 0.0
        self.controls = self._controls(w)
        self.chart = w.Output(layout=w.Layout(min_height="320px"))
        self.table = w.HTML()
        self.status = w.HTML()
        self.widget = self._layout(w)
        self.widget.explorer = self
        #: the steps as last picked, with those the type filter hides now: re-ticking a type
        #: brings its steps back where they were
        self._picked = list(self.controls["steps"].value)
        self._filtering = False
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.redraw()

    # -- building -------------------------------------------------------------------------

    def _controls(self, w: Any) -> dict[str, Any]:
        s = self.state
        wide = w.Layout(width="auto")
        days = _days(s.first_day, s.last_day)
        controls: dict[str, Any] = {}
        if days:
            label = "%b %d" if days[0].year == days[-1].year else "%d %b %y"
            controls["dates"] = w.SelectionRangeSlider(
                # the slider's readout is narrow: the year only when the range spans two
                options=[(d.strftime(label), d) for d in days],
                index=(0, len(days) - 1),
                description="Dates (UTC)",
                continuous_update=False,
                layout=w.Layout(width="720px"),
            )
        controls["types"] = w.SelectMultiple(
            options=s.types, value=tuple(s.types), rows=6, description="Event types", layout=wide
        )
        controls["url"] = w.Text(
            placeholder="e.g. /checkout", description="URL contains", continuous_update=False
        )
        for name, options in s.session_options.items():
            controls[name] = w.SelectMultiple(
                options=options,
                value=tuple(options),
                rows=min(6, len(options)),
                description=f"{name.title()}",
                layout=wide,
            )
        controls["steps"] = w.TagsInput(
            value=list(s.default_steps),
            allowed_tags=list(s.types),
            allow_duplicates=True,
            layout=w.Layout(width="95%"),
        )
        controls["within"] = w.Dropdown(
            options=list(WINDOWS),
            value="7 days",
            description="Window",
            layout=w.Layout(width="180px"),
        )
        controls["by"] = w.ToggleButtons(options=list(_BY), value="people", description="Count")
        controls["by"].style.button_width = "80px"
        controls["breakdown"] = w.Dropdown(
            options=[_NO_BREAKDOWN, *s.breakdowns],
            value=_NO_BREAKDOWN,
            description="Breakdown",
            layout=w.Layout(width="420px"),
        )
        for control in controls.values():
            control.style.description_width = "initial"
        return controls

    def _layout(self, w: Any) -> Any:
        c = self.controls
        filters = [c[k] for k in ("types", "device", "country") if k in c]
        rows = [
            w.HTML("<b>Filters</b>"),
            *([c["dates"]] if "dates" in c else []),
            w.HBox(filters, layout=w.Layout(flex_flow="row wrap", grid_gap="4px 16px")),
            c["url"],
            w.HTML("<b>Funnel</b> (type a step or pick one; drag to reorder)"),
            c["steps"],
            w.HBox(
                [c["within"], c["by"], c["breakdown"]],
                layout=w.Layout(flex_flow="row wrap", align_items="center", grid_gap="4px 24px"),
            ),
            self.status,
            self.chart,
            self.table,
        ]
        return w.VBox(rows, layout=w.Layout(width="100%"))

    # -- reading the controls -------------------------------------------------------------

    def query(self) -> Query:
        """The :class:`Query` the controls say now."""
        c = self.controls
        start = end = None
        if "dates" in c:
            start, end = c["dates"].value
        types = tuple(c["types"].value)

        def chosen(name: str) -> tuple[str, ...] | None:
            return tuple(c[name].value) if name in c else None

        return Query(
            steps=tuple(c["steps"].value),
            within=WINDOWS[c["within"].value],
            by=_BY[c["by"].value],
            breakdown=None if c["breakdown"].value == _NO_BREAKDOWN else c["breakdown"].value,
            start=start,
            end=end,
            types=None if set(types) >= set(self.state.types) else types,
            url_contains=c["url"].value,
            devices=chosen("device"),
            countries=chosen("country"),
        )

    def _changed(self, change: dict[str, Any]) -> None:
        steps = self.controls["steps"]
        if change["owner"] is self.controls["types"]:
            # steps come from the types the filter keeps
            kept = list(change["new"])
            steps.allowed_tags = kept
            shown = [t for t in self._picked if t in kept]
            if shown != list(steps.value):
                self._filtering = True
                try:
                    steps.value = shown  # observed: redraws once
                finally:
                    self._filtering = False
                return
        elif change["owner"] is steps and not self._filtering:
            # the user's own pick; steps hidden by the type filter keep their places in it
            keeping = set(self.controls["types"].value)
            picked = list(change["new"])
            for place, step in enumerate(self._picked):
                if step in keeping:
                    continue
                # after the nearest step before it that is still picked (else first)
                before = [t for t in self._picked[:place] if t in picked]
                at = picked.index(before[-1]) + 1 if before else 0
                picked.insert(at, step)
            self._picked = picked
        self.redraw()

    # -- drawing ----------------------------------------------------------------------------

    def redraw(self) -> None:
        """Recompute the funnel for the current controls and redraw the chart and the table."""
        began = time.perf_counter()
        q = self.query()
        try:
            self.result = self.state.run(q)
        except ValueError as exc:
            self.result = None
            self.chart.outputs = ()
            self.table.value = ""
            self.status.value = f"<span style='color:#b03a2e'>{html.escape(str(exc))}</span>"
            return
        self.chart.outputs = (_png_output(self.result),)
        self.table.value = _table_html(self.result.table)
        self.last_redraw = time.perf_counter() - began
        rows = self.state.count(q)
        self.status.value = (
            f"{rows:,} events kept · {len(self.result.ledger):,} "
            f"{'people' if q.by == 'userId' else 'sessions'} entered the funnel"
        )


def _days(first: pd.Timestamp | None, last: pd.Timestamp | None) -> list[pd.Timestamp]:
    if first is None or last is None:
        return []
    return list(pd.date_range(first, last, freq="D"))


def _png_output(result: Any) -> dict[str, Any]:
    """The funnel chart as a notebook display output (no pyplot: no global figure to leak)."""
    from matplotlib.figure import Figure

    from croct_pandas.plotting import plot_funnel

    width = max(8.0, 1.6 * len(result.steps))
    legend = 2.4 if result.breakdown else 0.0  # inches beside the axes for the group legend
    fig = Figure(figsize=(width + legend, 4.6))
    # fixed margins: a layout engine would draw the figure twice, half of a redraw's time
    fig.subplots_adjust(
        left=0.95 / (width + legend),
        right=1 - (legend + 0.2) / (width + legend),
        bottom=0.24,
        top=0.91,
    )
    plot_funnel(result, ax=fig.add_subplot())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, pil_kwargs={"compress_level": 1})
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {
        "output_type": "display_data",
        "data": {"image/png": png, "text/plain": "<funnel chart>"},
        "metadata": {},
    }


def _table_html(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in ("conversion", "conversion_low", "conversion_high", "step_conversion"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    shown["median_time"] = shown["median_time"].map(
        lambda v: "" if pd.isna(v) else str(pd.Timedelta(v).round("s"))
    )
    group = shown.columns[0]
    if group != "step":  # a breakdown: its null group reads as the chart's legend says
        shown[group] = shown[group].astype("string").fillna("(null)")
    return _TABLE_STYLE + shown.to_html(index=False, border=0, classes="croct-funnel-table")


_TABLE_STYLE = """<style>
.croct-funnel-table { border-collapse: collapse; font-size: 13px; }
.croct-funnel-table th, .croct-funnel-table td { padding: 3px 10px; text-align: right; }
.croct-funnel-table th { border-bottom: 1px solid #888; }
.croct-funnel-table tr:nth-child(even) td { background: #f4f6fa; }
</style>
"""
