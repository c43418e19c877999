"""Vectorised ``any`` funnels, for steps that match the same rows or disjoint rows.

Steps then fall into classes (steps matching the same rows), and an attempt is any choice of
distinct rows, so a window holds an attempt of k steps exactly when it holds, for each class,
as many rows as steps 1..k take from it. A window opens at each step row's time and runs to the
horizon (the window length, cut at the first excluded row after its opening); counts come from
``searchsorted`` over (entity, time) keys.

Within one window the lexicographically first attempt takes, for each step, the next earliest
row of its class. Those rows only move later as the window opens later, so the counted attempt
is the one of the earliest window that reaches the entity's level, and its first row is the
earliest first row of any attempt of that level. The latest last row is the last needed row of
some window that reaches the level.
"""

from __future__ import annotations

import numpy as np

from croct_pandas.funnel_engine import NAT, Partial, Prepared

__all__ = ["solve"]


def solve(p: Prepared, same: list[int]) -> Partial:
    """Level, counted attempt and reason of each entity with a step-1 row."""
    n = p.n
    cls: list[int] = []  # class of each step: its first step with the same rows
    occ: list[int] = []  # how many steps of its class up to and including it
    for i, j in enumerate(same):
        cls.append(i if j < 0 else cls[j])
        occ.append(cls.count(cls[-1]))
    classes = sorted(set(cls))
    times = np.unique(p.t)
    width = len(times) + 1
    key = p.ent * width + np.searchsorted(times, p.t)  # sorts like (entity, time)
    rows = np.flatnonzero(p.bits)
    opens = rows[np.r_[True, p.gid[rows][1:] != p.gid[rows][:-1]]] if len(rows) else rows
    has_start = np.zeros(len(p.entities), dtype=bool)
    has_start[p.ent[p.masks[0]]] = True
    w = opens[has_start[p.ent[opens]]]
    if not len(w):
        empty = np.zeros(0, dtype=np.int64)
        return Partial(empty, empty, np.zeros((0, n), np.int64), empty, empty, empty)
    a_t, a_e = p.t[w], p.ent[w]
    reach = a_t + p.window
    horizon = reach.copy()
    has_excl = bool(p.excl.any())
    if has_excl:
        ex = np.flatnonzero(p.excl)
        after = np.searchsorted(ex, np.searchsorted(p.gid, p.gid[w], side="right"))
        nxt = ex[np.minimum(after, len(ex) - 1)]
        hit = (after < len(ex)) & (p.ent[nxt] == a_e)
        horizon = np.where(hit, np.minimum(horizon, p.t[nxt]), horizon)
    cand = {c: np.flatnonzero(p.masks[c]) for c in classes}
    ckey = {c: key[cand[c]] for c in classes}
    lower = {c: np.searchsorted(ckey[c], key[w], side="left") for c in classes}

    def upper(h: np.ndarray) -> dict[int, np.ndarray]:
        last = a_e * width + np.searchsorted(times, h, side="right") - 1
        return {c: np.searchsorted(ckey[c], last, side="right") for c in classes}

    def levels(up: dict[int, np.ndarray]) -> np.ndarray:
        ok = np.stack([up[cls[i]] - lower[cls[i]] >= occ[i] for i in range(n)])
        return np.cumprod(ok, axis=0).sum(axis=0)

    up = upper(horizon)
    level = levels(up)
    first = np.flatnonzero(np.r_[True, a_e[1:] != a_e[:-1]])
    lvl = np.maximum.reduceat(level, first)
    per_window = np.repeat(lvl, np.diff(np.r_[first, len(w)]))
    best = level == per_window
    counted = np.minimum.reduceat(np.where(best, np.arange(len(w)), len(w)), first)

    chain = np.full((len(first), n), NAT, dtype=np.int64)
    at = np.full((len(first), n), -1, dtype=np.int64)
    for i in range(n):
        reached = lvl > i
        c = cls[i]
        at[reached, i] = cand[c][lower[c][counted[reached]] + occ[i] - 1]
        chain[reached, i] = p.t[at[reached, i]]

    reason = np.full(len(first), 4, dtype=np.int8)
    if p.windowed:
        ent = a_e[first]
        step_first, step_last = _edge_times(p)
        nxt = np.minimum(lvl, n - 1)
        r_first, r_last = step_first[nxt, ent], step_last[nxt, ent]
        open_first = np.where(chain == NAT, np.iinfo(np.int64).max, chain).min(axis=1)
        close_last = np.maximum.reduceat(
            np.where(best, _latest(p, cand, up, cls, per_window), NAT), first
        )
        has_next = (lvl < n) & (r_last != NAT)
        safe_last = np.where(has_next, r_last, 0)
        safe_first = np.where(has_next, r_first, 0)
        expired = has_next & (
            (open_first < safe_last - p.window) | (close_last > safe_first + p.window)
        )
        reason[expired] = 3
        still = best & (p.end - a_t < p.window)
        reason[np.maximum.reduceat(still, first)] = 2
    if has_excl:
        reason[np.maximum.reduceat(levels(upper(reach)), first) > lvl] = 1
    reason[lvl == n] = 0
    step_1 = np.flatnonzero(p.masks[0])
    first_seen = np.full(len(p.entities), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_seen, p.ent[step_1], p.row[step_1])
    return Partial(
        ent=a_e[first],
        level=lvl,
        times=chain,
        first_row=p.row[at[:, 0]],
        first_seen=first_seen[a_e[first]],
        reason=reason,
    )


def _latest(
    p: Prepared,
    cand: dict[int, np.ndarray],
    up: dict[int, np.ndarray],
    cls: list[int],
    level: np.ndarray,
) -> np.ndarray:
    """Per window: the time of the last row, within its horizon, of a class the level needs."""
    out = np.full(len(level), NAT, dtype=np.int64)
    for c in sorted(set(cls)):
        needed = level > cls.index(c)
        idx = np.maximum(up[c] - 1, 0)
        if len(cand[c]):
            out = np.where(
                needed, np.maximum(out, p.t[cand[c][np.minimum(idx, len(cand[c]) - 1)]]), out
            )
    return out


def _edge_times(p: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """[steps, entity codes]: the first and last time of each entity's rows of each step."""
    first = np.full((p.n, max(len(p.entities), 1)), NAT, dtype=np.int64)
    last = first.copy()
    for i, mask in enumerate(p.masks):
        rows = np.flatnonzero(mask)
        if len(rows):
            e = p.ent[rows]
            head = np.r_[True, e[1:] != e[:-1]]
            tail = np.r_[e[1:] != e[:-1], True]
            first[i, e[head]] = p.t[rows[head]]
            last[i, e[tail]] = p.t[rows[tail]]
    return first, last
