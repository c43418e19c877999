"""What the cache holds: ``[start, end)`` intervals per event type, with when each was fetched.

The manifest is one small JSON document per application namespace. Its ``coverage`` maps a key to
a list of records ``[start, end, fetched_at]`` (epoch ms; ``start`` null means "from the beginning
of data"). The key ``"*"`` means "every event type, known or not" and serves any subset; any other
key is one event type. Records of one key never overlap: a newer fetch cuts its interval out of
the older records (and a fetch of every type out of every key), so each point of time has exactly
one fetch time per key.

Settledness is judged per call: the part of a record that ended at least ``settle`` before it was
fetched is *final*; the rest is *provisional*, kept but fetched again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALL_TYPES",
    "BEGIN",
    "Manifest",
    "Record",
    "intersect",
    "subtract",
    "union",
]

#: The coverage key of a fetch of every event type (``events=None``).
ALL_TYPES = "*"
#: "The beginning of data": the start of a window or record with ``start=None``.
BEGIN = -(2**62)

Interval = tuple[int, int]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, merged, non-empty intervals.

    Examples
    --------
    >>> union([(5, 8), (0, 2), (2, 3), (7, 9), (4, 4)])
    [(0, 3), (5, 9)]
    """
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(intervals: Iterable[Interval], minus: Iterable[Interval]) -> list[Interval]:
    """``intervals`` without the points of ``minus``.

    Examples
    --------
    >>> subtract([(0, 10)], [(2, 3), (5, 12)])
    [(0, 2), (3, 5)]
    """
    cuts = union(minus)
    out: list[Interval] = []
    for start, end in union(intervals):
        for cut_start, cut_end in cuts:
            if cut_end <= start or cut_start >= end:
                continue
            if cut_start > start:
                out.append((start, cut_start))
            start = max(start, cut_end)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out


def intersect(intervals: Iterable[Interval], other: Iterable[Interval]) -> list[Interval]:
    """The points in both.

    Examples
    --------
    >>> intersect([(0, 5), (8, 12)], [(3, 10)])
    [(3, 5), (8, 10)]
    """
    mine = union(intervals)
    return subtract(mine, subtract(mine, other))


@dataclass(frozen=True)
class Record:
    """``[start, end)`` fetched at ``fetched_at`` (epoch ms).

    Examples
    --------
    >>> Record(0, 1000, fetched_at=1500).final_part(settle_ms=800)
    (0, 700)
    """

    start: int
    end: int
    fetched_at: int

    def final_part(self, settle_ms: int) -> Interval:
        """The part that ended at least ``settle_ms`` before its fetch (may be empty)."""
        return (self.start, min(self.end, self.fetched_at - settle_ms))


@dataclass
class Manifest:
    """The coverage of one namespace, its schema version and the application's metadata.

    Examples
    --------
    >>> m = Manifest("v1")
    >>> m.record(None, (0, 100), fetched_at=1000)
    >>> m.record(["pageOpened"], (100, 200), fetched_at=1100)
    >>> m.covered(["pageOpened"], settle_ms=0), m.covered(None, settle_ms=0)
    ([(0, 200)], [(0, 100)])
    >>> m.covered(["pageOpened"], settle_ms=950)
    [(0, 50), (100, 150)]
    >>> m.oldest_fetch(["pageOpened"], (50, 150))
    1000
    >>> Manifest.from_json(m.to_json()) == m
    True
    """

    version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    base_url: str = ""
    coverage: dict[str, list[Record]] = field(default_factory=dict)

    # -- serialisation -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "base_url": self.base_url,
            "metadata": self.metadata,
            "coverage": {
                key: [[None if r.start == BEGIN else r.start, r.end, r.fetched_at] for r in recs]
                for key, recs in sorted(self.coverage.items())
                if recs
            },
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        coverage = {
            str(key): [Record(BEGIN if s is None else int(s), int(e), int(f)) for s, e, f in recs]
            for key, recs in (doc.get("coverage") or {}).items()
        }
        return cls(
            version=str(doc.get("version")),
            metadata=dict(doc.get("metadata") or {}),
            base_url=str(doc.get("base_url") or ""),
            coverage=coverage,
        )

    # -- reading -------------------------------------------------------------------------

    def records(self, event_type: str) -> list[Record]:
        """The records behind one type: its own, and the all-types ones it does not shadow."""
        own = self.coverage.get(event_type, []) if event_type != ALL_TYPES else []
        shadow = [(r.start, r.end) for r in own]
        out = list(own)
        for rec in self.coverage.get(ALL_TYPES, []):
            out += [
                Record(s, e, rec.fetched_at) for s, e in subtract([(rec.start, rec.end)], shadow)
            ]
        return sorted(out, key=lambda r: r.start)

    def covered(self, events: Sequence[str] | None, settle_ms: int | None) -> list[Interval]:
        """Intervals held for every type of ``events`` (final ones only unless ``settle_ms`` is
        None, which counts everything held).
        """
        keys = [ALL_TYPES] if events is None else list(events)
        result: list[Interval] | None = None
        for key in keys:
            recs = self.records(key)
            held = union(
                (r.start, r.end) if settle_ms is None else r.final_part(settle_ms) for r in recs
            )
            result = held if result is None else intersect(result, held)
        return result or []

    def oldest_fetch(self, events: Sequence[str] | None, window: Interval) -> int | None:
        """The oldest fetch time of the records behind ``window`` for ``events``."""
        keys = [ALL_TYPES] if events is None else list(events)
        times = [
            r.fetched_at
            for key in keys
            for r in self.records(key)
            if intersect([(r.start, r.end)], [window])
        ]
        return min(times) if times else None

    # -- writing -------------------------------------------------------------------------

    def record(self, events: Sequence[str] | None, interval: Interval, fetched_at: int) -> None:
        """Note that ``interval`` was fetched for ``events`` (None: every type) at ``fetched_at``.

        Examples
        --------
        >>> m = Manifest("v1")
        >>> m.record(None, (0, 10), fetched_at=100)
        >>> m.record(["pageOpened"], (5, 20), fetched_at=200)
        >>> m.covered(["pageOpened"], settle_ms=0), m.covered(None, settle_ms=0)
        ([(0, 20)], [(0, 10)])
        """
        keys = list(self.coverage) if events is None else list(events)
        if events is None:
            keys.append(ALL_TYPES)
        for key in dict.fromkeys(keys):
            kept = [
                Record(s, e, r.fetched_at)
                for r in self.coverage.get(key, [])
                for s, e in subtract([(r.start, r.end)], [interval])
            ]
            self.coverage[key] = kept
        for key in [ALL_TYPES] if events is None else list(events):
            self.coverage[key] = _merge([*self.coverage[key], Record(*interval, fetched_at)])
        self.coverage = {k: v for k, v in self.coverage.items() if v}


def _merge(records: list[Record]) -> list[Record]:
    """Sort records and join neighbours fetched at the same moment (slices of one export)."""
    out: list[Record] = []
    for rec in sorted(records, key=lambda r: r.start):
        if out and out[-1].end == rec.start and out[-1].fetched_at == rec.fetched_at:
            out[-1] = Record(out[-1].start, rec.end, rec.fetched_at)
        else:
            out.append(rec)
    return out
