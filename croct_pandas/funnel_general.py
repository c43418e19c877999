"""The general funnel engine: one entity at a time, for what the vectorised engines cannot settle.

That is entities with two step rows at one instant that different steps could take (ordered and
strict funnels whose steps share some rows, ``X -> [A, B] -> A``, or any strict funnel), and
``any`` funnels whose steps share some rows. It is exact for every funnel, and the tests run it
on all of them. Within one (entity, timestamp) group, which consecutive steps distinct rows can
fill is a small bipartite matching (augmenting paths); across groups:

- ordered: filling as many steps as possible in each group is optimal, so a start's level is a
  walk over its groups up to its horizon (the window, cut at the first excluded row after it);
- strict: a chain occupies consecutive groups of the entity's rows, so the walk carries the set
  of steps reachable so far;
- any: an attempt fits in a window opening at its earliest row, so each group time opens one.

The counted attempt is then built row by row, taking the first row (in timestamp, row order)
that still leaves an attempt of the entity's level: lexicographic order by construction.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence

import numpy as np

from croct_pandas.funnel_engine import NAT, Partial, Prepared

__all__ = ["solve"]


def solve(p: Prepared, order: str, only: np.ndarray | None = None) -> Partial:
    """Level, counted attempt and reason of every entity (in ``only``) with a step-1 row."""
    step_pos = np.flatnonzero(p.bits)
    excl_pos = np.flatnonzero(p.excl)
    bounds = np.flatnonzero(np.r_[True, p.ent[1:] != p.ent[:-1], True]) if len(p.ent) else p.ent
    s_cut = np.searchsorted(step_pos, bounds).tolist()
    x_cut = np.searchsorted(excl_pos, bounds).tolist()
    t, bits, gid = p.t.tolist(), p.bits.tolist(), p.gid.tolist()
    step_l, excl_l, rows_of = step_pos.tolist(), excl_pos.tolist(), p.row.tolist()
    has_start = np.zeros(len(p.entities), dtype=bool)
    has_start[p.ent[p.masks[0]]] = True
    if only is not None:
        has_start &= only
    ent_l = p.ent[bounds[:-1]].tolist() if len(bounds) else []

    ents, levels, chains, reasons, first_seen = [], [], [], [], []
    for k, ent in enumerate(ent_l):
        if not has_start[ent]:
            continue
        rows = step_l[s_cut[k] : s_cut[k + 1]]
        xs = [t[x] for x in excl_l[x_cut[k] : x_cut[k + 1]]]
        entity = _Entity(rows, t, bits, gid, xs, p)
        level, chain, reason = entity.solve_any() if order == "any" else entity.solve(order)
        ents.append(ent)
        levels.append(level)
        chains.append(chain)
        reasons.append(reason)
        first_seen.append(min(rows_of[r] for r in rows if bits[r] & 1))
    times = np.full((len(ents), p.n), NAT, dtype=np.int64)
    for i, chain in enumerate(chains):
        times[i, : len(chain)] = [t[r] for r in chain]
    return Partial(
        ent=np.array(ents, dtype=np.int64),
        level=np.array(levels, dtype=np.int64),
        times=times,
        first_row=np.array([rows_of[chain[0]] for chain in chains], dtype=np.int64),
        first_seen=np.array(first_seen, dtype=np.int64),
        reason=np.array(reasons, dtype=np.int8),
    )


def _run(
    rows: Sequence[int], bits: list[int], steps: Sequence[int], banned: Collection[int]
) -> int:
    """How many of ``steps``, in order, distinct rows of ``rows`` (less ``banned``) can fill."""
    if len(rows) == 1:  # most groups: one row fills at most the first step
        r = rows[0]
        return int(bool(steps) and r not in banned and bits[r] >> steps[0] & 1)
    free = [r for r in rows if r not in banned]
    owner: dict[int, int] = {}

    def augment(step: int, seen: set[int]) -> bool:
        for r in free:
            if bits[r] >> step & 1 and r not in seen:
                seen.add(r)
                if r not in owner or augment(owner[r], seen):
                    owner[r] = step
                    return True
        return False

    done = 0
    for step in steps:
        if not augment(step, set()):
            break
        done += 1
    return done


class _Entity:
    """One entity's step rows (sorted positions) grouped by timestamp, and its excluded times."""

    def __init__(
        self,
        rows: list[int],
        t: list[int],
        bits: list[int],
        gid: list[int],
        xs: list[int],
        p: Prepared,
    ) -> None:
        self.rows, self.t, self.bits, self.xs = rows, t, bits, xs
        self.n, self.window, self.windowed, self.end = p.n, p.window, p.windowed, p.end
        self.groups: list[list[int]] = []
        self.gids: list[int] = []
        self.group_of: dict[int, int] = {}
        for r in rows:
            if not self.gids or self.gids[-1] != gid[r]:
                self.gids.append(gid[r])
                self.groups.append([])
            self.groups[-1].append(r)
            self.group_of[r] = len(self.groups) - 1
        self.times = [t[g[0]] for g in self.groups]
        self.memo: dict[tuple[int, int], int] = {}

    def run(self, g: int, s: int) -> int:
        """``_run`` over all of group ``g`` from step ``s``, remembered (starts share groups)."""
        key = (g, s)
        if key not in self.memo:
            self.memo[key] = _run(self.groups[g], self.bits, range(s, self.n), ())
        return self.memo[key]

    def horizon(self, t0: int, void: bool = True) -> int:
        """The latest time an attempt starting at ``t0`` may use (``void``: stop at exclusions)."""
        h = t0 + self.window
        if void:
            k = bisect_right(self.xs, t0)
            if k < len(self.xs):
                h = min(h, self.xs[k])
        return h

    # -- ordered and strict -------------------------------------------------------------

    def reach(self, g: int, s: int, banned: Collection[int], h: int, strict: bool) -> int:
        """Steps filled at best, with steps < s filled and the last one in group ``g``."""
        r = _run(self.groups[g], self.bits, range(s, self.n), banned)
        if not strict:
            s += r
            g += 1
            while s < self.n and g < len(self.groups) and self.times[g] <= h:
                s += self.run(g, s)
                g += 1
            return s
        # strict: the next row lies in this group or the next one, so states are carried
        states, best = set(range(s, s + r + 1)), s + r
        while best < self.n and g + 1 < len(self.groups) and self.times[g + 1] <= h:
            if self.gids[g + 1] != self.gids[g] + 1:
                break  # some other row of the entity lies in between
            g += 1
            new: set[int] = set()
            for st in states:
                if st < self.n:
                    new.update(range(st + 1, st + self.run(g, st) + 1))
            if not new:
                break
            states, best = new, max(best, max(new))
        return best

    def solve(self, order: str) -> tuple[int, list[int], int]:
        strict = order == "strict"
        starts = [r for r in self.rows if self.bits[r] & 1]
        levels = []
        for e in starts:
            levels.append(self.reach(self.group_of[e], 1, (e,), self.horizon(self.t[e]), strict))
            if levels[-1] == self.n:  # the first converting start is the counted one
                starts = starts[: len(levels)]
                break
        level = max(levels)
        e1 = starts[levels.index(level)]
        chain = self.complete(e1, level, strict)
        if level == self.n:
            return level, chain, 0
        if self.xs and level < max(
            self.reach(self.group_of[e], 1, (e,), self.horizon(self.t[e], False), strict)
            for e in starts
        ):
            return level, chain, 1
        if self.windowed:
            reached = [self.t[e] for e, lv in zip(starts, levels) if lv == level]
            if self.end - max(reached) < self.window:
                return level, chain, 2
            later = [self.t[r] for r in self.rows if self.bits[r] >> level & 1]
            if later and max(later) > min(reached) + self.window:
                return level, chain, 3
        return level, chain, 4

    def complete(self, e1: int, level: int, strict: bool) -> list[int]:
        h = self.horizon(self.t[e1])
        chain = [e1]
        for i in range(1, level):
            prev = chain[-1]
            gp = self.group_of[prev]
            for r in self.rows:
                if r in chain or not self.bits[r] >> i & 1 or not self.t[prev] <= self.t[r] <= h:
                    continue
                g = self.group_of[r]
                if strict and self.gids[g] - self.gids[gp] > 1:
                    continue
                banned = [x for x in chain if self.group_of[x] == g] + [r]
                if self.reach(g, i + 1, banned, h, strict) >= level:
                    chain.append(r)
                    break
        return chain

    # -- any ----------------------------------------------------------------------------

    def window_rows(self, lo: int, hi: int) -> list[int]:
        return [r for r in self.rows if lo <= self.t[r] <= hi]

    def solve_any(self) -> tuple[int, list[int], int]:
        levels = [
            _run(self.window_rows(a, self.horizon(a)), self.bits, range(self.n), ())
            for a in self.times
        ]
        level = max(levels)
        chain: list[int] = []
        for i in range(level):
            for r in self.rows:
                if r not in chain and self.bits[r] >> i & 1 and self.fits([*chain, r], level):
                    chain.append(r)
                    break
        if level == self.n:
            return level, chain, 0
        if self.xs and level < max(
            _run(self.window_rows(a, self.horizon(a, False)), self.bits, range(self.n), ())
            for a in self.times
        ):
            return level, chain, 1
        if self.windowed:
            if any(lv == level and self.end - a < self.window for a, lv in zip(self.times, levels)):
                return level, chain, 2
            later = [self.t[r] for r in self.rows if self.bits[r] >> level & 1]
            if later:
                first, last = self.extreme_edge(level, True), self.extreme_edge(level, False)
                if first < max(later) - self.window or last > min(later) + self.window:
                    return level, chain, 3
        return level, chain, 4

    def fits(self, chosen: list[int], level: int) -> bool:
        """Whether an attempt of ``level`` steps starts with the rows ``chosen``."""
        lo, hi = min(self.t[c] for c in chosen), max(self.t[c] for c in chosen)
        rest = range(len(chosen), level)
        for a in self.times:
            if a > lo:
                break
            h = self.horizon(a)
            if hi <= h:
                rows = self.window_rows(a, h)
                if _run(rows, self.bits, rest, chosen) == len(rest):
                    return True
        return False

    def extreme_edge(self, level: int, earliest: bool) -> int:
        """The earliest first time (or latest last time) of any attempt of ``level`` steps."""
        for edge in self.times if earliest else reversed(self.times):
            if earliest:
                rows = self.window_rows(edge, self.horizon(edge))
            else:
                lo = edge - self.window
                k = bisect_left(self.xs, edge) - 1
                rows = self.window_rows(max(lo, self.xs[k]) if k >= 0 else lo, edge)
            for rho in rows:
                if self.t[rho] != edge:
                    continue
                for j in range(level):
                    others = [s for s in range(level) if s != j]
                    if self.bits[rho] >> j & 1 and _run(rows, self.bits, others, (rho,)) == len(
                        others
                    ):
                        return edge
        raise AssertionError("an entity at a level has an attempt of that level")
