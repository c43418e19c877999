"""Funnels: ``funnel(df, steps, ...)`` counts exactly as ``docs/funnels.md`` defines.

This module checks the call and turns steps into row masks; :mod:`croct_pandas.funnel_engine`
counts (numpy kernels, with :mod:`croct_pandas.funnel_general` for the cases greedy cannot
settle) and :mod:`croct_pandas.funnel_result` shapes the answer. Pure computation: no I/O, no
drawing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from croct_pandas.funnel_engine import compute, type_codes
from croct_pandas.funnel_result import FunnelResult
from croct_pandas.schema import EVENT_TYPES

__all__ = ["FunnelResult", "Step", "StepSpec", "funnel"]

ORDERS = ("ordered", "strict", "any")

#: What ``where`` accepts: a boolean Series aligned with the frame, a callable frame -> mask, or
#: a ``DataFrame.query`` string.
Where: TypeAlias = pd.Series | Callable[[pd.DataFrame], Any] | str


class Step:
    """A named funnel step: rows whose ``type`` is one of ``types``, narrowed by ``where``.

    Parameters
    ----------
    name : str
        The label the result shows for this step.
    types : str or list of str
        The event type(s) the step matches.
    where : pandas.Series, callable or str, optional
        A boolean Series aligned with the frame, a callable ``frame -> mask`` or a
        ``DataFrame.query`` string; only rows where it holds match.

    Examples
    --------
    >>> Step("big order", "orderPlaced", where="`payload.order.total` > 100")
    Step('big order', ['orderPlaced'], where='`payload.order.total` > 100')
    """

    __slots__ = ("name", "types", "where")

    def __init__(self, name: str, types: str | Sequence[str], *, where: Where | None = None):
        if not isinstance(name, str) or not name:
            raise TypeError(f"Step: name must be a non-empty string, got {name!r}")
        self.name = name
        self.types: tuple[str, ...] = _type_names(types, "Step types")
        if where is not None and not (isinstance(where, (str, pd.Series)) or callable(where)):
            raise TypeError(
                "Step: where must be a boolean Series, a callable frame -> mask or a query "
                f"string, got {type(where).__name__}"
            )
        self.where = where

    def __repr__(self) -> str:
        where = "" if self.where is None else f", where={_short(self.where)}"
        return f"Step({self.name!r}, {list(self.types)!r}{where})"


#: A funnel step as the call accepts it: a type name, a list of names, or a :class:`Step`.
StepSpec: TypeAlias = str | list[str] | Step


def funnel(
    df: pd.DataFrame,
    steps: Sequence[StepSpec],
    *,
    within: str | pd.Timedelta | timedelta | None = "7D",
    by: str = "userId",
    order: str = "ordered",
    exclude: Iterable[StepSpec] | StepSpec | None = None,
    breakdown: str | None = None,
    breakdown_limit: int = 10,
) -> FunnelResult:
    """Count how many entities reach each step of a funnel.

    Parameters
    ----------
    df : pandas.DataFrame
        An event frame with ``type``, ``timestamp`` and the ``by`` column.
    steps : list of str, list of str lists or :class:`Step`
        Two or more steps, in order.
    within : str, Timedelta or None, default "7D"
        The conversion window from step 1 (inclusive); None means unbounded.
    by : str, default "userId"
        The entity column; rows whose entity is null are left out.
    order : {"ordered", "strict", "any"}, default "ordered"
        How steps must follow each other (``docs/funnels.md``).
    exclude : list of step specs, optional
        Types (or steps) that void an attempt when they fall strictly inside it.
    breakdown : str, optional
        A column; each entity belongs to the group of its value on step 1 of its counted attempt.
    breakdown_limit : int, default 10
        Groups kept (by step-1 entities); the rest fold into ``"other"``.

    Returns
    -------
    FunnelResult

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({
    ...     "type": ["productViewed", "orderPlaced", "productViewed"],
    ...     "timestamp": pd.to_datetime([0, 60_000, 0], unit="ms", utc=True),
    ...     "userId": ["a", "a", "b"],
    ... })
    >>> funnel(df, ["productViewed", "orderPlaced"]).table[["step", "entities", "conversion"]]
       step  entities  conversion
    0     1         2         1.0
    1     2         1         0.5
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(by, str):
        raise TypeError(f"by must be the name of one column (a str), got {by!r}")
    if breakdown is not None and not isinstance(breakdown, str):
        raise TypeError(
            f"breakdown must be the name of one column (a str) or None, got {breakdown!r}"
        )
    for column, param in (("type", "df"), ("timestamp", "df"), (by, "by")):
        if column not in df.columns:
            raise ValueError(f"{param}: the frame has no column {column!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(map(repr, ORDERS))}; got {order!r}")
    window = _window(within)
    if breakdown is not None and breakdown not in df.columns:
        raise ValueError(f"breakdown: the frame has no column {breakdown!r}")
    if isinstance(breakdown_limit, bool) or not isinstance(breakdown_limit, (int, np.integer)):
        raise TypeError(f"breakdown_limit must be a positive integer, got {breakdown_limit!r}")
    if breakdown_limit < 1:
        raise ValueError(f"breakdown_limit must be a positive integer, got {breakdown_limit!r}")
    if isinstance(steps, (str, Step)) or not isinstance(steps, Sequence) or len(steps) < 2:
        raise ValueError("steps must be a list of two or more steps (names, lists or Step)")

    codes, uniques = type_codes(df["type"])
    known = set(EVENT_TYPES) | {u for u in uniques if isinstance(u, str)}
    specs = [_spec(s, "steps") for s in steps]
    masks = [_mask(df, spec, codes, uniques, known, "steps") for spec in specs]
    excl_mask = None
    excluded: list[str] = []
    if exclude is not None:
        if isinstance(exclude, (str, Step)):
            exclude = [exclude]
        if not isinstance(exclude, Iterable):
            raise TypeError(
                f"exclude must be an event type, a Step or a list of them, got {exclude!r}"
            )
        step_types = {t for spec in specs for t in spec.types}
        excl_specs = [_spec(e, "exclude") for e in exclude]
        excl_mask = np.zeros(len(df), dtype=bool)
        for spec in excl_specs:
            clash = sorted(set(spec.types) & step_types)
            if clash:
                raise ValueError(
                    f"exclude: {clash[0]!r} is a step of the funnel; exclusions must be other types"
                )
            excl_mask |= _mask(df, spec, codes, uniques, known, "exclude")
            excluded.append(spec.name)

    outcome = compute(df, masks, excl_mask, by=by, order=order, window=window)
    return FunnelResult.from_outcome(
        outcome,
        df,
        steps=tuple(spec.name for spec in specs),
        within=window,
        by=by,
        order=order,
        exclude=tuple(excluded),
        breakdown=breakdown,
        breakdown_limit=int(breakdown_limit),
    )


