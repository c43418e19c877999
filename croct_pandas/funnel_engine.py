"""The funnel engine: row masks in, one outcome per entity out (level, counted attempt, reason).

Rows are sorted once by (entity, timestamp, row position), then each entity goes to the
fastest engine that is exact for it:

- :mod:`croct_pandas.funnel_chains`, vectorised chains from every step-1 row at once, for
  ordered funnels whose steps match the same or disjoint rows (greedy is optimal), and for
  ordered and strict funnels in entities where no two step rows share a timestamp (the chain
  is then a subsequence: greedy, or forced for strict);
- :mod:`croct_pandas.funnel_any`, vectorised windows, for ``any`` funnels whose steps match the
  same or disjoint rows;
- :mod:`croct_pandas.funnel_general`, entity by entity, for the rest (tied rows that more than
  one step could take, ``any`` funnels whose steps share some rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NAT",
    "REASONS",
    "Outcome",
    "Partial",
    "Prepared",
    "compute",
    "finish",
    "time_values",
    "type_codes",
]

NAT = np.iinfo(np.int64).min
#: An unbounded window, later than any time an int64 clock holds when added to one.
FAR = 2**62
REASONS = (
    "converted",
    "excluded",
    "window_still_open",
    "window_expired",
    "next_step_never_happened",
)


@dataclass
class Outcome:
    """One row per entity with level >= 1, in the order of each one's first step-1 row."""

    entities: pd.Index
    level: np.ndarray  # int64
    times: np.ndarray  # int64 [entities, steps], NAT past the level
    first_row: np.ndarray  # positional frame row of the counted attempt's step 1
    reason: np.ndarray  # int8 index into REASONS
    unit: str
    tz: Any


@dataclass
class Prepared:
    """Rows that matter, sorted by (entity, timestamp, row position)."""

    n: int
    ent: np.ndarray
    t: np.ndarray
    row: np.ndarray
    masks: list[np.ndarray]
    bits: np.ndarray  # int64: bit i set where the row matches step i
    excl: np.ndarray
    gid: np.ndarray  # (entity, timestamp) group number, increasing along the sort
    entities: pd.Index
    unit: str
    tz: Any
    window: int  # in the clock's unit; FAR when unbounded
    windowed: bool
    end: int


def type_codes(col: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Integer codes of the ``type`` column (-1 for null) and the names they stand for.

    Examples
    --------
    >>> codes, names = type_codes(pd.Series(["pageOpened", None, "pageOpened"], dtype="category"))
    >>> codes.tolist(), names
    ([0, -1, 0], ['pageOpened'])
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.cat.codes, dtype=np.int64), list(col.cat.categories)
    codes, uniques = pd.factorize(col)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def time_values(col: pd.Series) -> tuple[np.ndarray, str, Any]:
    """The timestamp column as int64 ticks (NAT for null), its unit and its time zone.

    Any backend: ``datetime64[unit]`` (naive or zoned) or an Arrow ``timestamp``.

    Examples
    --------
    >>> stamps = pd.Series(pd.to_datetime([0, 1500], unit="ms", utc=True)).astype("M8[ms, UTC]")
    >>> ticks, unit, tz = time_values(stamps)
    >>> ticks.tolist(), unit, str(tz)
    ([0, 1500], 'ms', 'UTC')
    """
    dtype = col.dtype
    if isinstance(dtype, pd.ArrowDtype):
        pa_type = dtype.pyarrow_dtype
        if not hasattr(pa_type, "unit") or not hasattr(pa_type, "tz"):
            raise ValueError(f"df: the timestamp column must hold datetimes, not {dtype}")
        tz = pa_type.tz
        col = col.astype(
            f"datetime64[{pa_type.unit}, UTC]" if tz else f"datetime64[{pa_type.unit}]"
        )
        dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        values = col.dt.tz_convert(None).to_numpy()
        tz = dtype.tz
    elif isinstance(dtype, np.dtype) and dtype.kind == "M":
        values, tz = col.to_numpy(), None
    else:
        raise ValueError(f"df: the timestamp column must hold datetimes, not {dtype}")
    unit = np.datetime_data(values.dtype)[0]
    return values.view(np.int64), unit, tz


