"""``FunnelResult``: the table, the per-entity ledger, and the views built on them.

Everything here is derived from the ledger (one row per entity with its counted attempt's step
times), so the table, timings, conversion over time and drill-downs always agree.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from croct_pandas.funnel_engine import REASONS, Outcome

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FunnelResult", "wilson"]

#: The 97.5% quantile of the standard normal: a two-sided 95% interval.
Z = 1.959963984540054
STRING = pd.StringDtype("pyarrow")
STATUSES = ("reached", "converted", "dropped")


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


class FunnelResult:
    """What :func:`croct_pandas.funnel.funnel` returns: ``.table`` and ``.ledger`` plus views.

    Attributes ``steps`` (step names), ``within`` (Timedelta or None), ``by``, ``order``,
    ``exclude`` (names) and ``breakdown`` (column or None) record the call.

    Examples
    --------
    >>> import croct_pandas, pandas as pd
    >>> df = pd.DataFrame({"type": ["pageOpened", "orderPlaced"], "userId": ["a", "a"],
    ...                    "timestamp": pd.to_datetime([0, 1000], unit="ms", utc=True)})
    >>> result = df.croct.funnel(["pageOpened", "orderPlaced"])
    >>> result.entities(2, "reached").tolist()
    ['a']
    """

    def __init__(
        self,
        table: pd.DataFrame,
        ledger: pd.DataFrame,
        *,
        steps: tuple[str, ...],
        within: pd.Timedelta | None,
        by: str,
        order: str,
        exclude: tuple[str, ...] = (),
        breakdown: str | None = None,
    ) -> None:
        self.table, self.ledger = table, ledger
        self.steps, self.within, self.by, self.order = steps, within, by, order
        self.exclude, self.breakdown = exclude, breakdown

    @classmethod
    def from_outcome(
        cls,
        outcome: Outcome,
        frame: pd.DataFrame,
        *,
        steps: tuple[str, ...],
        within: pd.Timedelta | None,
        by: str,
        order: str,
        exclude: tuple[str, ...],
        breakdown: str | None,
        breakdown_limit: int,
    ) -> FunnelResult:
        """Shape an engine outcome: ledger first, then the table from the ledger."""
        n = len(steps)
        ledger = pd.DataFrame({"level": outcome.level}, index=outcome.entities.rename(by))
        for k in range(n):
            at = _datetimes(outcome.times[:, k], outcome.unit, outcome.tz)
            ledger[f"step_{k + 1}_at"] = at.array
        groups, member = None, None
        if breakdown is not None:
            values = frame[breakdown].take(outcome.first_row).reset_index(drop=True)
            labels, member, groups = fold(values, breakdown_limit)
            ledger[breakdown] = labels.array
        ledger["reason"] = pd.Categorical.from_codes(outcome.reason.astype(np.int64), REASONS)
        table = build_table(ledger, steps, order, groups=groups, member=member, breakdown=breakdown)
        return cls(
            table,
            ledger,
            steps=steps,
            within=within,
            by=by,
            order=order,
            exclude=exclude,
            breakdown=breakdown,
        )

    # -- views ------------------------------------------------------------------------

    def plot(self, ax: Axes | None = None) -> Axes:
        """A bar chart of entities per step; see :func:`croct_pandas.plotting.plot_funnel`."""
        from croct_pandas.plotting import plot_funnel

        return plot_funnel(self, ax=ax)

    def time_to_convert(self, from_step: int = 1, to_step: int = -1) -> pd.Series:
        """Time from ``from_step`` to ``to_step`` per entity that reached ``to_step``.

        Examples
        --------
        >>> import croct_pandas, pandas as pd
        >>> df = pd.DataFrame({"type": ["pageOpened", "orderPlaced"], "userId": ["a", "a"],
        ...                    "timestamp": pd.to_datetime([0, 1000], unit="ms", utc=True)})
        >>> df.croct.funnel(["pageOpened", "orderPlaced"]).time_to_convert().tolist()
        [Timedelta('0 days 00:00:01')]
        """
        first, last = self._step(from_step, "from_step"), self._step(to_step, "to_step")
        if first >= last:
            raise ValueError(f"from_step must come before to_step; got {from_step}, {to_step}")
        reached = self.ledger[self.ledger["level"] >= last]
        delta = reached[f"step_{last}_at"] - reached[f"step_{first}_at"]
        return delta.rename("time_to_convert")

    def conversion_over_time(self, freq: str = "W") -> pd.DataFrame:
        """Entities per step by the UTC period of their counted attempt's start.

        Columns ``step_1`` … ``step_n`` and ``conversion`` (``step_n / step_1``); every period
        from the first to the last is present.

        Examples
        --------
        >>> import croct_pandas, pandas as pd
        >>> df = pd.DataFrame({"type": ["pageOpened", "orderPlaced"], "userId": ["a", "a"],
        ...                    "timestamp": pd.to_datetime([0, 1000], unit="ms", utc=True)})
        >>> df.croct.funnel(["pageOpened", "orderPlaced"]).conversion_over_time("D")
                    step_1  step_2  conversion
        period
        1970-01-01       1       1         1.0
        """
        n = len(self.steps)
        at = self.ledger[[f"step_{k}_at" for k in range(1, n + 1)]]
        start = at.min(axis=1) if self.order == "any" else at["step_1_at"]
        if isinstance(start.dtype, pd.DatetimeTZDtype):
            start = start.dt.tz_convert("UTC").dt.tz_localize(None)
        try:
            periods = start.dt.to_period(freq)
            empty = pd.PeriodIndex([], freq=freq, name="period")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"freq must be a pandas period frequency such as 'W': {exc}") from exc
        level = self.ledger["level"].to_numpy()
        reached = {f"step_{k}": level >= k for k in range(1, n + 1)}
        out = pd.DataFrame(reached, index=pd.PeriodIndex(periods)).groupby(level=0).sum()
        index = empty if out.empty else pd.period_range(out.index.min(), out.index.max(), freq=freq)
        out = out.reindex(index, fill_value=0).astype(np.int64)
        out.index.name = "period"
        with np.errstate(divide="ignore", invalid="ignore"):
            out["conversion"] = out[f"step_{n}"] / out["step_1"].where(out["step_1"] > 0)
        return out

    def entities(self, step: int, status: str = "reached") -> pd.Index:
        """The entities that ``reached`` a step, ``converted`` from it, or ``dropped`` at it.

        Examples
        --------
        >>> import croct_pandas, pandas as pd
        >>> df = pd.DataFrame({"type": ["pageOpened", "pageOpened"], "userId": ["a", "b"],
        ...                    "timestamp": pd.to_datetime([0, 1000], unit="ms", utc=True)})
        >>> df.croct.funnel(["pageOpened", "orderPlaced"]).entities(1, "dropped").tolist()
        ['a', 'b']
        """
        k, n = self._step(step, "step"), len(self.steps)
        level = self.ledger["level"]
        if status == "reached":
            mask = level >= k
        elif status == "converted":
            mask = level >= k + 1 if k < n else level == n
        elif status == "dropped":
            mask = (level == k) & (k < n)
        else:
            raise ValueError(
                f"status must be one of {', '.join(map(repr, STATUSES))}; got {status!r}"
            )
        return self.ledger.index[mask.to_numpy()]

    def _step(self, step: object, param: str) -> int:
        n = len(self.steps)
        if (
            isinstance(step, bool)
            or not isinstance(step, (int, np.integer))
            or not (1 <= step <= n or -n <= step <= -1)
        ):
            raise ValueError(
                f"{param} must be a step number 1..{n} (or -1 for the last); got {step!r}"
            )
        return int(step) if step > 0 else n + 1 + int(step)

    # -- display ----------------------------------------------------------------------

    def _header(self) -> str:
        window = "unbounded" if self.within is None else str(self.within)
        extra = f", breakdown {self.breakdown}" if self.breakdown else ""
        extra += f", excluding {', '.join(self.exclude)}" if self.exclude else ""
        return (
            f"{' → '.join(self.steps)} · within {window} · by {self.by} · {self.order}{extra} · "
            f"{len(self.ledger):,} entities"
        )

    def __repr__(self) -> str:
        return f"FunnelResult: {self._header()}\n{self.table.to_string(index=False)}"

    def _repr_html_(self) -> str:
        head = html.escape(self._header())
        return f"<p><b>Funnel</b>: {head}</p>\n{self.table.to_html(index=False)}"


def _datetimes(ticks: np.ndarray, unit: str, tz: Any) -> pd.Series:
    naive = pd.Series(ticks.view(f"datetime64[{unit}]"))
    return naive.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else naive


def fold(values: pd.Series, limit: int) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """Each entity's group label, its group number, and the groups' labels in table order.

    Groups rank by entities (descending), then value (ascending, null last); past ``limit``
    they fold into ``"other"`` and labels become text.
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
    position = np.full(len(uniques) + 1, min(limit, len(ranked)), dtype=np.int64)
    position[ranked[:limit]] = np.arange(min(limit, len(ranked)))
    member = position[codes]
    if len(ranked) <= limit:
        return values, member, values.take(first[ranked]).reset_index(drop=True)
    text = values.astype(STRING)
    kept = text.take(first[ranked[:limit]]).reset_index(drop=True)
    labels = text.where(member < limit, "other")
    return labels, member, pd.concat([kept, pd.Series(["other"], dtype=STRING)], ignore_index=True)