def _type_names(types: object, param: str) -> tuple[str, ...]:
    if isinstance(types, str):
        return (types,)
    if isinstance(types, (list, tuple)) and types and all(isinstance(t, str) for t in types):
        return tuple(dict.fromkeys(types))
    raise TypeError(
        f"{param} must be an event type name or a non-empty list of names, got {types!r}"
    )


def _spec(spec: object, param: str) -> Step:
    """Every accepted spelling of a step, as a :class:`Step`."""
    if isinstance(spec, Step):
        return spec
    if isinstance(spec, str):
        return Step(spec, spec)
    if isinstance(spec, (list, tuple)):
        types = _type_names(spec, param)
        return Step(" | ".join(types), types)
    raise TypeError(
        f"{param}: a step is an event type name, a list of names or a Step, got {spec!r}"
    )


def _mask(
    df: pd.DataFrame,
    spec: Step,
    codes: np.ndarray,
    uniques: list[Any],
    known: set[str],
    param: str,
) -> np.ndarray:
    for name in spec.types:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{param}: unknown event type {name!r}{hint}")
    wanted = set(spec.types)
    # the extra False at the end is what a null type (code -1) looks up
    lookup = np.array([u in wanted for u in uniques] + [False], dtype=bool)
    mask = lookup[codes]
    if spec.where is not None:
        mask &= _where(df, spec, param)
    return mask


def _where(df: pd.DataFrame, spec: Step, param: str) -> np.ndarray:
    where = spec.where
    try:
        if isinstance(where, str):
            got = df.eval(where)
        elif isinstance(where, pd.Series):
            got = where
        else:
            assert callable(where)
            got = where(df)
    except Exception as exc:
        raise ValueError(f"{param}: the where of step {spec.name!r} failed: {exc}") from exc
    if isinstance(got, pd.Series) and not got.index.equals(df.index):
        got = got.reindex(df.index)
    values = got.to_numpy() if isinstance(got, pd.Series) else np.asarray(got)
    if values.shape != (len(df),) or not (
        pd.api.types.is_bool_dtype(getattr(got, "dtype", values.dtype))
        or (values.dtype == object and all(v is True or v is False or pd.isna(v) for v in values))
    ):
        raise ValueError(
            f"{param}: the where of step {spec.name!r} must give one boolean per row of the frame"
        )
    return np.asarray(pd.array(values, dtype="boolean").fillna(False), dtype=bool)


def is_bare_number(text: str) -> bool:
    """Whether ``text`` is a number without a unit, which pandas reads as nanoseconds.

    Examples
    --------
    >>> is_bare_number(" 3 "), is_bare_number("2.5"), is_bare_number("7D")
    (True, True, False)
    """
    return re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)\s*", text) is not None


def _window(within: object) -> pd.Timedelta | None:
    if within is None:
        return None
    if not isinstance(within, (str, timedelta, np.timedelta64)):
        raise TypeError(
            f"within must be a Timedelta, a string such as '7D' or None; got {within!r}"
        )
    if isinstance(within, str) and is_bare_number(within):
        # pandas reads a bare number as nanoseconds: never what a funnel window means
        raise ValueError(f"within needs a unit, such as '7D', '12h' or '30min'; got {within!r}")
    try:
        window = pd.Timedelta(within)
    except ValueError as exc:
        raise ValueError(
            f"within must be a Timedelta, a string such as '7D' or None; got {within!r}"
        ) from exc
    if pd.isna(window) or window < pd.Timedelta(0):
        raise ValueError(f"within must be a non-negative duration, got {within!r}")
    return window


def _short(where: object) -> str:
    if isinstance(where, str):
        return repr(where)
    if isinstance(where, pd.Series):
        return f"<Series of {len(where)}>"
    return getattr(where, "__name__", "<callable>")
