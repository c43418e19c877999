"""The engine against the brute-force oracle, on random small frames full of corners.

Frames of a few entities and a handful of minutes give ties everywhere; steps repeat, share
rows (lists, ``Step`` with ``where``), windows run from 0 to unbounded, and every order,
exclusion and breakdown is drawn. Both engine paths are checked: the automatic choice (greedy
chains where they apply) and the general per-entity path forced on every case.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from funnel_reference import reference_funnel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import croct_pandas.funnel as funnel_module
from croct_pandas.funnel import Step, funnel
from croct_pandas.funnel_engine import compute

TYPES = ["pageOpened", "productViewed", "orderPlaced"]
NOISE = ["nothingChanged", "cartAbandoned"]  # cartAbandoned doubles as the exclusion
ENTITIES = ["u1", "u1", "u2", "u2", "u3", None]
GROUPS = ["x", "y", "z", None]


@st.composite
def frames(
    draw: st.DrawFn, kinds: tuple[str, ...] = (*TYPES, *TYPES, *NOISE), span: int = 7
) -> pd.DataFrame:
    """Up to 24 rows over ``span + 1`` minutes (8: ties everywhere; 300: hardly any)."""
    size = draw(st.integers(0, 24))
    row = st.tuples(
        st.sampled_from(ENTITIES),
        st.sampled_from(kinds),
        st.integers(0, span),
        st.booleans(),
        st.sampled_from(GROUPS),
    )
    rows = draw(st.lists(row, min_size=size, max_size=size))
    entity, kind, minute, flag, group = (list(c) for c in zip(*rows)) if rows else ([],) * 5
    df = pd.DataFrame(
        {
            "type": pd.Categorical(kind, categories=sorted(TYPES + NOISE)),
            "timestamp": pd.Series(np.array(minute, dtype=np.int64) * 60_000, dtype="int64")
            .astype("datetime64[ms]")
            .dt.tz_localize("UTC"),
            "userId": pd.array(entity, dtype="string[pyarrow]"),
            "flag": pd.array(flag, dtype="boolean"),
            "grp": pd.array(group, dtype="string[pyarrow]"),
        }
    )
    if draw(st.booleans()):
        end = pd.Timestamp(0, tz="UTC") + pd.Timedelta(minutes=draw(st.integers(1, 13)) + span)
        df.attrs["croct"] = {"end": end.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    return df


WINDOWS = st.one_of(st.none(), st.integers(0, 6), st.sampled_from([15, 40, 120]))


@st.composite
def step_specs(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["name", "name", "name", "list", "where", "where_series"]))
    if kind == "name":
        return draw(st.sampled_from(TYPES))
    if kind == "list":
        return draw(st.lists(st.sampled_from(TYPES), min_size=2, max_size=3, unique=True))
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))
    if kind == "where":
        return Step("flagged", types, where=draw(st.sampled_from(["flag", "~flag"])))
    return Step("flagged", types, where=lambda d: d["flag"].fillna(False))


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    minutes = draw(WINDOWS)
    call: dict[str, Any] = {
        "steps": draw(st.lists(step_specs(), min_size=2, max_size=4)),
        "within": None if minutes is None else pd.Timedelta(minutes=minutes),
        "order": draw(st.sampled_from(["ordered", "ordered", "strict", "any"])),
    }
    if draw(st.booleans()):
        call["exclude"] = ["cartAbandoned"]
    if draw(st.booleans()):
        call["breakdown"] = "grp"
        call["breakdown_limit"] = draw(st.integers(1, 4))
    return call


def _check(df: pd.DataFrame, call: dict[str, Any], path: str) -> None:
    table, ledger = reference_funnel(df, **call)
    engine = partial(compute, path=path)
    with mock.patch.object(funnel_module, "compute", engine):
        result = funnel(df, **call)
    pd.testing.assert_frame_equal(result.ledger, ledger)
    pd.testing.assert_frame_equal(result.table, table)


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("path", ["auto", "general"])
@SETTINGS
@given(df=frames(), call=calls())
def test_engine_matches_the_oracle(path: str, df: pd.DataFrame, call: dict[str, Any]) -> None:
    _check(df, call, path)


@st.composite
def single_type_calls(draw: st.DrawFn) -> dict[str, Any]:
    """Ordered funnels of plain names (repeats allowed): the greedy path's own ground."""
    minutes = draw(WINDOWS)
    call: dict[str, Any] = {
        "steps": draw(st.lists(st.sampled_from(TYPES), min_size=2, max_size=4)),
        "within": None if minutes is None else pd.Timedelta(minutes=minutes),
    }
    if draw(st.booleans()):
        call["exclude"] = "cartAbandoned"
    return call


@SETTINGS
@given(df=frames(), call=single_type_calls())
def test_greedy_chains_match_the_oracle(df: pd.DataFrame, call: dict[str, Any]) -> None:
    _check(df, call, "auto")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    df=frames(kinds=(*TYPES, "cartAbandoned", "cartAbandoned")),
    call=calls(),
    path=st.sampled_from(["auto", "general"]),
)
def test_exclusions_match_the_oracle(df: pd.DataFrame, call: dict[str, Any], path: str) -> None:
    """Frames thick with excluded rows: voided attempts, later clean ones, ``excluded``."""
    _check(df, {**call, "exclude": ["cartAbandoned"]}, path)


@SETTINGS
@given(
    df=frames(span=300),
    call=calls(),
    order=st.sampled_from(["ordered", "strict", "any"]),
)
def test_untied_chains_match_the_oracle(df: pd.DataFrame, call: dict[str, Any], order: str) -> None:
    """Timestamps rarely shared: subsequence and forced strict chains, steps sharing rows."""
    _check(df, {**call, "order": order}, "auto")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames(kinds=(*TYPES, *TYPES, "cartAbandoned"), span=40), call=single_type_calls())
def test_any_order_matches_the_oracle(df: pd.DataFrame, call: dict[str, Any]) -> None:
    """``any`` funnels of names (the vectorised windows): rows of the next step on both sides
    of an attempt, void attempts, repeated steps."""
    _check(df, {**call, "order": "any", "exclude": ["cartAbandoned"]}, "auto")
