"""A brute-force funnel, written for clarity, not speed: the oracle the engine is tested against.

It follows ``docs/funnels.md`` sentence by sentence. For every entity it lists every attempt
(every chain of distinct rows matching steps 1..k, checked for order, window and strictness),
marks the void ones (an excluded row strictly inside), and reads the level, the counted attempt
and the reason straight off that list. No numpy tricks, no shared code with the engine beyond
the public ``Step`` class. ``benchmarks/funnel.py`` times it as the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pandas as pd

from croct_pandas.funnel import Step

REASONS = [
    "converted",
    "excluded",
    "window_still_open",
    "window_expired",
    "next_step_never_happened",
]
Z = 1.959963984540054  # two-sided 95%


def reference_funnel(
    df: pd.DataFrame,
    steps: Sequence[Any],
    *,
    within: Any = "7D",
    by: str = "userId",
    order: str = "ordered",
    exclude: Sequence[Any] | None = None,
    breakdown: str | None = None,
    breakdown_limit: int = 10,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, ledger)`` exactly as ``FunnelResult.table`` and ``.ledger`` should be."""
    steps = [_as_step(s) for s in steps]
    exclusions = [_as_step(s) for s in ([exclude] if isinstance(exclude, str) else exclude or [])]
    window = None if within is None else pd.Timedelta(within)

    stamps = df["timestamp"]
    if isinstance(stamps.dtype, pd.ArrowDtype):
        stamps = stamps.astype(f"datetime64[{stamps.dtype.pyarrow_dtype.unit}, UTC]")
    times = list(stamps)
    matches = [_matching_rows(df, step) for step in steps]
    excluded = set()
    for step in exclusions:
        excluded |= _matching_rows(df, step)
    croct = df.attrs.get("croct") or {}
    end = pd.Timestamp(croct["end"]) if croct.get("end") else stamps.max()

    entity_rows: dict[Any, list[int]] = {}
    for position, entity in enumerate(df[by]):
        if not pd.isna(entity) and not pd.isna(times[position]):
            entity_rows.setdefault(entity, []).append(position)

    records = []
    for entity, positions in entity_rows.items():
        # the (timestamp, row position) order the tie rules speak of
        rows = sorted(positions, key=lambda r: (times[r], r))
        if not any(r in matches[0] for r in rows):
            continue  # level 0: not in the ledger
        level, counted, reason = _entity(rows, times, matches, excluded, order, window, end)
        records.append(
            {
                "entity": entity,
                "first_seen": min(r for r in rows if r in matches[0]),
                "level": level,
                "times": [times[r] for r in counted] + [pd.NaT] * (len(steps) - level),
                "value": None if breakdown is None else df[breakdown].iloc[counted[0]],
                "reason": reason,
            }
        )

    table, label_dtype = _table(records, steps, order, df, breakdown, breakdown_limit)
    return table, _ledger(records, len(steps), df, stamps, by, breakdown, label_dtype)


def _entity(
    rows: list[int],
    times: list[pd.Timestamp],
    matches: list[set[int]],
    excluded: set[int],
    order: str,
    window: pd.Timedelta | None,
    end: pd.Timestamp,
) -> tuple[int, tuple[int, ...], str]:
    """One entity's level, counted attempt and reason, from the list of all its attempts."""
    n = len(matches)
    entity_times = [times[r] for r in rows]

    def valid(chain: tuple[int, ...]) -> bool:
        ts = [times[r] for r in chain]
        if order == "any":
            return window is None or max(ts) - min(ts) <= window
        if any(later < earlier for earlier, later in pairwise(ts)):
            return False
        if window is not None and ts[-1] - ts[0] > window:
            return False
        if order == "strict":
            for earlier, later in pairwise(ts):
                if any(earlier < t < later for t in entity_times):
                    return False
        return True

    def void(chain: tuple[int, ...]) -> bool:
        ts = [times[r] for r in chain]
        return any(min(ts) < times[x] < max(ts) for x in rows if x in excluded)

    attempts: list[tuple[int, ...]] = []

    def extend(chain: tuple[int, ...]) -> None:
        attempts.append(chain)
        if len(chain) == n:
            return
        for r in rows:
            if r not in chain and r in matches[len(chain)] and valid((*chain, r)):
                extend((*chain, r))

    for r in rows:
        if r in matches[0]:
            extend((r,))

    clean = [a for a in attempts if not void(a)]
    level = max(len(a) for a in clean)
    rank = {r: i for i, r in enumerate(rows)}
    at_level = [a for a in clean if len(a) == level]
    counted = min(at_level, key=lambda a: [rank[r] for r in a])

    def start(a: tuple[int, ...]) -> pd.Timestamp:
        return min(times[r] for r in a) if order == "any" else times[a[0]]

    def outside(a: tuple[int, ...], r: int) -> bool:
        """Row r (matching the next step) follows attempt a, outside its window."""
        if r in a:
            return False
        if order == "any":
            ts = [times[x] for x in (*a, r)]
            return max(ts) - min(ts) > window
        return times[r] >= times[a[-1]] and times[r] - times[a[0]] > window

    if level == n:
        reason = "converted"
    elif any(len(a) == level + 1 for a in attempts):
        reason = "excluded"
    elif window is not None and any(end - start(a) < window for a in at_level):
        reason = "window_still_open"
    elif window is not None and any(
        outside(a, r) for a in at_level for r in rows if r in matches[level]
    ):
        reason = "window_expired"
    else:
        reason = "next_step_never_happened"
    return level, counted, reason


def _as_step(spec: Any) -> Step:
    if isinstance(spec, Step):
        return spec
    if isinstance(spec, str):
        return Step(spec, spec)
    return Step(" | ".join(spec), list(spec))


