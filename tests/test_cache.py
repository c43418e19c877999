"""The Parquet cache end to end, against the emulator and its request log."""

from __future__ import annotations

import os
import time

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import croct_pandas as cp
from croct_pandas.cache import cache_info, clear_cache, dataset_schema
from croct_pandas.emulator import Emulator, Faults, generate_events
from croct_pandas.errors import InvalidArgumentError, SchemaWarning

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1767225600000  # 2026-01-01T00:00:00Z, the emulator's default start
KEY = "cache-test-key-Zq81xW"


@pytest.fixture(scope="module")
def store() -> list[dict]:
    return generate_events(users=40, days=3, seed=5)


@pytest.fixture(scope="module")
def emu(store):
    with Emulator(store, api_key=KEY) as emulator:
        yield emulator


def read(emu: Emulator, cache, start=T0, end=T0 + DAY, events=None, **kw) -> pd.DataFrame:
    kw.setdefault("progress", False)
    return cp.read_croct_events(
        start, end, events, api_key=emu.api_key, base_url=emu.url, cache=cache, **kw
    )


def fresh(emu: Emulator, start=T0, end=T0 + DAY, events=None) -> pd.DataFrame:
    """The ground truth: the same read without a cache; the log is cleared after it."""
    frame = read(emu, False, start, end, events)
    emu.reset_log()
    return frame


def sent(emu: Emulator) -> list[dict]:
    """The event-list requests since the last reset, as {param: value} (cursor None if absent)."""
    out = []
    for record in emu.requests:
        if record.path.rstrip("/").endswith("/export/events"):
            params = dict(record.params)
            out.append({**params, "cursor": params.get("cursor"), "items": record.items})
    return out


def namespace(root) -> str:
    names = [n for n in os.listdir(root) if not n.startswith("_")]
    assert len(names) == 1, names
    return os.path.join(root, names[0])


def test_a_repeated_read_sends_no_request_and_returns_the_same_frame(emu, tmp_path):
    expected = fresh(emu)
    first = read(emu, tmp_path)
    assert sent(emu), "the first read fetches"
    emu.reset_log()
    second = read(emu, tmp_path)
    assert sent(emu) == []
    pd.testing.assert_frame_equal(first, expected)
    pd.testing.assert_frame_equal(second, expected)
    attrs = second.attrs["croct"]
    assert attrs["metadata"]["applicationSlug"] == emu.metadata["applicationSlug"]
    assert attrs["spec_version"] == "0.7"
    assert attrs["provisional"] is False
    assert attrs["fetched_at"] == first.attrs["croct"]["fetched_at"]


def test_a_read_one_day_wider_fetches_only_that_day(emu, store, tmp_path):
    read(emu, tmp_path, T0, T0 + DAY)
    emu.reset_log()
    wider = read(emu, tmp_path, T0, T0 + 2 * DAY)
    requests = sent(emu)
    assert requests
    assert all(int(r["start"]) >= T0 + DAY and int(r["end"]) <= T0 + 2 * DAY for r in requests)
    day_two = sum(1 for e in store if T0 + DAY <= e["timestamp"] < T0 + 2 * DAY)
    assert sum(r["items"] for r in requests) == day_two
    pd.testing.assert_frame_equal(wider, fresh(emu, T0, T0 + 2 * DAY))


