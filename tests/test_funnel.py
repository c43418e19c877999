"""Hand-made funnels, one per corner of ``docs/funnels.md``, with the numbers worked out.

Every frame starts at T0 = 2026-01-01 00:00 UTC (a Thursday); offsets are written next to
each row. Unless a test says otherwise the window is the default 7 days.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from funnel_reference import reference_funnel

import croct_pandas  # noqa: F401  (registers df.croct)
from croct_pandas.funnel import Step, funnel
from croct_pandas.funnel_result import FunnelResult
from croct_pandas.funnel_table import wilson

T0 = pd.Timestamp("2026-01-01", tz="UTC")
PV, CS, OP = "productViewed", "checkoutStarted", "orderPlaced"


def events(rows: list[tuple], **columns: list) -> pd.DataFrame:
    """A frame in the contract's dtypes from ``(userId, type, offset from T0)`` rows."""
    users, kinds, offsets = zip(*rows)
    df = pd.DataFrame(
        {
            "type": pd.Categorical(kinds),
            "timestamp": pd.Series([T0 + pd.Timedelta(o) for o in offsets]).astype(
                "datetime64[ms, UTC]"
            ),
            "userId": pd.array(users, dtype="string[pyarrow]"),
            **columns,
        }
    )
    return df


def check_oracle(df: pd.DataFrame, steps: list, **kwargs) -> FunnelResult:
    """Run the funnel and hold it to the brute-force oracle too."""
    result = funnel(df, steps, **kwargs)
    table, ledger = reference_funnel(df, steps, **kwargs)
    pd.testing.assert_frame_equal(result.table, table)
    pd.testing.assert_frame_equal(result.ledger, ledger)
    return result


def test_ties_are_optimistic_whatever_the_row_order() -> None:
    # the order row comes first in the frame, but shares the view's timestamp: u1 converts,
    # and its zero-second conversion counts in the median
    df = events([("u1", OP, "0s"), ("u1", PV, "0s")])
    result = check_oracle(df, [PV, OP])
    assert result.table["entities"].tolist() == [1, 1]
    assert result.table["median_time"].tolist()[1] == pd.Timedelta(0)
    assert result.ledger.loc["u1", "reason"] == "converted"


def test_one_row_never_fills_two_steps() -> None:
    # u1 has one pageOpened: level 1; u2 has two at the same instant: level 2 (distinct rows)
    df = events(
        [("u1", "pageOpened", "0s"), ("u2", "pageOpened", "0s"), ("u2", "pageOpened", "0s")]
    )
    result = check_oracle(df, ["pageOpened", "pageOpened"])
    assert result.ledger["level"].to_dict() == {"u1": 1, "u2": 2}
    # a list step and a name step over one productViewed row: still level 1
    single = events([("u1", PV, "0s")])
    assert check_oracle(single, [[PV, CS], PV]).ledger["level"].tolist() == [1]


def test_the_best_attempt_counts_not_the_first() -> None:
    # PV@0 has no order within 7 days; PV@10D -> OP@10D+1h does: level 2 from the second view
    df = events([("u1", PV, "0s"), ("u1", PV, "10D"), ("u1", OP, "10D 1h")])
    result = check_oracle(df, [PV, OP])
    assert result.ledger.loc["u1", "level"] == 2
    assert result.ledger.loc["u1", "step_1_at"] == T0 + pd.Timedelta("10D")
    assert result.time_to_convert().tolist() == [pd.Timedelta("1h")]


def test_lists_where_greedy_would_miss_the_longer_attempt() -> None:
    # X -> [A, B] -> A over X@0, A@10, B@10: only B filling step 2 leaves A for step 3
    df = events([("u1", "pageOpened", "0s"), ("u1", PV, "10s"), ("u1", "cartViewed", "10s")])
    result = check_oracle(df, ["pageOpened", [PV, "cartViewed"], PV])
    assert result.ledger.loc["u1", "level"] == 3
    assert result.table["name"].tolist() == ["pageOpened", "productViewed | cartViewed", PV]
    assert result.table["median_time"].tolist()[1:] == [pd.Timedelta("10s"), pd.Timedelta(0)]


