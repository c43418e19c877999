"""Argument checking: every bad input names its parameter; every good one has a known value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from croct_pandas.errors import InvalidArgumentError
from croct_pandas.params import check_events, check_page_size, check_timeout, check_workers
from croct_pandas.params_endpoint import is_loopback, resolve_api_key, resolve_base_url
from croct_pandas.params_time import check_window, to_epoch_ms
from croct_pandas.schema import EVENT_TYPES

NOV1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
HOUR = 3_600_000


# -- to_epoch_ms: good inputs -----------------------------------------------------------------

GOOD_TIMES = [
    (None, None),
    (NOV1, NOV1),
    (np.int64(NOV1), NOV1),
    (float(NOV1), NOV1),
    (np.float64(NOV1), NOV1),
    (dt.datetime(2026, 11, 1), NOV1),
    (dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.timezone.utc), NOV1 + 10 * HOUR),
    (dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), NOV1),
    (dt.datetime(2026, 11, 1, 0, 0, 0, 1000), NOV1 + 1),  # a whole ms stays
    (dt.datetime(2026, 11, 1, 0, 0, 0, 1500), NOV1 + 2),  # inside a ms: the next one
    (dt.date(2026, 11, 1), NOV1),
    (pd.Timestamp("2026-11-01"), NOV1),
    (pd.Timestamp("2026-11-01 10:00", tz="UTC"), NOV1 + 10 * HOUR),
    (pd.Timestamp("2026-11-01 10:00", tz="Europe/Berlin"), NOV1 + 9 * HOUR),
    (pd.Timestamp("2026-11-01 00:00:00.001999999"), NOV1 + 2),
    (np.datetime64("2026-11-01"), NOV1),
    (np.datetime64("2026-11-01T10:00:00.250", "ms"), NOV1 + 10 * HOUR + 250),
    (np.datetime64("2026-11-01T00:00:00.000000001", "ns"), NOV1 + 1),
    ("2026-11-01", NOV1),
    ("2026-11-01T10:00", NOV1 + 10 * HOUR),
    ("2026-11-01 10:00:30", NOV1 + 10 * HOUR + 30_000),
    ("2026-11-01T10:00:00Z", NOV1 + 10 * HOUR),
    ("2026-11-01T10:00:00.123Z", NOV1 + 10 * HOUR + 123),
    ("2026-11-01T10:00:00.123456789Z", NOV1 + 10 * HOUR + 124),
    ("2026-11-01T10:00+02:00", NOV1 + 8 * HOUR),
    ("2026-11-01T10:00-0300", NOV1 + 13 * HOUR),
    ("  2026-11-01  ", NOV1),
]


@pytest.mark.parametrize(("value", "expected"), GOOD_TIMES, ids=[repr(v) for v, _ in GOOD_TIMES])
def test_to_epoch_ms_accepts(value, expected):
    got = to_epoch_ms(value, "start")
    assert got == expected
    assert got is None or type(got) is int


# -- to_epoch_ms: bad inputs, each naming the parameter ---------------------------------------

BAD_TIMES = [
    (True, "boolean"),
    (np.bool_(False), "boolean"),
    (1_793_491_200, "looks like epoch seconds"),  # seconds, not ms
    (0, "looks like epoch seconds"),
    (-5, "looks like epoch seconds"),
    (float(1_793_491_200), "looks like epoch seconds"),
    (NOV1 * 1000, "microseconds"),
    (NOV1 * 1_000_000, "microseconds"),
    (NOV1 + 0.5, "whole number"),
    (float("nan"), "whole number"),
    (float("inf"), "whole number"),
    (pd.NaT, "NaT"),
    (np.datetime64("NaT"), "NaT"),
    ("", "ISO 8601"),
    ("yesterday", "ISO 8601"),
    ("now", "ISO 8601"),
    ("2026/11/01", "ISO 8601"),
    ("01-11-2026", "ISO 8601"),
    ("20261101", "ISO 8601"),
    ("2026-11", "ISO 8601"),
    ("2026-11-01T25:00", "not a valid date"),
    ("2026-02-30", "not a valid date"),
    ("2026-11-01+02:00", "ISO 8601"),
    ("2026-11-01T10", "ISO 8601"),
    ("1793491200000", "ISO 8601"),
    (b"2026-11-01", "unsupported type bytes"),
    (Decimal("1793491200000"), "unsupported type Decimal"),
    ([NOV1], "unsupported type list"),
    ({"start": NOV1}, "unsupported type dict"),
    (dt.time(10, 0), "unsupported type time"),
    (dt.timedelta(days=1), "unsupported type timedelta"),
    (pd.Timedelta("1D"), "unsupported type Timedelta"),
    (object(), "unsupported type object"),
]


def _id(value: object) -> str:
    # a stable id (no memory address), so xdist workers collect the same tests
    return "object()" if type(value) is object else repr(value)[:30]


@pytest.mark.parametrize("name", ["start", "end"])
@pytest.mark.parametrize(("value", "why"), BAD_TIMES, ids=[_id(v) for v, _ in BAD_TIMES])
def test_to_epoch_ms_refuses(value, why, name):
    with pytest.raises(InvalidArgumentError) as info:
        to_epoch_ms(value, name)
    message = str(info.value)
    assert message.startswith(f"{name}="), message
    assert why in message
    assert isinstance(info.value, ValueError)


def test_unsupported_type_lists_what_is_accepted():
    with pytest.raises(InvalidArgumentError, match=r"epoch milliseconds .*datetime.*ISO 8601"):
        to_epoch_ms(object(), "end")


def test_long_values_are_shortened_in_messages():
    with pytest.raises(InvalidArgumentError) as info:
        to_epoch_ms("x" * 500, "start")
    assert len(str(info.value)) < 400


# -- window --------------------------------------------------------------------------------------


def test_check_window_accepts_open_and_ordered_windows():
    for start, end in [(None, None), (NOV1, None), (None, NOV1), (NOV1, NOV1 + 1)]:
        assert check_window(start, end) is None


@pytest.mark.parametrize(("start", "end"), [(NOV1, NOV1), (NOV1 + HOUR, NOV1)])
def test_check_window_refuses_empty_or_reversed(start, end):
    with pytest.raises(InvalidArgumentError, match=r"start \(2026-11-01T0.*\) must be before end"):
        check_window(start, end)


# -- events --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (None, None),
        ("orderPlaced", ("orderPlaced",)),
        (["pageOpened", "orderPlaced"], ("pageOpened", "orderPlaced")),
        (("orderPlaced", "pageOpened", "orderPlaced"), ("orderPlaced", "pageOpened")),
        ({"cartViewed": 1}, ("cartViewed",)),
        ((t for t in ["userClicked", "userScrolled"]), ("userClicked", "userScrolled")),
        (pd.Series(["goalCompleted"]), ("goalCompleted",)),
        (list(EVENT_TYPES), EVENT_TYPES),
    ],
)
def test_check_events_accepts(events, expected):
    assert check_events(events) == expected


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ([], "events=[] selects nothing"),
        ((), "events=[] selects nothing"),
        ("OrderPlaced", "did you mean 'orderPlaced'?"),
        (["pageOpened", "ORDERPLACED"], "did you mean 'orderPlaced'?"),
        ("orderPlace", "did you mean 'orderPlaced'?"),
        ("pageOpend", "did you mean 'pageOpened'?"),
        ("Cart_Viewed", "did you mean 'cartViewed'?"),
        ("sessionStarted", "events=None to include every type"),
        ("", "unknown event type"),
        (["orderPlaced", None], "must be an event type name"),
        ([1, 2], "must be an event type name"),
        (b"orderPlaced", "one event type name or a list"),
        (42, "one event type name or a list"),
    ],
)
def test_check_events_refuses(events, why):
    with pytest.raises(InvalidArgumentError) as info:
        check_events(events)
    assert "events" in str(info.value)
    assert why in str(info.value)


# -- sizes and timeouts --------------------------------------------------------------------------


def test_sizes_accept_their_ranges():
    assert [check_page_size(n) for n in (1, 100, 1000, np.int32(7))] == [1, 100, 1000, 7]
    assert [check_workers(n) for n in (1, 4, 64)] == [1, 4, 64]
    assert [check_timeout(t) for t in (0.5, 30, np.float32(2.0))] == [0.5, 30.0, 2.0]


@pytest.mark.parametrize(
    ("check", "name", "value"),
    [
        (check_page_size, "page_size", 0),
        (check_page_size, "page_size", 1001),
        (check_page_size, "page_size", -1),
        (check_page_size, "page_size", True),
        (check_page_size, "page_size", 100.0),
        (check_page_size, "page_size", "100"),
        (check_page_size, "page_size", None),
        (check_workers, "workers", 0),
        (check_workers, "workers", 65),
        (check_workers, "workers", False),
        (check_workers, "workers", 2.5),
        (check_timeout, "timeout", 0),
        (check_timeout, "timeout", -1.0),
        (check_timeout, "timeout", float("nan")),
        (check_timeout, "timeout", float("inf")),
        (check_timeout, "timeout", True),
        (check_timeout, "timeout", "30"),
        (check_timeout, "timeout", None),
    ],
)
def test_sizes_refuse(check, name, value):
    with pytest.raises(InvalidArgumentError) as info:
        check(value)
    assert str(info.value).startswith(f"{name}=")
    assert f"{name} accepts" in str(info.value)


# -- API key ---------------------------------------------------------------------------------------

SECRET = "sk-test-4c1d2e3f-VERY-SECRET"


def test_api_key_argument_wins_over_environment(monkeypatch):
    monkeypatch.setenv("CROCT_API_KEY", "from-env")
    assert resolve_api_key("from-arg") == "from-arg"
    assert resolve_api_key(None) == "from-env"


def test_api_key_is_stripped(monkeypatch):
    monkeypatch.setenv("CROCT_API_KEY", f"  {SECRET}\n")
    assert resolve_api_key(None) == SECRET


@pytest.mark.parametrize("env", [None, "", "   "])
def test_missing_api_key_says_where_it_is_read(monkeypatch, env):
    if env is None:
        monkeypatch.delenv("CROCT_API_KEY", raising=False)
    else:
        monkeypatch.setenv("CROCT_API_KEY", env)
    with pytest.raises(InvalidArgumentError, match="api_key= argument, then the CROCT_API_KEY"):
        resolve_api_key(None)


@pytest.mark.parametrize("bad", ["", "  ", 12345, b"bytes-key", f"{SECRET}\nX-Other: 1", "clé"])
def test_bad_api_key_is_refused_without_echoing_it(monkeypatch, bad):
    monkeypatch.delenv("CROCT_API_KEY", raising=False)
    with pytest.raises(InvalidArgumentError) as info:
        resolve_api_key(bad)
    message = str(info.value)
    assert "api_key" in message or "API key" in message
    assert SECRET not in message
    assert not isinstance(bad, str) or not bad.strip() or bad not in message


# -- base URL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.croct.io", "https://api.croct.io"),
        ("https://api.croct.io/", "https://api.croct.io"),
        ("https://api.croct.io/export", "https://api.croct.io"),
        ("https://api.croct.io/export/", "https://api.croct.io"),
        ("HTTPS://API.Croct.IO/Export", "https://api.croct.io"),
        ("https://api.test.croct.io/export", "https://api.test.croct.io"),
        ("https://proxy.example.com/croct/export", "https://proxy.example.com/croct"),
        ("http://localhost:4000", "http://localhost:4000"),
        ("http://127.0.0.1:8080/export", "http://127.0.0.1:8080"),
        ("http://127.5.6.7", "http://127.5.6.7"),
        ("http://[::1]:4000/", "http://[::1]:4000"),
    ],
)
def test_base_url_is_normalised(given, expected):
    assert resolve_base_url(given) == expected


def test_base_url_comes_from_environment_then_default(monkeypatch):
    monkeypatch.delenv("CROCT_API_URL", raising=False)
    assert resolve_base_url(None) == "https://api.croct.io"
    monkeypatch.setenv("CROCT_API_URL", "http://127.0.0.1:4000/export")
    assert resolve_base_url(None) == "http://127.0.0.1:4000"
    assert resolve_base_url("https://api.test.croct.io") == "https://api.test.croct.io"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("http://api.croct.io", "plain http"),
        ("http://10.0.0.1:4000", "plain http"),
        ("http://localhost.example.com", "plain http"),
        ("ftp://api.croct.io", "http(s) URL"),
        ("api.croct.io", "http(s) URL"),
        ("https://", "http(s) URL"),
        ("https://api.croct.io:99999", "http(s) URL"),
        ("https://api.croct.io/?x=1", "no query string"),
        ("https://api.croct.io/#frag", "no query string"),
        (42, "http(s) URL"),
    ],
)
def test_base_url_refuses(given, why):
    with pytest.raises(InvalidArgumentError) as info:
        resolve_base_url(given)
    assert "base_url" in str(info.value)
    assert why in str(info.value)


def test_base_url_with_credentials_is_refused_without_echo():
    with pytest.raises(InvalidArgumentError, match="credentials") as info:
        resolve_base_url(f"https://user:{SECRET}@api.croct.io")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost", True),
        ("http://LOCALHOST:80", True),
        ("http://127.0.0.1:1", True),
        ("http://127.255.0.9", True),
        ("http://[::1]:4000", True),
        ("http://app.localhost", True),
        ("https://api.croct.io", False),
        ("http://128.0.0.1", False),
        ("http://0.0.0.0", False),
        ("http://[::2]", False),
        ("http://localhost.evil.com", False),
        ("not a url", False),
        ("http://[::1", False),
    ],
)
def test_is_loopback(url, expected):
    assert is_loopback(url) is expected
