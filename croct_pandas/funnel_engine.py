"""The funnel engine: row masks in, one outcome per entity out (level, counted attempt, reason).

Rows are sorted once by (entity, timestamp, row position). Ordered funnels whose steps never
share a row partially (each pair of steps matches the same rows or disjoint rows) run as
vectorised greedy chains: per step-1 row, ``searchsorted`` finds the first eligible row of each
next step, which ``docs/funnels.md`` shows is optimal there. Everything else (steps sharing some
rows, ``strict``, ``any``) goes to :mod:`croct_pandas.funnel_general`, entity by entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["NAT", "REASONS", "Outcome", "Prepared", "compute", "time_values", "type_codes"]

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

    def ordered_by(self, first_seen: np.ndarray) -> Outcome:
        """The same outcome, rows sorted by ``first_seen`` (each entity's first step-1 row)."""
        order = np.argsort(first_seen, kind="stable")
        return Outcome(
            entities=self.entities.take(order),
            level=self.level[order],
            times=self.times[order],
            first_row=self.first_row[order],
            reason=self.reason[order],
            unit=self.unit,
            tz=self.tz,
        )


@dataclass
class Prepared:
    """Rows that matter, sorted by (entity, timestamp, row position)."""

    n: int
    ent: np.ndarray
    t: np.ndarray
    row: np.ndarray
    masks: list[np.ndarray]
    excl: np.ndarray
    gid: np.ndarray  # (entity, timestamp) group number, increasing along the sort
    entities: pd.Index
    unit: str
    tz: Any
    window: int  # in the clock's unit; FAR when unbounded
    windowed: bool
    end: int


def type_codes(col: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Integer codes of the ``type`` column (-1 for null) and the names they stand for."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.cat.codes, dtype=np.int64), list(col.cat.categories)
    codes, uniques = pd.factorize(col)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def time_values(col: pd.Series) -> tuple[np.ndarray, str, Any]:
    """The timestamp column as int64 ticks (NAT for null), its unit and its time zone."""
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
    return Prepared(
        n=len(masks),
        ent=ent,
        t=t,
        row=idx,
        masks=[m[idx] for m in masks],
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
    from croct_pandas import funnel_general

    p = prepare(frame, masks, excl, by=by, all_rows=order == "strict", window=window)
    same = _same_rows(p.masks) if order == "ordered" and path != "general" else None
    if same is None:
        return funnel_general.solve(p, order)
    return _greedy_outcome(p, same)


def _same_rows(masks: list[np.ndarray]) -> list[int] | None:
    """Per step, the latest earlier step matching the same rows (-1: none), or None when two
    steps share only some rows (greedy is then not optimal)."""
    same = []
    for i, mask in enumerate(masks):
        prev = -1
        for j in range(i):
            if np.array_equal(mask, masks[j]):
                prev = j
            elif (mask & masks[j]).any():
                return None
        same.append(prev)
    return same


def _chains(p: Prepared, starts: np.ndarray, horizon: np.ndarray, same: list[int]) -> np.ndarray:
    """Greedy chains from every start: positions [steps, starts], -1 where the chain stopped."""
    gstart = np.flatnonzero(np.r_[True, p.gid[1:] != p.gid[:-1]])[p.gid]
    pos = np.full((p.n, len(starts)), -1, dtype=np.int64)
    pos[0] = starts
    live = np.arange(len(starts))
    for i in range(1, p.n):
        cand = np.flatnonzero(p.masks[i])
        if not len(cand) or not len(live):
            break
        # ties are optimistic: any row of the previous row's (entity, time) group is eligible
        thr = gstart[pos[i - 1, live]]
        if same[i] >= 0:  # rows a same-rows step already took lie at or before pos[same]
            thr = np.maximum(thr, pos[same[i], live] + 1)
        k = np.searchsorted(cand, thr)
        nxt = cand[np.minimum(k, len(cand) - 1)]
        ok = (k < len(cand)) & (p.ent[nxt] == p.ent[starts[live]]) & (p.t[nxt] <= horizon[live])
        live = live[ok]
        pos[i, live] = nxt[ok]
    return pos


def empty_outcome(p: Prepared) -> Outcome:
    return Outcome(
        entities=p.entities[:0],
        level=np.zeros(0, dtype=np.int64),
        times=np.zeros((0, p.n), dtype=np.int64),
        first_row=np.zeros(0, dtype=np.int64),
        reason=np.zeros(0, dtype=np.int8),
        unit=p.unit,
        tz=p.tz,
    )


def _greedy_outcome(p: Prepared, same: list[int]) -> Outcome:
    starts = np.flatnonzero(p.masks[0])
    if not len(starts):
        return empty_outcome(p)
    t0, e0 = p.t[starts], p.ent[starts]
    reach = np.minimum(t0 + p.window, np.iinfo(np.int64).max)
    horizon = reach.copy()
    has_excl = bool(p.excl.any())
    if has_excl:  # an attempt may not run past the first excluded row after its start
        ex = np.flatnonzero(p.excl)
        after = np.searchsorted(ex, np.searchsorted(p.gid, p.gid[starts], side="right"))
        hit = after < len(ex)
        nxt = ex[np.minimum(after, len(ex) - 1)]
        hit &= p.ent[nxt] == e0
        horizon = np.where(hit, np.minimum(horizon, p.t[nxt]), horizon)
    pos = _chains(p, starts, horizon, same)
    level = (pos >= 0).sum(axis=0)
    first = np.flatnonzero(np.r_[True, e0[1:] != e0[:-1]])
    lvl = np.maximum.reduceat(level, first)
    best = level == np.repeat(lvl, np.diff(np.r_[first, len(starts)]))
    counted = np.minimum.reduceat(np.where(best, np.arange(len(starts)), len(starts)), first)
    counted = counted.astype(np.int64)

    times = np.full((len(first), p.n), NAT, dtype=np.int64)
    for k in range(p.n):
        at = pos[k, counted]
        times[at >= 0, k] = p.t[at[at >= 0]]

    reason = np.full(len(first), 4, dtype=np.int8)
    if p.windowed:
        last = _last_times(p)
        nxt_t = last[np.minimum(level, p.n - 1), e0]
        expired = best & (level < p.n) & (nxt_t > t0 + p.window)
        reason[np.maximum.reduceat(expired, first)] = 3
        still = best & (p.end - t0 < p.window)
        reason[np.maximum.reduceat(still, first)] = 2
    if has_excl:
        free = (_chains(p, starts, reach, same) >= 0).sum(axis=0)
        reason[np.maximum.reduceat(free, first) > lvl] = 1
    reason[lvl == p.n] = 0
    ent = e0[first]
    return Outcome(
        entities=p.entities.take(ent),
        level=lvl.astype(np.int64),
        times=times,
        first_row=p.row[starts[counted]],
        reason=reason,
        unit=p.unit,
        tz=p.tz,
    ).ordered_by(np.minimum.reduceat(p.row[starts], first))


def _last_times(p: Prepared) -> np.ndarray:
    """[steps, entity codes]: the time of each entity's last row matching each step."""
    last = np.full((p.n, max(len(p.entities), 1)), NAT, dtype=np.int64)
    for i, mask in enumerate(p.masks):
        cand = np.flatnonzero(mask)
        if len(cand):
            e = p.ent[cand]
            tail = np.r_[e[1:] != e[:-1], True]
            last[i, e[tail]] = p.t[cand[tail]]
    return last
