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
from croct_pandas.funnel_table import build_table, fold

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FunnelResult"]

STATUSES = ("reached", "converted", "dropped")


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
        """Shape an engine outcome into the ledger and the table."""
        columns: dict[str, Any] = {"level": outcome.level}
        for k in range(len(steps)):
            columns[f"step_{k + 1}_at"] = _datetimes(outcome.times[:, k], outcome.unit, outcome.tz)
        groups, member = None, None
        if breakdown is not None:
            values = frame[breakdown].take(outcome.first_row).reset_index(drop=True)
            labels, member, groups = fold(values, breakdown_limit)
            columns[breakdown] = labels.array
        columns["reason"] = pd.Categorical.from_codes(outcome.reason.astype(np.int64), REASONS)
        ledger = pd.DataFrame(columns, index=outcome.entities.rename(by))
        table = build_table(
            outcome.level,
            outcome.times,
            outcome.unit,
            steps,
            order,
            groups=groups,
            member=member,
            breakdown=breakdown,
        )
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
        """A bar chart of entities per step; see :func:`croct_pandas.plotting.plot_funnel`.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import croct_pandas, pandas as pd
        >>> df = pd.DataFrame({"type": ["pageOpened", "orderPlaced"], "userId": ["a", "a"],
        ...                    "timestamp": pd.to_datetime([0, 1000], unit="ms", utc=True)})
        >>> ax = df.croct.funnel(["pageOpened", "orderPlaced"]).plot()
        """
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
        >>> daily = df.croct.funnel(["pageOpened", "orderPlaced"]).conversion_over_time("D")
        >>> [str(p) for p in daily.index], daily.columns.tolist(), daily["conversion"].tolist()
        (['1970-01-01'], ['step_1', 'step_2', 'conversion'], [1.0])
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
        from croct_pandas.plotting_text import duration_text  # pandas and numpy only at import

        window = "unbounded" if self.within is None else duration_text(self.within)
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


def _datetimes(ticks: np.ndarray, unit: str, tz: Any) -> Any:
    """Ticks as a datetime array of the frame's unit and zone (NAT ticks are NaT)."""
    naive = ticks.view(f"datetime64[{unit}]")
    if tz is None:
        return naive
    return pd.array(naive, dtype=pd.DatetimeTZDtype(unit, "UTC")).tz_convert(tz)