def _matching_rows(df: pd.DataFrame, step: Step) -> set[int]:
    """Positions of the rows whose type is one of the step's and where ``where`` holds."""
    if step.where is None:
        allowed = [True] * len(df)
    elif isinstance(step.where, str):
        allowed = list(df.eval(step.where))
    elif isinstance(step.where, pd.Series):
        allowed = list(step.where.reindex(df.index))
    else:
        allowed = list(step.where(df))
    return {
        i
        for i, (kind, ok) in enumerate(zip(df["type"], allowed))
        if not pd.isna(kind) and kind in step.types and not pd.isna(ok) and bool(ok)
    }


def _ledger(
    records: list[dict[str, Any]],
    n: int,
    df: pd.DataFrame,
    stamps: pd.Series,
    by: str,
    breakdown: str | None,
    label_dtype: Any,
) -> pd.DataFrame:
    entities = pd.Index([r["entity"] for r in records], dtype=df[by].dtype, name=by)
    ledger = pd.DataFrame({"level": pd.array([r["level"] for r in records], dtype="int64")})
    ledger.index = entities
    for k in range(n):
        column = pd.Series([r["times"][k] for r in records], dtype=stamps.dtype)
        ledger[f"step_{k + 1}_at"] = column.array
    if breakdown is not None:
        ledger[breakdown] = pd.Series([r["label"] for r in records], dtype=label_dtype).array
    ledger["reason"] = pd.Categorical([r["reason"] for r in records], categories=REASONS)
    # entities in the order they first matched step 1 in the frame
    return ledger.iloc[sorted(range(len(records)), key=lambda i: records[i]["first_seen"])]


def _table(
    records: list[dict[str, Any]],
    steps: list[Step],
    order: str,
    df: pd.DataFrame,
    breakdown: str | None,
    limit: int,
) -> tuple[pd.DataFrame, Any]:
    """The table, and the dtype group labels take (the column's own, or text once folded)."""
    n = len(steps)
    if breakdown is None:
        groups: list[Any] = [None]
        for r in records:
            r["group"] = None
        label_dtype: Any = None
    else:
        dtype = df[breakdown].dtype
        counts: dict[Any, int] = {}
        for r in records:
            key = _key(r["value"])
            counts[key] = counts.get(key, 0) + 1
        if isinstance(dtype, pd.CategoricalDtype):
            categories = list(dtype.categories)

            def by_value(key: Any) -> Any:
                return (key is _NULL, categories.index(key) if key is not _NULL else 0)
        else:

            def by_value(key: Any) -> Any:
                return (key is _NULL, key if key is not _NULL else 0)

        ranked = sorted(counts, key=lambda key: (-counts[key], by_value(key)))
        kept, folded = ranked[:limit], len(ranked) > limit
        label_dtype = pd.StringDtype("pyarrow") if folded else dtype
        for r in records:
            key = _key(r["value"])
            if not folded:
                r["label"] = r["value"]
            elif key in kept:
                r["label"] = None if key is _NULL else str(key)
            else:
                r["label"] = "other"
            r["group"] = key if key in kept else "\0other"
        groups = kept + (["\0other"] if folded else [])

    table_rows = []
    for group in groups:
        members = [r for r in records if r["group"] == group]
        reached = [sum(1 for r in members if r["level"] >= k) for k in range(1, n + 1)]
        for k in range(1, n + 1):
            x, total = reached[k - 1], reached[0]
            previous = reached[k - 2] if k > 1 else reached[0]
            low, high = _wilson(x, total)
            gaps = (
                [r["times"][k - 1] - r["times"][k - 2] for r in members if r["level"] >= k]
                if k > 1 and order != "any"
                else []
            )
            row = {
                "step": k,
                "name": steps[k - 1].name,
                "entities": x,
                "conversion": x / total if total else math.nan,
                "conversion_low": low,
                "conversion_high": high,
                "step_conversion": x / previous if previous else math.nan,
                "drop_off": previous - x,
                "median_time": pd.Series(gaps, dtype="timedelta64[ns]").median(),
            }
            if breakdown is not None:
                label = members[0]["label"] if members else None
                row = {breakdown: label, **row}
            table_rows.append(row)
    columns = [
        "step",
        "name",
        "entities",
        "conversion",
        "conversion_low",
        "conversion_high",
        "step_conversion",
        "drop_off",
        "median_time",
    ]
    if breakdown is not None:
        columns.insert(0, breakdown)
    table = pd.DataFrame(table_rows, columns=columns)
    table["step"] = table["step"].astype("int64")
    table["name"] = table["name"].astype(pd.StringDtype("pyarrow"))
    table["entities"] = table["entities"].astype("int64")
    table["drop_off"] = table["drop_off"].astype("int64")
    for column in ("conversion", "conversion_low", "conversion_high", "step_conversion"):
        table[column] = table[column].astype("float64")
    table["median_time"] = pd.Series([r["median_time"] for r in table_rows], dtype="m8[ns]")
    if breakdown is not None:
        table[breakdown] = pd.Series(list(table[breakdown]), dtype=label_dtype)
    return table, label_dtype


class _Null:
    def __repr__(self) -> str:
        return "<null>"


_NULL = _Null()


def _key(value: Any) -> Any:
    """Group key: nulls of every kind are one group."""
    return _NULL if pd.isna(value) else value


def _wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson score interval in its textbook form: (x + z²/2 ± z√(x(n−x)/n + z²/4)) / (n + z²)."""
    if n == 0:
        return math.nan, math.nan
    spread = Z * math.sqrt(x * (n - x) / n + Z**2 / 4)
    low = (x + Z**2 / 2 - spread) / (n + Z**2)
    high = (x + Z**2 / 2 + spread) / (n + Z**2)
    return max(low, 0.0), min(high, 1.0)