def build_table(
    ledger: pd.DataFrame,
    steps: tuple[str, ...],
    order: str,
    *,
    groups: pd.Series | None = None,
    member: np.ndarray | None = None,
    breakdown: str | None = None,
) -> pd.DataFrame:
    """One row per step (per group with a breakdown), as ``docs/funnels.md`` lists."""
    n = len(steps)
    level = ledger["level"].to_numpy()
    at = [ledger[f"step_{k}_at"] for k in range(1, n + 1)]
    n_groups = 1 if groups is None else len(groups)
    member = np.zeros(len(level), dtype=np.int64) if member is None else member
    rows: dict[str, list[Any]] = {c: [] for c in ("step", "name", "entities", "median_time")}
    for g in range(n_groups):
        in_group = member == g
        for k in range(1, n + 1):
            reached = in_group & (level >= k)
            rows["step"].append(k)
            rows["name"].append(steps[k - 1])
            rows["entities"].append(int(reached.sum()))
            median = pd.NaT
            if k > 1 and order != "any":
                gaps = (at[k - 1] - at[k - 2])[reached].astype("timedelta64[ns]")
                median = gaps.median()
            rows["median_time"].append(median)
    entities = np.array(rows["entities"], dtype=np.int64).reshape(n_groups, n)
    first = np.repeat(entities[:, :1], n, axis=1)
    previous = np.concatenate([entities[:, :1], entities[:, :-1]], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        conversion = np.where(first > 0, entities / first, np.nan)
        step_conversion = np.where(previous > 0, entities / previous, np.nan)
    low, high = wilson(entities, first)
    table = pd.DataFrame(
        {
            "step": np.array(rows["step"], dtype=np.int64),
            "name": pd.array(rows["name"], dtype=STRING),
            "entities": entities.ravel(),
            "conversion": conversion.ravel(),
            "conversion_low": low.ravel(),
            "conversion_high": high.ravel(),
            "step_conversion": step_conversion.ravel(),
            "drop_off": (previous - entities).ravel(),
            "median_time": pd.Series(rows["median_time"], dtype="timedelta64[ns]"),
        }
    )
    if groups is not None and breakdown is not None:
        column = groups.take(np.repeat(np.arange(n_groups), n)).reset_index(drop=True)
        table.insert(0, breakdown, column)
    return table
