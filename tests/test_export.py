"""read_croct_events() end to end against the emulator over loopback sockets."""

from __future__ import annotations

import logging
import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import croct_pandas as cp
from croct_pandas.client import Client
from croct_pandas.emulator import Emulator, Faults, generate_events
from croct_pandas.errors import AuthenticationError, CroctError, InvalidArgumentError
from croct_pandas.frame import build_frame, read_parquet_frame
from croct_pandas.normalize import normalize_items
from croct_pandas.schema import EVENT_TYPES

DAY = 86_400_000
T0 = 1767225600000  # 2026-01-01T00:00:00Z, the emulator's default start


@pytest.fixture(scope="module")
def store() -> list[dict]:
    return generate_events(users=120, days=3, seed=11)


def read(emu: Emulator, start=T0, end=T0 + 3 * DAY, events=None, **kw) -> pd.DataFrame:
    kw.setdefault("cache", False)
    kw.setdefault("progress", False)
    return cp.read_croct_events(start, end, events, api_key=emu.api_key, base_url=emu.url, **kw)


def truth(events: list[dict], start=T0, end=T0 + 3 * DAY, types=None) -> pd.DataFrame:
    return build_frame(normalize_items(events).tables.items(), events=types, start=start, end=end)


def wire_ids(events, start, end, types=None) -> list[str]:
    picked = [
        e.get("id") or e.get("eventId")
        for e in events
        if start <= e["timestamp"] < end
        and (types is None or (e["payload"].get("@type") or e["payload"].get("type")) in types)
    ]
    return sorted(picked)


@pytest.mark.parametrize("dialect", ["0.7.1", "0.8.0"])
@pytest.mark.parametrize(
    ("window", "types", "page_size", "workers"),
    [
        ((0, 3), None, 1000, 4),
        ((1, 2), ["productViewed", "orderPlaced"], 7, 2),
        ((0, 1), ["cartModified", "clientDetected", "locationDetected"], 100, 1),
    ],
)
def test_the_frame_equals_the_ground_truth(store, dialect, window, types, page_size, workers):
    start, end = T0 + window[0] * DAY, T0 + window[1] * DAY
    with Emulator(store, dialect=dialect) as emu:
        df = read(emu, start, end, types, page_size=page_size, workers=workers)
        expected = truth(emu.events, start, end, types)
        ids = wire_ids(emu.events, start, end, types)
    assert sorted(df["id"].tolist()) == ids
    assert df["id"].is_unique
    pd.testing.assert_frame_equal(df, expected)
    attrs = df.attrs["croct"]
    assert attrs["spec_version"] == dialect[:3]
    assert attrs["metadata"]["applicationSlug"]
    assert attrs["events"] == (sorted(types) if types else None)


def test_values_match_the_wire_independently(store):
    """Compare typed columns with pandas' own json_normalize of the wire events."""
    with Emulator(store) as emu:
        df = read(emu)
    wire = pd.json_normalize([e for e in store if T0 <= e["timestamp"] < T0 + 3 * DAY])
    wire = wire.set_index("id").loc[df["id"]]
    checked = 0
    for column in df.columns:
        if column not in wire or column in ("id", "type"):
            continue
        ours, theirs = df[column], wire[column].reset_index(drop=True)
        if str(ours.dtype).startswith("datetime64"):
            theirs = pd.to_datetime(theirs, unit="ms", utc=True).astype(ours.dtype)
        elif isinstance(ours.dtype, pd.CategoricalDtype):
            ours = ours.astype(object)
            theirs = theirs.map(
                lambda v: v if not isinstance(v, str) else v.lower().replace("_", "-")
            )
            if column == "payload.location.continent":
                theirs = wire[column].reset_index(drop=True)
        elif ours.dtype == "float64" and not pd.api.types.is_numeric_dtype(theirs):
            theirs = pd.to_numeric(theirs)
        elif str(ours.dtype) == "Int64":
            theirs = pd.to_numeric(theirs).astype("Int64")
        if isinstance(ours.dtype, pd.ArrowDtype) or column.endswith("preferredLanguages"):
            continue  # lists and joined lists are checked by the round trip
        left = ours.astype(object).where(ours.notna(), None).tolist()
        right = theirs.astype(object).where(theirs.notna(), None).tolist()
        assert left == right, column
        checked += 1
    assert checked > 80


