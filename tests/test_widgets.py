"""The explorer: controls set from Python, the chart and the table checked after each change."""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import croct_pandas  # noqa: F401  (registers df.croct)
from croct_pandas.emulator import generate_events
from croct_pandas.frame import build_frame
from croct_pandas.normalize import normalize_items
from croct_pandas.widgets import Explorer, explore
from croct_pandas.widgets_state import UNKNOWN, ExplorerState, Query

SHOP = ["productViewed", "cartModified", "orderPlaced"]


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    items = generate_events(users=80, days=4, seed=5)
    return build_frame(normalize_items(items).tables.items())


@pytest.fixture
def explorer(events: pd.DataFrame) -> Explorer:
    return explore(events).explorer


def _png(explorer: Explorer) -> str:
    (output,) = explorer.chart.outputs
    return output["data"]["image/png"]


def _tables_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def _days(frame: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    day = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return frame[(day >= pd.Timestamp(first)) & (day <= pd.Timestamp(last))]


def test_explore_shows_the_shop_funnel_at_once(events, explorer):
    assert explorer.widget.explorer is explorer
    assert list(explorer.result.steps) == [
        "pageOpened",
        "productViewed",
        "cartModified",
        "checkoutStarted",
        "orderPlaced",
    ]
    assert _png(explorer)
    assert "croct-funnel-table" in explorer.table.value
    assert f"{len(events):,} events kept" in explorer.status.value
    want = events.croct.funnel(list(explorer.result.steps))
    _tables_equal(explorer.result.table, want.table)


def test_changing_steps_redraws_chart_and_table(events, explorer):
    chart, table = _png(explorer), explorer.table.value
    explorer.controls["steps"].value = SHOP
    assert _png(explorer) != chart
    assert explorer.table.value != table
    assert "cartModified" in explorer.table.value and "pageOpened" not in explorer.table.value
    _tables_equal(explorer.result.table, events.croct.funnel(SHOP).table)


def test_window_and_people_or_sessions(events, explorer):
    explorer.controls["steps"].value = SHOP
    chart = _png(explorer)
    explorer.controls["within"].value = "30 minutes"
    assert explorer.result.within == pd.Timedelta("30min")
    _tables_equal(explorer.result.table, events.croct.funnel(SHOP, within="30min").table)
    explorer.controls["by"].value = "sessions"
    assert explorer.result.by == "sessionId"
    assert "sessions entered the funnel" in explorer.status.value
    want = events.croct.funnel(SHOP, within="30min", by="sessionId")
    _tables_equal(explorer.result.table, want.table)
    assert _png(explorer) != chart


def test_breakdown_column(events, explorer):
    column = "context.metadata.custom_checkoutFlow"
    assert column in explorer.state.breakdowns
    table = explorer.table.value
    explorer.controls["breakdown"].value = column
    assert explorer.result.table.columns[0] == column
    assert explorer.table.value != table and f"<th>{column}</th>" in explorer.table.value
    want = events.croct.funnel(list(explorer.result.steps), breakdown=column)
    _tables_equal(explorer.result.table, want.table)


def test_url_filter_keeps_the_rows_whose_url_contains_the_text(events, explorer):
    explorer.controls["steps"].value = ["pageOpened", "productViewed"]
    chart = _png(explorer)
    explorer.controls["url"].value = "UTM_SOURCE=Google"  # case does not matter
    kept = events[events["context.url"].str.contains("utm_source=google", regex=False) == True]  # noqa: E712
    assert 0 < len(kept) < len(events)
    assert f"{len(kept):,} events kept" in explorer.status.value
    _tables_equal(explorer.result.table, kept.croct.funnel(["pageOpened", "productViewed"]).table)
    assert _png(explorer) != chart


def test_date_range_keeps_whole_days(events, explorer):
    dates = explorer.controls["dates"]
    assert len(dates.options) == 4
    chart = _png(explorer)
    dates.index = (1, 2)
    first, last = dates.value
    assert (first, last) == (pd.Timestamp("2026-01-02"), pd.Timestamp("2026-01-03"))
    kept = _days(events, "2026-01-02", "2026-01-03")
    assert f"{len(kept):,} events kept" in explorer.status.value
    _tables_equal(explorer.result.table, kept.croct.funnel(list(explorer.result.steps)).table)
    assert _png(explorer) != chart


def test_type_filter_narrows_the_step_choices(explorer):
    steps = explorer.controls["steps"]
    before = list(steps.value)
    kept = [t for t in explorer.state.types if t != "checkoutStarted"]
    explorer.controls["types"].value = tuple(kept)
    assert "checkoutStarted" not in steps.allowed_tags
    assert "checkoutStarted" not in steps.value
    assert list(explorer.result.steps) == [
        "pageOpened",
        "productViewed",
        "cartModified",
        "orderPlaced",
    ]
    # ticking the type again brings its step back where it was
    explorer.controls["types"].value = tuple(explorer.state.types)
    assert list(steps.value) == before
    assert list(explorer.result.steps) == before


def test_a_step_hidden_by_the_filter_keeps_its_place_through_other_edits(explorer):
    steps = explorer.controls["steps"]
    kept = [t for t in explorer.state.types if t != "checkoutStarted"]
    explorer.controls["types"].value = tuple(kept)
    steps.value = [t for t in steps.value if t != "cartModified"]  # the user's own edit
    explorer.controls["types"].value = tuple(explorer.state.types)
    assert list(steps.value) == ["pageOpened", "productViewed", "checkoutStarted", "orderPlaced"]


def test_device_and_country_select_sessions_not_rows(events, explorer):
    assert set(explorer.state.session_options) == {"device", "country"}
    devices = explorer.state.session_options["device"]
    assert "mobile" in devices and UNKNOWN not in devices  # every session reports a client
    chart = _png(explorer)
    explorer.controls["steps"].value = SHOP
    explorer.controls["device"].value = ("mobile",)
    with_sessions = events.croct.with_sessions()
    kept = with_sessions[with_sessions["session.device"] == "mobile"]
    # whole sessions: their rows of every type, though only clientDetected carries the device
    assert kept["type"].nunique() > 5
    _tables_equal(explorer.result.table, kept.croct.funnel(SHOP).table)
    explorer.controls["country"].value = ("US",)
    both = kept[kept["session.country"] == "US"]
    assert f"{len(both):,} events kept" in explorer.status.value
    _tables_equal(explorer.result.table, both.croct.funnel(SHOP).table)
    assert _png(explorer) != chart


def test_fewer_than_two_steps_says_so_and_recovers(explorer):
    explorer.controls["steps"].value = ["pageOpened"]
    assert explorer.result is None
    assert explorer.chart.outputs == ()
    assert "pick at least two steps" in explorer.status.value
    explorer.controls["steps"].value = ["pageOpened", "orderPlaced"]
    assert list(explorer.result.steps) == ["pageOpened", "orderPlaced"]
    assert _png(explorer)


def test_going_back_to_a_query_reuses_its_result(explorer):
    explorer.controls["steps"].value = SHOP
    first = explorer.result
    explorer.controls["within"].value = "1 day"
    assert explorer.result is not first
    explorer.controls["within"].value = "7 days"
    assert explorer.result is first


def test_state_computes_each_mask_once_and_hands_the_funnel_few_rows(events):
    state = ExplorerState(events)
    q = Query(steps=tuple(SHOP), url_contains="google")
    first = state.mask(q)
    assert state._masks[("url", "google")] is state._cached_mask(("url", "google"), None)
    np.testing.assert_array_equal(state.mask(q), first)
    view = state.view(q)
    assert list(view.columns) == ["type", "timestamp", "userId"]
    assert set(view["type"].astype(str)) <= set(SHOP)
    # the end of the data is the frame's, not the last step row's, so open windows stay open
    assert view.attrs["croct"]["end"] == events["timestamp"].max().isoformat()
    with_end = Query(steps=tuple(SHOP), end=pd.Timestamp("2026-01-02"))
    assert state.view(with_end).attrs["croct"]["end"] == "2026-01-03T00:00:00+00:00"


def test_sessions_without_a_device_are_offered_as_unknown():
    t = pd.to_datetime([0, 1, 2, 3, 4], unit="s", utc=True)
    frame = pd.DataFrame(
        {
            "type": ["clientDetected", "pageOpened", "orderPlaced", "pageOpened", "orderPlaced"],
            "timestamp": t,
            "sessionId": ["s1", "s1", "s1", "s2", "s2"],
            "userId": ["a", "a", "a", "b", "b"],
            "payload.client.device.category": pd.array(
                ["mobile", None, None, None, None], dtype="string"
            ),
        }
    )
    state = ExplorerState(frame)
    assert state.session_options == {"device": ["mobile", UNKNOWN]}
    q = Query(steps=("pageOpened", "orderPlaced"), devices=(UNKNOWN,))
    assert state.mask(q).tolist() == [False, False, False, True, True]
    assert state.run(q).ledger.index.tolist() == ["b"]
    everything = Query(steps=("pageOpened", "orderPlaced"), devices=("mobile", UNKNOWN))
    assert state.mask(everything).all()


def test_state_rejects_what_is_not_an_event_frame(events):
    with pytest.raises(ValueError, match="'sessionId'"):
        ExplorerState(events.drop(columns="sessionId"))
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        ExplorerState([1, 2])  # type: ignore[arg-type]


def test_a_frame_without_session_columns_has_no_session_filters(events):
    sources = ["payload.client.device.category", "payload.location.country"]
    explorer = explore(events.drop(columns=sources)).explorer
    assert "device" not in explorer.controls and "country" not in explorer.controls
    assert explorer.state.session_options == {}
    assert _png(explorer)


def test_missing_ipywidgets_says_what_to_install(events, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="pip install 'ipywidgets"):
        events.croct.explore()
