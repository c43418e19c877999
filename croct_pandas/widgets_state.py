"""The explorer's state, without widgets: what the controls offer and what a choice computes.

The frame is read once: a slim copy keeps only the columns the explorer filters on (type codes,
times as integers, entities, the URL, each session's device and country), and every filter's
row mask is cached by its value. A change of steps, window, ``by`` or a filter then costs a few
vectorised mask operations, one ``take`` of the rows the funnel can use and one funnel over them.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from croct_pandas.funnel import FunnelResult, funnel
from croct_pandas.funnel_engine import time_values, type_codes

__all__ = ["UNKNOWN", "WINDOWS", "ExplorerState", "Query"]

#: How the explorer offers conversion windows: label -> ``within``.
WINDOWS: dict[str, str | None] = {
    "30 minutes": "30min",
    "1 hour": "1h",
    "1 day": "1D",
    "7 days": "7D",
    "30 days": "30D",
    "unbounded": None,
}
#: The option that stands for sessions whose device or country is not known.
UNKNOWN = "(unknown)"
#: Where ``with_sessions`` finds each session attribute the explorer filters on.
SESSION_SOURCES = {
    "device": "payload.client.device.category",
    "country": "payload.location.country",
}
#: The path most shops' funnels follow; the default steps are the part of it the frame holds.
SHOP_PATH = ("pageOpened", "productViewed", "cartModified", "checkoutStarted", "orderPlaced")


@dataclasses.dataclass(frozen=True)
class Query:
    """Everything the explorer's controls say: the funnel to count and the rows to count on.

    ``types``, ``devices`` and ``countries`` of ``None`` mean no filter; ``start`` and ``end``
    are dates (inclusive) or ``None``.
    """

    steps: tuple[str, ...]
    within: str | None = "7D"
    by: str = "userId"
    breakdown: str | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    types: tuple[str, ...] | None = None
    url_contains: str = ""
    devices: tuple[str, ...] | None = None
    countries: tuple[str, ...] | None = None


class ExplorerState:
    """The options a frame offers and the funnel a :class:`Query` gives, computed once each.

    Parameters
    ----------
    df : pandas.DataFrame
        An event frame (``type``, ``timestamp``, ``userId``, ``sessionId``).

    Examples
    --------
    >>> import croct_pandas, pandas as pd
    >>> df = pd.DataFrame({"type": ["productViewed", "orderPlaced", "productViewed"],
    ...     "timestamp": pd.to_datetime([0, 60_000, 0], unit="ms", utc=True),
    ...     "userId": ["a", "a", "b"], "sessionId": ["s1", "s1", "s2"]})
    >>> state = ExplorerState(df)
    >>> state.types
    ['productViewed', 'orderPlaced']
    >>> state.run(Query(steps=("productViewed", "orderPlaced"))).table["entities"].tolist()
    [2, 1]
    """

    def __init__(self, df: pd.DataFrame) -> None:
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in ("type", "timestamp", "userId", "sessionId") if c not in df.columns]
        if missing:
            raise ValueError(f"df: the frame has no column(s) {', '.join(map(repr, missing))}")
        self._df = df
        codes, names = type_codes(df["type"])
        counts = np.bincount(codes[codes >= 0], minlength=len(names))
        self._codes, self._names = codes, [str(n) for n in names]
        #: Event types in the frame, most frequent first.
        self.types = [self._names[i] for i in np.argsort(-counts, kind="stable") if counts[i]]
        self._t, self._unit, _ = time_values(df["timestamp"])
        self._valid_t = self._t[self._t != np.iinfo(np.int64).min]
        self.first_day, self.last_day = self._day_bounds()
        self._end = self._data_end()
        self._sessions = self._session_columns()
        #: Options of the session filters: ``{"device": [...], "country": [...]}`` (present only).
        self.session_options = {
            name: _options(self._sessions[f"session.{name}"]) for name in self._present_sources()
        }
        #: Columns a breakdown can use, the session attributes first.
        self.breakdowns = [f"session.{n}" for n in self.session_options] + _breakdown_columns(df)
        self.default_steps = tuple(t for t in SHOP_PATH if t in self.types) or tuple(self.types[:2])
        if len(self.default_steps) < 2:
            self.default_steps = tuple(self.types[:2])
        self._masks: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._urls: tuple[np.ndarray, pd.Series] | None = None
        self._results: OrderedDict[Query, FunnelResult] = OrderedDict()

    # -- what the controls offer ----------------------------------------------------------

    def _day_bounds(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        if not len(self._valid_t):
            return None, None
        low, high = (
            pd.Timestamp(int(v), unit=self._unit, tz="UTC").normalize()
            for v in (self._valid_t.min(), self._valid_t.max())
        )
        return low.tz_localize(None), high.tz_localize(None)

    def _data_end(self) -> pd.Timestamp | None:
        meta = self._df.attrs.get("croct")
        if isinstance(meta, dict) and meta.get("end"):
            return pd.Timestamp(meta["end"])
        if not len(self._valid_t):
            return None
        return pd.Timestamp(int(self._valid_t.max()), unit=self._unit, tz="UTC")

    def _present_sources(self) -> list[str]:
        return [
            name
            for name, source in SESSION_SOURCES.items()
            if f"session.{name}" in self._sessions
            and self._sessions[f"session.{name}"].notna().any()
            and source in self._df.columns
        ]

    def _session_columns(self) -> pd.DataFrame:
        """``session.device`` and ``session.country`` per row, from ``with_sessions``."""
        wanted = [n for n, source in SESSION_SOURCES.items() if source in self._df.columns]
        if not wanted:
            return pd.DataFrame(index=self._df.index)
        core = ["type", "timestamp", "sessionId", "userId"]
        slim = self._df[core + [SESSION_SOURCES[n] for n in wanted]]
        slim.attrs = {}
        added = slim.croct.with_sessions(columns=tuple(wanted))
        return added[[f"session.{n}" for n in wanted]]

    # -- what a query computes --------------------------------------------------------------

    def _cached_mask(self, key: Hashable, build: Any) -> np.ndarray:
        if key in self._masks:
            self._masks.move_to_end(key)
            return self._masks[key]
        mask = np.asarray(build(), dtype=bool)
        self._masks[key] = mask
        if len(self._masks) > 32:
            self._masks.popitem(last=False)
        return mask

    def _type_mask(self, types: tuple[str, ...] | set[str]) -> np.ndarray:
        wanted = set(types)
        lookup = np.array([n in wanted for n in self._names] + [False], dtype=bool)
        return lookup[self._codes]

    def _bounds(self, q: Query) -> tuple[int | None, int | None]:
        def tick(day: pd.Timestamp) -> int:
            stamp = pd.Timestamp(day).tz_localize(None).normalize().tz_localize("UTC")
            return int((stamp - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, unit=self._unit))

        one_day = int(pd.Timedelta(days=1) // pd.Timedelta(1, unit=self._unit))
        low = None if q.start is None else tick(q.start)
        high = None if q.end is None else tick(q.end) + one_day  # end date is inclusive
        return low, high

    def _session_mask(self, name: str, chosen: tuple[str, ...]) -> np.ndarray:
        column = self._sessions[f"session.{name}"]
        values = column.astype("string").fillna(UNKNOWN)
        return values.isin(list(chosen)).to_numpy(dtype=bool)

    def mask(self, q: Query) -> np.ndarray:
        """Rows that the filters of ``q`` keep (steps aside), as a boolean array.

        Examples
        --------
        >>> import croct_pandas, pandas as pd
        >>> df = pd.DataFrame({"type": ["pageOpened", "pageOpened"], "userId": ["a", "b"],
        ...     "sessionId": ["s1", "s2"], "context.url": ["https://x.io/a", "https://x.io/b"],
        ...     "timestamp": pd.to_datetime([0, 1], unit="ms", utc=True)})
        >>> ExplorerState(df).mask(Query(steps=(), url_contains="/B")).tolist()
        [False, True]
        """
        keep = self._t != np.iinfo(np.int64).min
        low, high = self._bounds(q)
        if low is not None or high is not None:
            keep = keep & self._cached_mask(("time", low, high), lambda: self._between(low, high))
        if q.types is not None:
            keep = keep & self._cached_mask(("types", q.types), lambda: self._type_mask(q.types))
        text = q.url_contains.strip().lower()
        if text:
            keep = keep & self._cached_mask(("url", text), lambda: self._url_mask(text))
        for name, chosen in (("device", q.devices), ("country", q.countries)):
            if chosen is not None and name in self.session_options:
                if set(chosen) >= set(self.session_options[name]):
                    continue  # everything chosen: no filter, and no mask to build
                keep = keep & self._cached_mask(
                    (name, chosen), lambda n=name, c=chosen: self._session_mask(n, c)
                )
        return keep

    def _between(self, low: int | None, high: int | None) -> np.ndarray:
        keep = np.ones(len(self._t), dtype=bool)
        if low is not None:
            keep &= self._t >= low
        if high is not None:
            keep &= self._t < high
        return keep

    def _url_mask(self, text: str) -> np.ndarray:
        if "context.url" not in self._df.columns:
            return np.zeros(len(self._df), dtype=bool)
        if self._urls is None:
            # far fewer distinct URLs than rows: match each once, then look the answer up
            codes, uniques = pd.factorize(self._df["context.url"])
            self._urls = (np.asarray(codes), pd.Series(uniques, dtype="string"))
        codes, uniques = self._urls
        found = uniques.str.lower().str.contains(text, regex=False).fillna(False)
        lookup = np.append(found.to_numpy(dtype=bool), False)  # code -1 (null) finds nothing
        return lookup[codes]

    def view(self, q: Query) -> pd.DataFrame:
        """The rows and columns the funnel of ``q`` needs: filtered rows of its step types."""
        rows = np.flatnonzero(self.mask(q) & self._type_mask(q.steps))
        columns: dict[str, pd.Series] = {}
        for name in dict.fromkeys(["type", "timestamp", q.by, q.breakdown]):
            if name is None:
                continue
            source = self._sessions if name in self._sessions.columns else self._df
            columns[name] = source[name].take(rows).reset_index(drop=True)
        frame = pd.DataFrame(columns)
        frame.attrs["croct"] = {"end": self._view_end(q)}
        return frame

    def _view_end(self, q: Query) -> str | None:
        """The end of the data the funnel sees, for its "window still open" reason."""
        end = self._end
        _, high = self._bounds(q)
        if high is not None:
            cut = pd.Timestamp(high, unit=self._unit, tz="UTC")
            end = cut if end is None else min(end, cut)
        return None if end is None else end.isoformat()

    def run(self, q: Query) -> FunnelResult:
        """The funnel of ``q`` over the rows its filters keep (recent results are reused)."""
        if q in self._results:
            self._results.move_to_end(q)
            return self._results[q]
        if len(q.steps) < 2:
            raise ValueError("steps: pick at least two steps")
        result = funnel(
            self.view(q), list(q.steps), within=q.within, by=q.by, breakdown=q.breakdown
        )
        self._results[q] = result
        if len(self._results) > 16:
            self._results.popitem(last=False)
        return result

    def forget_results(self) -> None:
        """Drop the remembered funnel results (the filter masks stay): the next run recomputes."""
        self._results.clear()

    def count(self, q: Query) -> int:
        """How many rows the filters of ``q`` keep."""
        return int(np.count_nonzero(self.mask(q)))


def _options(column: pd.Series) -> list[str]:
    values = sorted(str(v) for v in column.dropna().unique())
    return [*values, UNKNOWN] if column.isna().any() else values


def _breakdown_columns(df: pd.DataFrame) -> list[str]:
    """Enum columns and context strings with a handful of values: what a breakdown can split."""
    out = []
    for name in map(str, df.columns):
        column = df[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            useful = name != "type" and bool((column.cat.codes >= 0).any())
        else:
            useful = (
                name.startswith("context.metadata.")
                and column.dtype == "string"
                and 0 < column.nunique() <= 50
            )
        if useful:
            out.append(name)
    return out