def test_overlapping_windows_fetch_only_the_part_not_held(emu, tmp_path):
    read(emu, tmp_path, T0, T0 + DAY)
    emu.reset_log()
    frame = read(emu, tmp_path, T0 + DAY // 2, T0 + DAY + DAY // 2)
    assert all(int(r["start"]) >= T0 + DAY for r in sent(emu))
    pd.testing.assert_frame_equal(frame, fresh(emu, T0 + DAY // 2, T0 + DAY + DAY // 2))


def test_a_subset_of_types_after_an_all_types_read_sends_nothing(emu, tmp_path):
    read(emu, tmp_path)
    emu.reset_log()
    subset = read(emu, tmp_path, events=["pageOpened", "orderPlaced"])
    assert sent(emu) == []
    pd.testing.assert_frame_equal(subset, fresh(emu, events=["pageOpened", "orderPlaced"]))


def test_types_read_alone_do_not_serve_an_all_types_read(emu, tmp_path):
    only = read(emu, tmp_path, events="pageOpened")
    emu.reset_log()
    again = read(emu, tmp_path, events=["pageOpened"])
    assert sent(emu) == []
    everything = read(emu, tmp_path)
    assert sent(emu), "pageOpened alone does not cover every type"
    pd.testing.assert_frame_equal(everything, fresh(emu))
    pd.testing.assert_frame_equal(only, again)


def test_refresh_fetches_the_window_again_and_replaces_it(emu, tmp_path):
    read(emu, tmp_path)
    emu.reset_log()
    frame = read(emu, tmp_path, refresh=True)
    assert sum(r["items"] for r in sent(emu)) == len(frame)
    pd.testing.assert_frame_equal(frame, fresh(emu))
    files = [
        os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if f.endswith(".parquet")
    ]
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == len(frame)


def test_a_window_without_start_is_one_chain_and_covers_the_beginning(emu, tmp_path):
    frame = read(emu, tmp_path, None, T0 + DAY)
    requests = sent(emu)
    assert requests and all("start" not in r for r in requests[1:])
    emu.reset_log()
    inner = read(emu, tmp_path, T0 + HOUR, T0 + 5 * HOUR)
    assert sent(emu) == []
    pd.testing.assert_frame_equal(frame, fresh(emu, None, T0 + DAY))
    pd.testing.assert_frame_equal(inner, fresh(emu, T0 + HOUR, T0 + 5 * HOUR))


def test_a_provisional_window_is_fetched_again(tmp_path):
    now = time.time_ns() // 1_000_000
    recent = generate_events(users=8, days=1, seed=3)
    shift = now - 10 * 60_000 - max(e["timestamp"] for e in recent)
    for event in recent:
        event["timestamp"] += shift
    start, end = now - 6 * HOUR, now
    with Emulator(recent, api_key=KEY) as emu:
        first = read(emu, tmp_path, start, end)
        assert first.attrs["croct"]["provisional"] is True
        fetched = pd.Timestamp(first.attrs["croct"]["fetched_at"]).value // 1_000_000
        emu.reset_log()
        second = read(emu, tmp_path, start, end)
        requests = sent(emu)
        # only what ended less than `settle` (2 h) before its fetch is fetched again
        assert requests
        assert all(int(r["start"]) >= fetched - 2 * HOUR for r in requests)
        assert second.attrs["croct"]["provisional"] is True
        emu.reset_log()
        third = read(emu, tmp_path, start, end, settle="0s")
        assert sent(emu) == []
        assert third.attrs["croct"]["provisional"] is False
        for frame in (first, second, third):
            pd.testing.assert_frame_equal(frame, fresh(emu, start, end))
        info = cache_info(tmp_path)
        assert all(info["provisional"].map(len) > 0)


def test_two_applications_keep_separate_data(emu, tmp_path):
    other_store = generate_events(users=25, days=1, seed=99)
    with Emulator(other_store, api_key="another-key-7Hq2") as other:
        mine = read(emu, tmp_path)
        theirs = read(other, tmp_path)
        emu.reset_log()
        other.reset_log()
        assert set(mine["id"]).isdisjoint(theirs["id"])
        pd.testing.assert_frame_equal(read(emu, tmp_path), fresh(emu))
        pd.testing.assert_frame_equal(read(other, tmp_path), fresh(other))
        assert sent(emu) == [] and sent(other) == []
    folders = [n for n in os.listdir(tmp_path) if not n.startswith("_")]
    assert len(folders) == 2
    assert len(cache_info(tmp_path).groupby(["application", "base_url"])) == 2


def test_a_new_key_for_a_known_application_costs_one_request(store, tmp_path):
    with Emulator(store, api_key="first-key-Aa1") as first:
        port = int(first.url.rsplit(":", 1)[1])
        expected = read(first, tmp_path)
    with Emulator(store, api_key="second-key-Bb2", port=port) as second:
        again = read(second, tmp_path)
        requests = sent(second)
        assert [r["pageSize"] for r in requests] == ["1"]
        second.reset_log()
        read(second, tmp_path)
        assert sent(second) == []
    pd.testing.assert_frame_equal(again, expected)
    assert len([n for n in os.listdir(tmp_path) if not n.startswith("_")]) == 1


def test_duckdb_and_pyarrow_dataset_read_the_cache_as_it_is(emu, tmp_path):
    frame = read(emu, tmp_path, T0, T0 + 2 * DAY)
    events = os.path.join(namespace(tmp_path), "events")
    con = duckdb.connect()
    pattern = os.path.join(tmp_path, "**", "*.parquet")
    rows = con.sql(
        f"select type, count(*) as n, count(distinct id) as ids from read_parquet('{pattern}', "
        "hive_partitioning=true, union_by_name=true) group by type"
    ).df()
    assert rows["n"].sum() == rows["ids"].sum() == len(frame)
    by_type = frame["type"].value_counts()
    assert {t: int(by_type[t]) for t in rows["type"]} == dict(zip(rows["type"], rows["n"]))
    dataset = ds.dataset(events, format="parquet", partitioning="hive", schema=dataset_schema())
    assert dataset.count_rows() == len(frame)
    table = dataset.to_table(columns=["id", "type", "day", "payload.cart.total"])
    assert table.num_rows == len(frame)
    read_back = pd.read_parquet(events, schema=dataset_schema())
    assert len(read_back) == len(frame)
    for path in dataset.files:
        names = pq.read_schema(path).names
        assert "type" not in names and "day" not in names
        assert pq.read_metadata(path).num_rows > 0


def test_no_file_under_the_cache_holds_the_api_key(emu, tmp_path):
    read(emu, tmp_path, T0, T0 + DAY)
    read(emu, tmp_path, T0, T0 + 2 * DAY, events=["pageOpened"])
    needle = KEY.encode()
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert len(files) > 10
    for path in files:
        with open(path, "rb") as fh:
            assert needle not in fh.read(), path
    for name in (os.path.join(d, n) for d, ds_, fs in os.walk(tmp_path) for n in ds_ + fs):
        assert KEY not in name


def test_cache_info_and_clear_cache(emu, tmp_path):
    frame = read(emu, tmp_path)
    info = cache_info(tmp_path)
    assert info["rows"].sum() == len(frame)
    assert (info["bytes"] > 0).all()
    assert set(info["event_type"]) == set(frame["type"].unique())
    assert info["application"].unique().tolist() == ["acme-retail/storefront/acme-shop-web"]
    assert all(
        fin == ["2026-01-01T00:00:00.000Z/2026-01-02T00:00:00.000Z"] for fin in info["final"]
    )
    with pytest.raises(InvalidArgumentError, match="application="):
        clear_cache(tmp_path, application="no-such-app")
    clear_cache(tmp_path, application="acme-shop-web")
    assert cache_info(tmp_path).empty
    emu.reset_log()
    pd.testing.assert_frame_equal(read(emu, tmp_path), frame)
    assert len(sent(emu)) > 1, "cleared: the key's folder is learnt again and the data refetched"
    clear_cache(tmp_path)
    assert cache_info(tmp_path).empty
    assert sorted(os.listdir(tmp_path)) == ["_lock"]


@pytest.mark.parametrize("bad", [False, None, 0, ""])
def test_cache_info_and_clear_cache_name_the_parameter(bad):
    with pytest.raises(InvalidArgumentError, match="cache="):
        cache_info(bad)
    with pytest.raises(InvalidArgumentError, match="cache="):
        clear_cache(bad)


def test_the_dataset_schema_has_every_column_and_the_partitions():
    schema = dataset_schema()
    assert schema.names[:2] == ["id", "timestamp"]
    assert schema.names[-2:] == ["type", "day"]
    assert "_croct_raw" in schema.names and "payload.order.total" in schema.names
    assert dataset_schema(["tabOpened"]).names[-3:] == ["_croct_raw", "type", "day"]


def test_repeated_items_and_the_0_8_dialect_are_stored_once_and_read_back_alike(store, tmp_path):
    faults = Faults(repeat_rate=0.5, seed=4)
    with Emulator(store, api_key=KEY, dialect="0.8.0", faults=faults) as emu:
        cold = read(emu, tmp_path, page_size=50)
        emu.reset_log()
        warm = read(emu, tmp_path, page_size=50)
        assert sent(emu) == []
        expected = fresh(emu)
    pd.testing.assert_frame_equal(cold, expected)
    pd.testing.assert_frame_equal(warm, expected)
    assert warm.attrs["croct"]["spec_version"] == "0.8"
    pattern = os.path.join(tmp_path, "**", "*.parquet")
    n, ids = duckdb.execute(
        f"select count(*), count(distinct id) from read_parquet('{pattern}', "
        "hive_partitioning=true, union_by_name=true)"
    ).fetchall()[0]
    assert n == ids == len(expected)


def test_values_that_contradict_the_schema_survive_the_cache(store, tmp_path):
    events = [dict(e) for e in store if e["timestamp"] < T0 + DAY]
    viewed = next(i for i, e in enumerate(events) if e["payload"]["@type"] == "productViewed")
    payload = dict(events[viewed]["payload"])
    payload["product"] = {**payload["product"], "displayPrice": "not a number"}
    events[viewed] = {**events[viewed], "payload": payload}
    with Emulator(events, api_key=KEY) as emu:
        with pytest.warns(SchemaWarning):
            expected = fresh(emu)
        with pytest.warns(SchemaWarning):
            read(emu, tmp_path)
        emu.reset_log()
        with pytest.warns(SchemaWarning):
            warm = read(emu, tmp_path)
        assert sent(emu) == []
    pd.testing.assert_frame_equal(warm, expected)
    assert "not a number" in set(warm["payload.product.displayPrice"].dropna())
    # on disk the column keeps its schema type; the raw value waits in _croct_raw
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    prices = next(f for f in files if "type=productViewed" in f and f.endswith(".parquet"))
    assert str(pq.read_schema(prices).field("payload.product.displayPrice").type) == "double"