def test_strict_chains_break_on_rows_in_between_but_not_on_ties() -> None:
    df = events(
        [
            # u1: a pageOpened strictly between the view and the order breaks the chain
            ("u1", PV, "0s"), ("u1", "pageOpened", "1min"), ("u1", OP, "2min"),
            # u2: the pageOpened shares the view's timestamp, so the chain holds
            ("u2", PV, "0s"), ("u2", "pageOpened", "0s"), ("u2", OP, "1min"),
        ]
    )  # fmt: skip
    strict = check_oracle(df, [PV, OP], order="strict", within=None)
    assert strict.ledger["level"].to_dict() == {"u1": 1, "u2": 2}
    assert strict.ledger.loc["u1", "reason"] == "next_step_never_happened"
    assert check_oracle(df, [PV, OP]).ledger["level"].to_dict() == {"u1": 2, "u2": 2}


def test_strict_takes_the_later_row_when_the_earlier_one_leads_nowhere() -> None:
    # PV@0, CS@0, CS@1m, OP@2m: CS@0 leaves OP two groups away, so CS@1m fills step 2
    df = events([("u1", PV, "0s"), ("u1", CS, "0s"), ("u1", CS, "1min"), ("u1", OP, "2min")])
    result = check_oracle(df, [PV, CS, OP], order="strict")
    row = result.ledger.loc["u1"]
    assert row["level"] == 3
    assert [row[f"step_{k}_at"] - T0 for k in (1, 2, 3)] == [
        pd.Timedelta(0), pd.Timedelta("1min"), pd.Timedelta("2min")
    ]  # fmt: skip


def test_any_order_ignores_sequence_but_keeps_the_window() -> None:
    # u1 orders before viewing (any: converts; ordered: does not); u2's order is 8 days off
    df = events([("u1", OP, "0s"), ("u1", PV, "1h"), ("u2", PV, "0s"), ("u2", OP, "8D")])
    anyway = check_oracle(df, [PV, OP], order="any")
    assert anyway.ledger["level"].to_dict() == {"u1": 2, "u2": 1}
    assert anyway.ledger.loc["u2", "reason"] == "window_expired"
    assert anyway.table["median_time"].isna().all()  # no step times for any
    assert check_oracle(df, [PV, OP]).ledger.loc["u1", "level"] == 1


def test_any_order_reasons_look_both_ways() -> None:
    df = events(
        [
            # u1: the order comes 10 minutes after the view, outside a 5-minute window
            ("u1", PV, "0s"), ("u1", OP, "10min"),
            # u2: the order came 10 minutes before the view: in any order, also expired
            ("u2", OP, "0s"), ("u2", PV, "10min"),
            # u3: view, abandoned cart, order: the only attempt is void
            ("u3", PV, "0s"), ("u3", "cartAbandoned", "1min"), ("u3", OP, "2min"),
        ]
    )  # fmt: skip
    df.attrs["croct"] = {"end": "2026-02-01T00:00:00.000Z"}  # every window has closed
    result = check_oracle(df, [PV, OP], order="any", within="5min", exclude=["cartAbandoned"])
    assert result.ledger["level"].tolist() == [1, 1, 1]
    assert result.ledger["reason"].astype(str).to_dict() == {
        "u1": "window_expired", "u2": "window_expired", "u3": "excluded"
    }  # fmt: skip


