"""Vectorised funnel chains: every step-1 row starts a chain, all chains advance together.

Rows are sorted by (entity, timestamp, row position), so "the first row of step i at or after
some position" is one ``searchsorted`` over that step's rows. Three kinds of chain, each exact
where :mod:`croct_pandas.funnel_engine` uses it:

- greedy (steps match the same or disjoint rows): the next row is the first of its step in the
  previous row's (entity, timestamp) group or later, skipping rows a same-rows step took;
- subsequence (entities with at most one step row per timestamp): the first row of the step
  strictly after the previous one; earliest-first is optimal for embedding a subsequence;
- forced (strict, same entities): the next step must be the single step row of the next group.

A chain stops at its horizon: the window, cut at the first excluded row after its start.
"""

from __future__ import annotations

import numpy as np

from croct_pandas.funnel_engine import NAT, Partial, Prepared

__all__ = ["same_rows", "solve", "tied_entities"]


def same_rows(masks: list[np.ndarray]) -> list[int] | None:
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


def tied_entities(p: Prepared) -> np.ndarray:
    """Per entity code: whether two of its step rows share a timestamp."""
    rows = np.flatnonzero(p.bits)
    tied = np.zeros(len(p.entities), dtype=bool)
    twice = p.gid[rows][1:] == p.gid[rows][:-1]
    tied[p.ent[rows[1:][twice]]] = True
    return tied


def _greedy(
    p: Prepared, starts: np.ndarray, horizon: np.ndarray, same: list[int] | None
) -> np.ndarray:
    """Chains from every start: positions [steps, starts], -1 where the chain stopped.

    ``same=None`` is the subsequence chain (entities without tied step rows).
    """
    gstart = np.flatnonzero(np.r_[True, p.gid[1:] != p.gid[:-1]])[p.gid]
    pos = np.full((p.n, len(starts)), -1, dtype=np.int64)
    pos[0] = starts
    live = np.arange(len(starts))
    for i in range(1, p.n):
        cand = np.flatnonzero(p.masks[i])
        if not len(cand) or not len(live):
            break
        if same is None:
            thr = pos[i - 1, live] + 1
        else:
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


def _forced(p: Prepared, starts: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    """Strict chains in entities with at most one step row per (entity, timestamp) group:
    step i+1 can only be the step row of the group right after step i's."""
    groups = int(p.gid[-1]) + 1
    single = np.full(groups, -1, dtype=np.int64)
    rows = np.flatnonzero(p.bits)
    single[p.gid[rows]] = rows
    owner = np.empty(groups, dtype=np.int64)
    owner[p.gid] = p.ent
    pos = np.full((p.n, len(starts)), -1, dtype=np.int64)
    pos[0] = starts
    live = np.arange(len(starts))
    for i in range(1, p.n):
        g = p.gid[starts[live]] + i
        ok = g < groups
        g = np.where(ok, g, 0)
        r = single[g]
        ok &= (r >= 0) & (owner[g] == p.ent[starts[live]])
        r = np.where(ok, r, 0)
        ok &= p.masks[i][r] & (p.t[r] <= horizon[live])
        live = live[ok]
        pos[i, live] = r[ok]
    return pos


def solve(p: Prepared, kind: list[int] | str | None, skip: np.ndarray | None = None) -> Partial:
    """Level, counted attempt and reason of each entity with a step-1 row (but ``skip``).

    ``kind``: the ``same_rows`` list (greedy), None (subsequence) or ``"strict"`` (forced).
    """
    starts = np.flatnonzero(p.masks[0])
    if skip is not None:
        starts = starts[~skip[p.ent[starts]]]

    def chains(horizon: np.ndarray) -> np.ndarray:
        if kind == "strict":
            return _forced(p, starts, horizon)
        return _greedy(p, starts, horizon, kind if isinstance(kind, list) else None)

    if not len(starts):
        empty = np.zeros(0, dtype=np.int64)
        return Partial(empty, empty, np.zeros((0, p.n), np.int64), empty, empty, empty)
    t0, e0 = p.t[starts], p.ent[starts]
    reach = t0 + p.window
    horizon = reach.copy()
    has_excl = bool(p.excl.any())
    if has_excl:  # an attempt may not run past the first excluded row after its start
        ex = np.flatnonzero(p.excl)
        after = np.searchsorted(ex, np.searchsorted(p.gid, p.gid[starts], side="right"))
        nxt = ex[np.minimum(after, len(ex) - 1)]
        hit = (after < len(ex)) & (p.ent[nxt] == e0)
        horizon = np.where(hit, np.minimum(horizon, p.t[nxt]), horizon)
    pos = chains(horizon)
    level = (pos >= 0).sum(axis=0)
    first = np.flatnonzero(np.r_[True, e0[1:] != e0[:-1]])
    lvl = np.maximum.reduceat(level, first)
    best = level == np.repeat(lvl, np.diff(np.r_[first, len(starts)]))
    # the counted attempt starts at the entity's first start that reaches its level
    counted = np.minimum.reduceat(np.where(best, np.arange(len(starts)), len(starts)), first)

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
        free = (chains(reach) >= 0).sum(axis=0)
        reason[np.maximum.reduceat(free, first) > lvl] = 1
    reason[lvl == p.n] = 0
    return Partial(
        ent=e0[first],
        level=lvl,
        times=times,
        first_row=p.row[starts[counted]],
        first_seen=np.minimum.reduceat(p.row[starts], first),
        reason=reason,
    )


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
