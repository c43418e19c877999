"""The funnel table: counts, conversions with Wilson intervals, median step times, groups.

Computed from the engine's per-entity arrays with numpy; ``docs/funnels.md`` fixes every
column. Breakdown groups rank by step-1 entities, then by value, and fold past the limit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from croct_pandas.funnel_engine import NAT

__all__ = ["build_table", "fold", "wilson"]

#: The 97.5% quantile of the standard normal: a two-sided 95% interval.
Z = 1.959963984540054
STRING = pd.StringDtype("pyarrow")
_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def wilson(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 95% Wilson score interval of ``successes / trials`` (NaN where ``trials`` is 0).

    Examples
    --------
    >>> low, high = wilson(np.array([5]), np.array([10]))
    >>> round(float(low[0]), 4), round(float(high[0]), 4)
    (0.2366, 0.7634)
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denom = 1 + Z**2 / n
        centre = (p + Z**2 / (2 * n)) / denom
        half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def fold(values: pd.Series, limit: int) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """Each entity's group label, its group number, and the groups' labels in table order.

    Groups rank by entities (descending), then value (ascending, null last); past ``limit``
    they fold into ``"other"`` and labels become text (null stays null).

    Examples
    --------
    >>> labels, member, groups = fold(pd.Series(["b", "a", "b", None]), 2)
    >>> labels.tolist(), member.tolist(), groups.tolist()
    (['b', 'a', 'b', 'other'], [0, 1, 0, 2], ['b', 'a', 'other'])
    """
    codes, uniques = pd.factorize(values)
    codes = np.where(codes < 0, len(uniques), codes)
    counts = np.bincount(codes, minlength=len(uniques) + 1)
    try:
        order = np.asarray(uniques.argsort())
    except TypeError:  # values of mixed kinds: rank them as text
        order = np.argsort(np.asarray(uniques.astype(str)), kind="stable")
    by_value = np.empty(len(uniques) + 1, dtype=np.int64)
    by_value[order] = np.arange(len(uniques))
    by_value[-1] = len(uniques)
    present = np.flatnonzero(counts)
    ranked = present[np.lexsort((by_value[present], -counts[present]))]
    first = np.zeros(len(uniques) + 1, dtype=np.int64)
    seen, at = np.unique(codes, return_index=True)
    first[seen] = at  # the first entity of each group carries its label
    kept = min(limit, len(ranked))
    position = np.full(len(uniques) + 1, kept, dtype=np.int64)
    position[ranked[:kept]] = np.arange(kept)
    member = position[codes]
    if len(ranked) <= limit:
        return values, member, values.take(first[ranked]).reset_index(drop=True)
    text = values.astype(STRING)
    labels = text.where(member < limit, "other")
    groups = text.take(first[ranked[:limit]]).reset_index(drop=True)
    return (
        labels,
        member,
        pd.concat([groups, pd.Series(["other"], dtype=STRING)], ignore_index=True),
    )


def build_table(
    level: np.ndarray,
    times: np.ndarray,
    unit: str,
    steps: tuple[str, ...],
    order: str,
    *,
    groups: pd.Series | None = None,
    member: np.ndarray | None = None,
    breakdown: str | None = None,
) -> pd.DataFrame:
    """One row per step (per group with a breakdown), as ``docs/funnels.md`` lists.

    ``times`` are the counted attempts' step times in ``unit`` ticks (``NAT`` past the level).
    """
    n = len(steps)
    n_groups = 1 if groups is None else len(groups)
    member = np.zeros(len(level), dtype=np.int64) if member is None else member
    entities = np.zeros((n_groups, n), dtype=np.int64)
    median = np.full((n_groups, n), NAT, dtype=np.int64)
    for g in range(n_groups):
        in_group = member == g
        for k in range(n):
            reached = in_group & (level > k)
            entities[g, k] = reached.sum()
            if k and order != "any" and entities[g, k]:
                gaps = (times[reached, k] - times[reached, k - 1]) * _NS_PER[unit]
                # pandas' median of a timedelta64[ns] column: float median, truncated to ns
                median[g, k] = int(np.median(gaps.astype(np.float64)))
    first = np.repeat(entities[:, :1], n, axis=1)
    previous = np.concatenate([entities[:, :1], entities[:, :-1]], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        conversion = np.where(first > 0, entities / first, np.nan)
        step_conversion = np.where(previous > 0, entities / previous, np.nan)
    low, high = wilson(entities, first)
    table = pd.DataFrame(
        {
            "step": np.tile(np.arange(1, n + 1, dtype=np.int64), n_groups),
            "name": pd.array(list(steps) * n_groups, dtype=STRING),
            "entities": entities.ravel(),
            "conversion": conversion.ravel(),
            "conversion_low": low.ravel(),
            "conversion_high": high.ravel(),
            "step_conversion": step_conversion.ravel(),
            "drop_off": (previous - entities).ravel(),
            "median_time": median.ravel().view("timedelta64[ns]"),
        }
    )
    if groups is not None and breakdown is not None:
        column = groups.take(np.repeat(np.arange(n_groups), n)).reset_index(drop=True)
        table.insert(0, breakdown, column)
    return table