def test_exclusions_void_one_attempt_while_a_later_clean_one_counts() -> None:
    df = events(
        [
            # u1: PV@0 .. cartAbandoned@1h .. OP@2h is void; PV@1D -> OP@1D1h is clean
            ("u1", PV, "0s"), ("u1", "cartAbandoned", "1h"), ("u1", OP, "2h"),
            ("u1", PV, "1D"), ("u1", OP, "1D 1h"),
            # u2: its only attempt is void: level 1, reason excluded
            ("u2", PV, "0s"), ("u2", "cartAbandoned", "1h"), ("u2", OP, "2h"),
            # u3: the exclusion shares the view's timestamp: not strictly inside, converts
            ("u3", PV, "0s"), ("u3", "cartAbandoned", "0s"), ("u3", OP, "2h"),
        ]
    )  # fmt: skip
    result = check_oracle(df, [PV, OP], exclude=["cartAbandoned"])
    ledger = result.ledger
    assert ledger["level"].to_dict() == {"u1": 2, "u2": 1, "u3": 2}
    assert ledger.loc["u1", "step_1_at"] == T0 + pd.Timedelta("1D")
    assert ledger["reason"].astype(str).to_dict() == {
        "u1": "converted", "u2": "excluded", "u3": "converted"
    }  # fmt: skip
    # an exclusion given as a Step with where, and as one name
    flagged = Step("abandoned", "cartAbandoned", where=lambda d: d["type"] == "cartAbandoned")
    assert funnel(df, [PV, OP], exclude=[flagged]).ledger["level"].tolist() == [2, 1, 2]
    assert funnel(df, [PV, OP], exclude="cartAbandoned").ledger["level"].tolist() == [2, 1, 2]


def test_the_window_boundary_is_inclusive() -> None:
    # u1's order comes exactly 7 days after the view: counts. u2's comes 1 ms later: expired
    # (the data end at u2's order, 7D+1ms after its view, so its window is not open either)
    df = events([("u1", PV, "0s"), ("u1", OP, "7D"), ("u2", PV, "0s"), ("u2", OP, "7D 1ms")])
    result = check_oracle(df, [PV, OP])
    assert result.ledger["level"].to_dict() == {"u1": 2, "u2": 1}
    assert result.ledger.loc["u2", "reason"] == "window_expired"
    # a zero window: only same-instant conversions
    same = events([("u1", PV, "0s"), ("u1", OP, "0s"), ("u2", PV, "0s"), ("u2", OP, "1ms")])
    assert check_oracle(same, [PV, OP], within="0s").ledger["level"].tolist() == [2, 1]


def test_window_still_open_is_measured_against_the_end_of_the_data() -> None:
    df = events([("u1", PV, "0s"), ("u2", PV, "9D")])
    # without attrs the end is the last timestamp (9D): u2 started 0s before it (< 7D)
    reasons = check_oracle(df, [PV, OP]).ledger["reason"].astype(str).to_dict()
    assert reasons == {"u1": "next_step_never_happened", "u2": "window_still_open"}
    # attrs["croct"]["end"] = 20D: u2's 7 days have passed too
    df.attrs["croct"] = {"end": "2026-01-21T00:00:00.000Z"}
    reasons = check_oracle(df, [PV, OP]).ledger["reason"].astype(str).tolist()
    assert reasons == ["next_step_never_happened"] * 2
    # no window: never "still open" nor "expired"
    assert check_oracle(df, [PV, OP], within=None).ledger["reason"].nunique() == 1


def test_breakdown_reads_the_value_on_step_one_of_the_counted_attempt() -> None:
    df = events(
        [
            ("u1", PV, "0s"),
            ("u1", PV, "10D"),
            ("u1", OP, "10D 1h"),
            ("u2", PV, "0s"),
            ("u2", OP, "1h"),
        ],
        device=["mobile", "desktop", "mobile", "mobile", "desktop"],
    )
    # u1's counted attempt starts at the 10D view (desktop) even though it first came on mobile
    result = check_oracle(df, [PV, OP], breakdown="device")
    assert result.ledger["device"].to_dict() == {"u1": "desktop", "u2": "mobile"}
    # one entity each: ties rank by value, desktop first
    assert result.table["device"].tolist() == ["desktop", "desktop", "mobile", "mobile"]
    assert result.table["entities"].tolist() == [1, 1, 1, 1]