@pytest.mark.parametrize("dialect", ["0.7.1", "0.8.0"])
def test_to_events_round_trips_every_event_type(store, dialect):
    with Emulator(store, dialect=dialect) as emu:
        df = read(emu)
    assert set(df["type"].astype(str)) == set(EVENT_TYPES)
    events = df.croct.to_events()
    assert all("@type" in e["payload"] and "id" in e for e in events)
    again = build_frame(normalize_items(events).tables.items(), start=T0, end=T0 + 3 * DAY)
    again.attrs = df.attrs
    pd.testing.assert_frame_equal(df, again)
    if dialect == "0.7.1":
        # in the export's own dialect, the rebuilt events are the wire events
        by_id = {e["id"]: e for e in store}
        for event in events[:2000]:
            original = by_id[event["id"]]
            assert event["payload"]["@type"] == original["payload"]["@type"]
            assert event["timestamp"] == original["timestamp"]
            assert event["context"] == original["context"] or original["context"] is None


def test_tail_cursor_and_empty_windows(store):
    with Emulator(store, tail_cursor=True) as emu:
        df = read(emu, T0, T0 + DAY, page_size=50)
        assert sorted(df["id"]) == wire_ids(store, T0, T0 + DAY)
        empty = read(emu, T0 - 10 * DAY, T0 - 9 * DAY, ["orderPlaced"])
    assert len(empty) == 0
    assert str(empty["payload.order.total"].dtype) == "float64"
    assert empty.attrs["croct"]["spec_version"] is None


def test_a_flaky_api_loses_and_duplicates_nothing(capsys):
    events = generate_events(users=1600, days=4, seed=5)[:100_000]
    end = events[-1]["timestamp"] + 1
    faults = Faults(
        seed=3, error_rate=0.08, reset_rate=0.04, truncate_rate=0.04, slow_rate=0.03,
        slow_s=1.5, repeat_rate=0.04, rate_limit=6,
    )  # fmt: skip
    with Emulator(events, faults=faults) as emu:
        df = read(emu, T0, end, page_size=500, workers=4, timeout=1.0)
        log = list(emu.requests)
    assert len(events) == 100_000
    assert sorted(df["id"].tolist()) == sorted(e["id"] for e in events)
    assert df["id"].is_unique
    injected = [f for r in log for f in r.faults]
    kinds = {f.split(":")[0] for f in injected}
    with capsys.disabled():
        print(
            f"\nflaky export: {len(df):,} events, {len(log)} requests, survived "
            f"{len(injected)} injected faults ({', '.join(sorted(kinds))})"
        )
    assert len(injected) / len(log) >= 0.2
    assert kinds >= {"error", "reset", "truncate", "slow", "repeat", "rate_limit"}


