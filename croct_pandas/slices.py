"""Cutting a time window into slices that workers follow with their own cursor chains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MIN_SLICE_MS", "Slice", "plan_slices", "split_intervals"]

#: Slices shorter than a minute cost more in extra requests than they gain in parallelism.
MIN_SLICE_MS = 60_000
#: Slices per worker: enough that a dense slice does not leave the other workers idle.
SLICES_PER_WORKER = 4


@dataclass(frozen=True)
class Slice:
    """``[start, end)`` followed by one cursor chain; ``cursor`` resumes a chain stopped earlier."""

    start: int | None
    end: int
    cursor: str | None = None

    @property
    def key(self) -> str:
        return f"{'' if self.start is None else self.start}-{self.end}"


def plan_slices(start: int | None, end: int, workers: int) -> list[Slice]:
    """Cut ``[start, end)`` into about ``4 * workers`` equal slices (one without ``start``).

    Examples
    --------
    >>> [(s.start, s.end) for s in plan_slices(0, 240_000, 1)]
    [(0, 60000), (60000, 120000), (120000, 180000), (180000, 240000)]
    >>> plan_slices(None, 10, 4)
    [Slice(start=None, end=10, cursor=None)]
    """
    if start is None:
        return [Slice(None, end)]
    return split_intervals([(start, end)], workers)


def split_intervals(intervals: Sequence[tuple[int, int]], workers: int) -> list[Slice]:
    """Cut several intervals into slices, in proportion to their lengths.

    Examples
    --------
    >>> [(s.start, s.end) for s in split_intervals([(0, 60_000), (120_000, 360_000)], 1)]
    [(0, 60000), (120000, 200000), (200000, 280000), (280000, 360000)]
    """
    total = sum(end - start for start, end in intervals)
    if total <= 0:
        return []
    wanted = max(1, workers * SLICES_PER_WORKER)
    out: list[Slice] = []
    for start, end in intervals:
        span = end - start
        if span <= 0:
            continue
        pieces = max(1, min(round(wanted * span / total), span // MIN_SLICE_MS))
        step = -(-span // pieces)
        bound = start
        while bound < end:
            out.append(Slice(bound, min(end, bound + step)))
            bound += step
    return out