def _grouped() -> pd.DataFrame:
    # ten viewers: a x3, b x2, c x2, null x2, d x1; rank: a(3), b(2), c(2), null(2), d(1)
    values = ["a", "a", "a", "b", "b", "c", "c", None, None, "d"]
    df = events([(f"u{i}", PV, f"{i}min") for i in range(10)])
    df["grp"] = pd.Categorical(values, categories=["a", "b", "c", "d"])
    return df


def test_breakdown_keeps_its_dtype_when_nothing_folds() -> None:
    result = check_oracle(_grouped(), [PV, OP], breakdown="grp")
    step_1 = result.table[result.table["step"] == 1]
    assert step_1["grp"].tolist()[:3] == ["a", "b", "c"] and pd.isna(step_1["grp"].iloc[3])
    assert step_1["grp"].tolist()[4] == "d"
    assert step_1["entities"].tolist() == [3, 2, 2, 2, 1]
    assert isinstance(result.table["grp"].dtype, pd.CategoricalDtype)


def test_breakdown_folds_the_rest_into_other_as_text() -> None:
    # limit 2: a and b stay, c + null + d = 5 fold into "other"; the column becomes string
    result = check_oracle(_grouped(), [PV, OP], breakdown="grp", breakdown_limit=2)
    step_1 = result.table[result.table["step"] == 1]
    assert step_1["grp"].tolist() == ["a", "b", "other"]
    assert step_1["entities"].tolist() == [3, 2, 5]
    assert result.table["grp"].dtype == pd.StringDtype("pyarrow")
    # limit 4: the null group is kept (it ranks like any other) and stays null
    result = check_oracle(_grouped(), [PV, OP], breakdown="grp", breakdown_limit=4)
    labels = result.table[result.table["step"] == 1]["grp"]
    assert labels.isna().tolist() == [False, False, False, True, False]
    assert labels.dropna().tolist() == ["a", "b", "c", "other"]


def test_wilson_interval_values() -> None:
    # 5 of 10: p = 0.5, centre 0.5, half 1.96*sqrt(0.025 + 0.0096)/1.384 = 0.2634
    low, high = wilson(np.array([5, 0, 10]), np.array([10, 10, 10]))
    assert low.round(4).tolist() == [0.2366, 0.0, 0.7225]  # 10/(10 + z²) = 0.72247
    assert high.round(4).tolist() == [0.7634, 0.2775, 1.0]  # z²/(10 + z²) = 0.27753
    # in the table: 10 viewers, 5 order
    rows = [(f"u{i}", PV, "0s") for i in range(10)] + [(f"u{i}", OP, "1h") for i in range(5)]
    table = check_oracle(events(rows), [PV, OP]).table
    assert table["conversion"].tolist() == [1.0, 0.5]
    assert table["conversion_low"].round(4).tolist() == [0.7225, 0.2366]
    assert table["conversion_high"].round(4).tolist() == [1.0, 0.7634]
    assert table["step_conversion"].tolist() == [1.0, 0.5]
    assert table["drop_off"].tolist() == [0, 5]


def test_zero_over_zero_is_nan() -> None:
    # nobody placed an order, so a funnel starting there is empty: every ratio is NaN
    result = check_oracle(events([("u1", PV, "0s")]), [OP, PV])
    table = result.table
    assert table["entities"].tolist() == [0, 0]
    for column in ("conversion", "conversion_low", "conversion_high", "step_conversion"):
        assert table[column].isna().all()
    assert table["drop_off"].tolist() == [0, 0] and result.ledger.empty