def ticks(ts: pd.Timestamp | pd.Timedelta, unit: str) -> int:
    """A time (UTC when naive) or a duration in whole ``unit`` ticks, floored."""
    if isinstance(ts, pd.Timedelta):
        return int(ts // pd.Timedelta(1, unit=unit))
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return int((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, unit=unit))


def prepare(
    frame: pd.DataFrame,
    masks: list[np.ndarray],
    excl: np.ndarray | None,
    *,
    by: str,
    all_rows: bool,
    window: pd.Timedelta | None,
) -> Prepared:
    """Keep the rows that can matter (every row when ``all_rows``), factorize, sort."""
    t_all, unit, tz = time_values(frame["timestamp"])
    excl_all = np.zeros(len(frame), dtype=bool) if excl is None else excl
    keep = np.ones(len(frame), dtype=bool) if all_rows else np.logical_or.reduce([*masks, excl_all])
    keep &= t_all != NAT
    idx = np.flatnonzero(keep)
    codes, uniques = pd.factorize(frame[by].take(idx))
    codes = np.asarray(codes, dtype=np.int64)
    idx, codes = idx[codes >= 0], codes[codes >= 0]
    t = t_all[idx]
    order = np.lexsort((t, codes))  # stable: ties keep row position
    idx, ent, t = idx[order], codes[order], t[order]
    new = np.ones(len(idx), dtype=bool)
    new[1:] = (ent[1:] != ent[:-1]) | (t[1:] != t[:-1])
    end = _end(frame, t_all, unit)
    sorted_masks = [m[idx] for m in masks]
    bits = np.zeros(len(idx), dtype=np.int64)
    for i, mask in enumerate(sorted_masks):
        bits |= mask.astype(np.int64) << i
    return Prepared(
        n=len(masks),
        ent=ent,
        t=t,
        row=idx,
        masks=sorted_masks,
        bits=bits,
        excl=excl_all[idx],
        gid=np.cumsum(new) - 1,
        entities=pd.Index(uniques),
        unit=unit,
        tz=tz,
        window=FAR if window is None else min(ticks(window, unit), FAR),
        windowed=window is not None,
        end=end,
    )


def _end(frame: pd.DataFrame, t_all: np.ndarray, unit: str) -> int:
    """The end of the data: ``attrs["croct"]["end"]`` when set, else the last timestamp."""
    meta = frame.attrs.get("croct")
    if isinstance(meta, dict) and meta.get("end"):
        return ticks(pd.Timestamp(meta["end"]), unit)
    return int(t_all.max()) if len(t_all) else NAT  # NAT is the smallest tick: max skips it


def compute(
    frame: pd.DataFrame,
    masks: list[np.ndarray],
    excl: np.ndarray | None,
    *,
    by: str,
    order: str,
    window: pd.Timedelta | None,
    path: str = "auto",
) -> Outcome:
    """Run the funnel; ``path="general"`` forces the per-entity engine (tests compare both)."""
    from croct_pandas import funnel_any, funnel_chains, funnel_general

    p = prepare(frame, masks, excl, by=by, all_rows=order == "strict", window=window)
    if path == "general":
        return finish(p, [funnel_general.solve(p, order)])
    same = funnel_chains.same_rows(p.masks) if order != "strict" else None
    if order == "any":
        solved = funnel_general.solve(p, order) if same is None else funnel_any.solve(p, same)
        return finish(p, [solved])
    if same is not None:
        return finish(p, [funnel_chains.solve(p, same)])
    # entities with two step rows at one instant need a matching: the general engine
    tied = funnel_chains.tied_entities(p)
    parts = [funnel_chains.solve(p, None if order == "ordered" else "strict", skip=tied)]
    if tied.any():
        parts.append(funnel_general.solve(p, order, only=tied))
    return finish(p, parts)


@dataclass
class Partial:
    """Per-entity results of one engine, keyed by entity code."""

    ent: np.ndarray
    level: np.ndarray
    times: np.ndarray
    first_row: np.ndarray
    first_seen: np.ndarray  # the entity's first step-1 row in the frame: the ledger's order
    reason: np.ndarray


def finish(p: Prepared, parts: list[Partial]) -> Outcome:
    """Merge engine results into one outcome, in the order entities first matched step 1."""
    order = np.argsort(np.concatenate([q.first_seen for q in parts]), kind="stable")

    def merged(name: str) -> np.ndarray:
        return np.concatenate([getattr(q, name) for q in parts])[order]

    return Outcome(
        entities=p.entities.take(merged("ent")),
        level=merged("level").astype(np.int64),
        times=merged("times").reshape(-1, p.n),
        first_row=merged("first_row").astype(np.int64),
        reason=merged("reason").astype(np.int8),
        unit=p.unit,
        tz=p.tz,
    )