BAD_INPUTS = [
    ({"start": "yesterday-ish"}, "start"),
    ({"start": "2026-13-01"}, "start"),
    ({"end": "2026-02-30"}, "end"),
    ({"start": 1767225600}, "start"),  # epoch seconds
    ({"start": 1.5}, "start"),
    ({"start": True}, "start"),
    ({"start": [2026, 1, 1]}, "start"),
    ({"start": "2026-01-02", "end": "2026-01-01"}, "start"),
    ({"start": "2026-01-01", "end": "2026-01-01"}, "start"),
    ({"events": "OrderPlaced"}, "orderPlaced"),
    ({"events": ["productViewd"]}, "productViewed"),
    ({"events": []}, "events"),
    ({"events": [1, 2]}, "events"),
    ({"events": ["sessionStarted"]}, "events"),
    ({"page_size": 0}, "page_size"),
    ({"page_size": 1001}, "page_size"),
    ({"page_size": "100"}, "page_size"),
    ({"workers": 0}, "workers"),
    ({"workers": 2.5}, "workers"),
    ({"dtype_backend": "arrow"}, "dtype_backend"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": -1}, "timeout"),
    ({"progress": "yes"}, "progress"),
    ({"refresh": 1}, "refresh"),
    ({"settle": "soon"}, "settle"),
    ({"settle": "-2h"}, "settle"),
    ({"settle": 5}, "settle"),  # no unit: pandas would read it as 5 ns
    ({"settle": 2.5}, "settle"),
    ({"cache": 3}, "cache"),
    ({"base_url": "http://api.example.com"}, "base_url"),
    ({"base_url": "ftp://127.0.0.1"}, "base_url"),
    ({"base_url": "not a url"}, "base_url"),
]


@pytest.mark.parametrize(("kwargs", "named"), BAD_INPUTS)
def test_bad_input_fails_before_any_request(store, kwargs, named):
    with Emulator(store[:10]) as emu:
        call = {"start": T0, "end": T0 + DAY, "api_key": emu.api_key, "base_url": emu.url,
                "cache": False, "progress": False}  # fmt: skip
        call.update(kwargs)
        with pytest.raises(InvalidArgumentError) as info:
            cp.read_croct_events(**call)
        assert named in str(info.value)
        assert emu.requests == []
    assert len(BAD_INPUTS) >= 25


def test_a_missing_key_says_where_it_is_read_from(store, monkeypatch):
    monkeypatch.delenv("CROCT_API_KEY", raising=False)
    with Emulator(store[:10]) as emu:
        with pytest.raises(InvalidArgumentError, match="CROCT_API_KEY"):
            cp.read_croct_events(T0, T0 + DAY, base_url=emu.url, cache=False, progress=False)
        assert emu.requests == []


def test_a_wrong_key_is_an_authentication_error(store):
    with Emulator(store[:10]) as emu, pytest.raises(AuthenticationError, match="CROCT_API_KEY"):
        cp.read_croct_events(T0, T0 + DAY, api_key="wrong", base_url=emu.url, cache=False,
                             progress=False)  # fmt: skip


def test_the_key_and_url_come_from_the_environment(store, monkeypatch):
    with Emulator(store) as emu:
        monkeypatch.setenv("CROCT_API_KEY", emu.api_key)
        monkeypatch.setenv("CROCT_API_URL", emu.url)
        df = cp.read_croct_events(T0, T0 + DAY, "orderPlaced", cache=False, progress=False)
    assert len(df) == len(wire_ids(store, T0, T0 + DAY, ["orderPlaced"]))


def test_the_api_key_appears_nowhere(store, caplog):
    faults = Faults(seed=1, error_rate=0.2, reset_rate=0.1, truncate_rate=0.1)
    with Emulator(store, faults=faults) as emu:
        key = emu.api_key
        texts = [repr(emu), str(emu.requests)]
        with caplog.at_level(logging.DEBUG, logger="croct_pandas"):
            df = read(emu, page_size=200)
        client = Client(key, base_url=emu.url)
        texts += [repr(client), str(vars(client)), repr(Faults())]
        with pytest.raises(TypeError):
            pickle.dumps(client)
        for bad in ({"page_size": 0}, {"api_key": key + "x"}):
            try:
                cp.read_croct_events(T0, T0 + DAY, **{"api_key": key, "base_url": emu.url,
                                     "cache": False, "progress": False, **bad})  # fmt: skip
            except CroctError as error:
                texts += [str(error), repr(error), str(error.__dict__)]
    texts += [r.getMessage() for r in caplog.records] + [str(df.attrs)]
    assert len(caplog.records) > 10
    assert not [t for t in texts if key in t]


def test_attrs_are_json_serialisable_and_parquet_writes(store, tmp_path):
    with Emulator(store) as emu:
        df = read(emu, T0, T0 + DAY, ["orderPlaced", "productViewed"])
    attrs = df.attrs["croct"]
    assert attrs["start"] == "2026-01-01T00:00:00.000Z"
    assert attrs["end"] == "2026-01-02T00:00:00.000Z"
    assert attrs["events"] == ["orderPlaced", "productViewed"]
    assert attrs["provisional"] is False
    df.to_parquet(tmp_path / "events.parquet")
    back = read_parquet_frame(str(tmp_path / "events.parquet"))
    pd.testing.assert_frame_equal(back, df)
    assert back.attrs == df.attrs
    assert len(pd.read_parquet(tmp_path / "events.parquet", dtype_backend="pyarrow")) == len(df)


@pytest.mark.parametrize("backend", [None, "numpy_nullable", "pyarrow"])
def test_dtype_backends_end_to_end(store, backend):
    with Emulator(store) as emu:
        df = read(emu, T0, T0 + DAY, dtype_backend=backend)
    price = df["payload.product.displayPrice"]
    expected = {None: np.dtype("float64"), "numpy_nullable": pd.Float64Dtype()}.get(backend)
    if expected is not None:
        assert price.dtype == expected
    else:
        assert isinstance(price.dtype, pd.ArrowDtype)
    assert math.isclose(
        float(price.sum()), float(truth(store, T0, T0 + DAY)["payload.product.displayPrice"].sum())
    )


def test_items_explode_every_cart_and_order(store):
    with Emulator(store) as emu:
        df = read(emu)
    items = df.croct.items()
    expected = 0
    for e in store:
        p = e["payload"]
        if not T0 <= e["timestamp"] < T0 + 3 * DAY:
            continue
        if p["@type"] in ("cartViewed", "cartModified", "checkoutStarted", "cartAbandoned"):
            expected += len(p["cart"]["items"])
        elif p["@type"] == "orderPlaced":
            expected += len(p["order"]["items"])
        elif p["@type"] == "productAbandoned":
            expected += 1
    assert len(items) == expected
    assert list(items.columns[:6]) == ["id", "type", "timestamp", "sessionId", "userId", "currency"]
    assert str(items["item.quantity"].dtype) == "Int64"
    assert items["item.product.productId"].notna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert items["timestamp"].is_monotonic_increasing


def test_an_interrupted_export_stops_every_slice_at_once(store):
    # every request fails, so each slice's thread sits in a retry backoff (0.5 s, 1 s, 2 s, ...)
    # when Ctrl-C arrives: the threads must end then, not retry on in the background
    import _thread
    import threading
    import time

    with Emulator(store, api_key="k", faults=Faults(error_rate=1.0)) as emu:
        timer = threading.Timer(1.0, _thread.interrupt_main)
        timer.start()
        began = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            read(emu, workers=4)
        interrupted = time.monotonic()
        timer.join()
        for thread in threading.enumerate():
            if thread.name.startswith("croct"):
                thread.join(5)
        sent = len(emu.requests)
        time.sleep(1.5)
        assert len(emu.requests) == sent  # nothing sent after the threads ended
    assert not [t.name for t in threading.enumerate() if t.name.startswith("croct")]
    assert interrupted - began < 5


def test_a_bad_key_or_url_fails_before_any_progress_bar(store, capsys, monkeypatch):
    monkeypatch.delenv("CROCT_API_KEY", raising=False)
    with Emulator(store[:10]) as emu:
        with pytest.raises(InvalidArgumentError, match="CROCT_API_KEY"):
            cp.read_croct_events(T0, T0 + DAY, base_url=emu.url, cache=False, progress=True)
        assert emu.requests == []
    assert "Croct export" not in capsys.readouterr().err


def test_the_bar_says_what_came_from_the_cache(store, tmp_path, capsys):
    with Emulator(store) as emu:
        read(emu, T0, T0 + DAY, cache=tmp_path, progress=True)
        wider = read(emu, T0, T0 + 2 * DAY, cache=tmp_path, progress=True)
        again = read(emu, T0, T0 + 2 * DAY, cache=tmp_path, progress=True)
    finals = [
        line.strip()
        for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
        if "100%" in line and "building" not in line
    ]
    # the final line gives the frame's rows, and how many of them were fetched
    assert finals[-2].endswith(" fetched, the rest from the cache)")
    assert f", {len(wider):,} events (" in finals[-2]
    assert finals[-1].endswith(f", {len(again):,} events read from the cache")