def test_null_entities_are_left_out() -> None:
    df = events([("u1", PV, "0s"), ("u1", OP, "1h")])
    df.loc[len(df)] = [PV, T0, None]
    result = check_oracle(df, [PV, OP])
    assert result.ledger.index.tolist() == ["u1"]
    assert result.ledger.index.name == "userId"


def test_other_entity_columns_and_sessions() -> None:
    df = events([("u1", PV, "0s"), ("u1", OP, "1h"), ("u1", PV, "2D")])
    df["sessionId"] = pd.array(["s1", "s1", "s2"], dtype="string[pyarrow]")
    result = check_oracle(df, [PV, OP], by="sessionId")
    assert result.ledger["level"].to_dict() == {"s1": 2, "s2": 1}


@pytest.mark.parametrize(
    "type_dtype",
    ["object", "string[pyarrow]", pd.ArrowDtype(pa.string()),
     pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))],
)  # fmt: skip
@pytest.mark.parametrize(
    "time_dtype",
    ["datetime64[ms, UTC]", "datetime64[ns, UTC]", pd.ArrowDtype(pa.timestamp("ms", "UTC"))],
)
def test_every_dtype_backend_counts_the_same(type_dtype: object, time_dtype: object) -> None:
    base = events(
        [("u1", PV, "0s"), ("u1", CS, "1h"), ("u1", OP, "2h"), ("u2", PV, "0s"), ("u2", CS, "9D")]
    )
    expected = funnel(base, [PV, CS, OP])
    df = base.assign(type=base["type"].astype(str).astype(type_dtype))
    df["timestamp"] = df["timestamp"].astype(time_dtype)
    result = funnel(df, [PV, CS, OP])
    pd.testing.assert_frame_equal(result.table, expected.table)
    assert result.ledger["reason"].tolist() == expected.ledger["reason"].tolist()
    got = result.ledger["step_3_at"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    pd.testing.assert_series_equal(
        got, expected.ledger["step_3_at"].astype("datetime64[ns, UTC]"), check_names=False
    )


def test_where_narrows_a_step_three_ways() -> None:
    df = events([("u1", PV, "0s"), ("u1", OP, "1h"), ("u2", PV, "0s"), ("u2", OP, "1h")])
    df["payload.order.total"] = [np.nan, 150.0, np.nan, 20.0]
    as_query = Step("big order", OP, where="`payload.order.total` > 100")
    as_mask = Step("big order", OP, where=df["payload.order.total"] > 100)
    as_callable = Step("big order", OP, where=lambda d: d["payload.order.total"] > 100)
    for step in (as_query, as_mask, as_callable):
        result = check_oracle(df, [PV, step])
        assert result.table["entities"].tolist() == [2, 1]
        assert result.table["name"].tolist() == [PV, "big order"]


def test_validation_names_the_parameter() -> None:
    df = events([("u1", PV, "0s")])
    with pytest.raises(ValueError, match=r"did you mean 'productViewed'"):
        funnel(df, ["productViewd", OP])
    with pytest.raises(ValueError, match=r"steps: unknown event type 'zzz'$"):
        funnel(df, ["zzz", OP])
    with pytest.raises(ValueError, match="steps must be a list of two or more"):
        funnel(df, [PV])
    with pytest.raises(ValueError, match="steps must be a list"):
        funnel(df, PV)
    with pytest.raises(TypeError, match="within"):
        funnel(df, [PV, OP], within=7)
    with pytest.raises(ValueError, match="within"):
        funnel(df, [PV, OP], within="soon")
    with pytest.raises(ValueError, match="within must be a non-negative"):
        funnel(df, [PV, OP], within="-1D")
    with pytest.raises(ValueError, match="within needs a unit"):
        funnel(df, [PV, OP], within="3")  # pandas would read 3 nanoseconds
    with pytest.raises(ValueError, match="order must be one of"):
        funnel(df, [PV, OP], order="loose")
    with pytest.raises(ValueError, match="exclude: 'productViewed' is a step"):
        funnel(df, [PV, OP], exclude=[PV])
    with pytest.raises(ValueError, match=r"exclude: unknown event type 'cartAbandond'"):
        funnel(df, [PV, OP], exclude=["cartAbandond"])
    with pytest.raises(ValueError, match="breakdown: the frame has no column 'device'"):
        funnel(df, [PV, OP], breakdown="device")
    with pytest.raises(ValueError, match="breakdown_limit must be a positive integer"):
        funnel(df, [PV, OP], breakdown_limit=0)
    with pytest.raises(ValueError, match="by: the frame has no column 'visitor'"):
        funnel(df, [PV, OP], by="visitor")
    with pytest.raises(ValueError, match="where of step 'x' must give one boolean per row"):
        funnel(df, [PV, Step("x", OP, where=lambda d: [1, 2, 3])])
    with pytest.raises(TypeError, match="Step types"):
        Step("x", [])


def test_a_known_type_absent_from_the_frame_counts_zero() -> None:
    result = funnel(events([("u1", PV, "0s")]), [PV, "leadGenerated"])
    assert result.table["entities"].tolist() == [1, 0]


def test_views_of_the_result() -> None:
    # u1 enters Thu 1 Jan and converts; u2 enters Tue 6 Jan and stops; u3 enters Tue 20 Jan.
    # Weeks end on Sunday: [29 Dec - 4 Jan], [5 - 11 Jan], [12 - 18 Jan] (empty), [19 - 25 Jan]
    df = events(
        [("u1", PV, "0s"), ("u1", CS, "30min"), ("u1", OP, "2h"), ("u2", PV, "5D"),
         ("u2", CS, "5D 1h"), ("u3", PV, "19D")]
    )  # fmt: skip
    result = df.croct.funnel([PV, CS, OP])
    weekly = result.conversion_over_time("W")
    assert [str(p) for p in weekly.index] == [
        "2025-12-29/2026-01-04", "2026-01-05/2026-01-11", "2026-01-12/2026-01-18",
        "2026-01-19/2026-01-25",
    ]  # fmt: skip
    assert weekly["step_1"].tolist() == [1, 1, 0, 1]
    assert weekly["step_3"].tolist() == [1, 0, 0, 0]
    assert weekly["conversion"].tolist()[:2] == [1.0, 0.0] and np.isnan(
        weekly["conversion"].iloc[2]
    )
    assert result.time_to_convert().to_dict() == {"u1": pd.Timedelta("2h")}
    assert result.time_to_convert(1, 2).to_dict() == {
        "u1": pd.Timedelta("30min"), "u2": pd.Timedelta("1h")
    }  # fmt: skip
    assert result.entities(1).tolist() == ["u1", "u2", "u3"]
    assert result.entities(2, "converted").tolist() == ["u1"]
    assert result.entities(1, "dropped").tolist() == ["u3"]
    assert result.entities(-1, "converted").tolist() == ["u1"]
    assert result.entities(3, "dropped").tolist() == []
    with pytest.raises(ValueError, match="status must be one of"):
        result.entities(1, "lost")
    with pytest.raises(ValueError, match=r"step must be a step number 1\.\.3"):
        result.entities(4)
    with pytest.raises(ValueError, match="from_step must come before to_step"):
        result.time_to_convert(3, 1)
    header = "productViewed → checkoutStarted → orderPlaced · within 7 days · by userId"
    assert header in repr(result) and "3 entities" in repr(result)
    assert "<table" in result._repr_html_() and header in result._repr_html_()


def test_plot_hands_the_result_to_plot_funnel(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.ModuleType("croct_pandas.plotting")
    fake.plot_funnel = lambda result, *, ax=None: calls.append((result, ax)) or "axes"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "croct_pandas.plotting", fake)
    result = funnel(events([("u1", PV, "0s")]), [PV, OP])
    assert result.plot(ax="my-axes") == "axes"
    assert calls == [(result, "my-axes")]
