"""Edges of frame assembly on worker threads, the shared placement caches, the Arrow pool and
gc settings a read changes, and the in-process key fingerprint memo: inferred names that are
another type's schema columns, a top-level ``type`` key, pools the user sets (before, during,
as a proxy), forks in the middle of a read, and the key never reaching a file.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import threading
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import croct_pandas as cp
import croct_pandas.client as client_module
from croct_pandas import cache_store, frame_layout, frame_threads, process_state
from croct_pandas.emulator import Emulator, generate_events
from croct_pandas.errors import SchemaWarning
from croct_pandas.frame import build_frame
from croct_pandas.frame_layout import Layout, _Rows, _spread
from croct_pandas.normalize import normalize_items
from croct_pandas.process_state import paused_gc, system_arrow_pool

T0 = 1767225600000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
DEFAULT_IS_MIMALLOC = pa.default_memory_pool().backend_name == "mimalloc"


def _event(payload: dict, i: int, **core: Any) -> dict:
    base = {"id": f"x{i}", "timestamp": T0 + 13 * HOUR + i, "sessionId": "s1", "userId": "u1"}
    return {**base, **core, "context": None, "payload": payload}


# raw values (unknown keys, text where numbers belong, new enum values, a bad timestamp),
# free-form maps, an unknown type, and a float that is -0.0 on a column only one type has
ODD = [
    _event({"@type": "orderPlaced", "order": {"status": "REFUNDED"}}, 0),
    _event({"@type": "orderPlaced", "order": {"status": "PAID", "installments": "two"}}, 1),
    _event({"@type": "productViewed", "product": {"displayPrice": "free"}}, 2),
    _event({"@type": "eventOccurred", "name": "a", "details": {"v": 1, "w": -0.0}}, 3),
    _event({"@type": "eventOccurred", "name": "b", "details": {"v": "one", "w": 2.5}}, 4),
    _event({"@type": "tabOpened", "tabId": "t", "extra": 5}, 5, timestamp="yesterday"),
    _event({"@type": "tabOpened", "tabId": "t2", "odd": {"neg": -0.0, "txt": "q"}}, 6),
    _event({"@type": "somethingNew", "x": 1.5, "label": "n"}, 7),
]


def _sliced(tables: list[tuple[str, pa.Table]]) -> list[tuple[str, pa.Table]]:
    """Each table as two chunks whose arrays start at an offset into longer buffers."""
    out = []
    for name, table in tables:
        n = table.num_rows
        padded = pa.concat_tables([table.slice(0, 1), table, table.slice(0, 1)]).combine_chunks()
        inner = padded.slice(1, n)
        out.append((name, pa.concat_tables([inner.slice(0, n // 2), inner.slice(n // 2)])))
    return out


def _nulled(tables: list[tuple[str, pa.Table]]) -> list[tuple[str, pa.Table]]:
    """productViewed's prices and names entirely null: a type adding nothing to its columns."""
    out = []
    for name, table in tables:
        if name == "productViewed":
            for column in ("payload.product.displayPrice", "payload.product.name"):
                at = table.schema.get_field_index(column)
                field = table.schema.field(at)
                table = table.set_column(at, field, pa.nulls(table.num_rows, field.type))
        out.append((name, table))
    return out


@pytest.fixture(scope="module")
def inputs() -> dict[str, list[tuple[str, pa.Table]]]:
    events = generate_events(users=40, days=2, seed=5)
    first = list(normalize_items(events[: len(events) // 2] + ODD).tables.items())
    second = list(normalize_items(events[len(events) // 3 :] + ODD[:3]).tables.items())
    mixed = first + second  # overlapping chunks: the last copy wins
    seen: set[str] = set()
    one_each = []
    for e in events + ODD:
        kind = e["payload"]["@type"]
        if kind not in seen:
            seen.add(kind)
            one_each.append(e)
    return {
        "mixed": mixed,
        "sliced": _sliced(mixed),
        "nulled": _nulled(mixed),
        "one_each": list(normalize_items(one_each).tables.items()),
        "empty": [],
    }


def _build(tables: list, *, threaded: bool, plain: bool = False, **kw: Any) -> tuple:
    """The frame and its warnings; ``plain`` turns the new speed paths off (offsets by a
    cumulative sum, floats through Arrow's take and ``to_pandas``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frame_threads, "_THREADED_ROWS", 0 if threaded else 10**9)
        if plain:
            mp.setattr(frame_layout, "_REPEAT_BELOW", 0)
            mp.setattr(Layout, "spread_floats", lambda self, present: None)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            df = build_frame(tables, **kw)
    return df, [(str(w.message), w.category, w.filename, w.lineno) for w in record]


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes.astype(str)) == list(expected.dtypes.astype(str))
    for name in expected.columns:
        a, b = got[name], expected[name]
        if b.dtype == np.float64:  # NaN where null, and -0.0 kept as -0.0
            x, y = a.to_numpy(), b.to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            assert np.array_equal(np.signbit(x), np.signbit(y)), name
        stored = getattr(b.array, "_pa_array", None)
        if stored is not None:  # the same Arrow storage (string vs large_string)
            assert a.array._pa_array.type == stored.type, name


WINDOW = {"start": T0 + 12 * HOUR, "end": T0 + 36 * HOUR}


@pytest.mark.parametrize("backend", [None, "numpy_nullable", "pyarrow"])
@pytest.mark.parametrize("window", [False, True])
@pytest.mark.parametrize("variant", ["mixed", "sliced", "nulled", "one_each", "empty"])
def test_threads_and_speed_paths_give_the_plain_frame(inputs, variant, backend, window):
    kw: dict[str, Any] = {"dtype_backend": backend, **(WINDOW if window else {})}
    tables = inputs[variant]
    serial, serial_warned = _build(tables, threaded=False, **kw)
    threaded, threaded_warned = _build(tables, threaded=True, **kw)
    plain, plain_warned = _build(tables, threaded=False, plain=True, **kw)
    _assert_same(threaded, serial)
    _assert_same(serial, plain)
    assert threaded_warned == serial_warned == plain_warned
    if variant != "empty":
        assert len(serial) > 0 and serial["id"].is_unique
    if window and len(serial):
        stamps = serial["timestamp"].map(lambda t: int(t.value // 10**6))  # epoch ms
        assert stamps.min() >= WINDOW["start"] and stamps.max() < WINDOW["end"]


@pytest.mark.parametrize("backend", [None, "numpy_nullable", "pyarrow"])
def test_a_sparse_float_keeps_minus_zero_and_its_nulls(inputs, backend):
    df, _ = _build(inputs["mixed"], threaded=True, dtype_backend=backend)
    rows = df.set_index("id")
    neg = rows["payload.odd.neg"]
    assert neg.notna().sum() == 1 and neg["x6"] == 0.0
    assert np.signbit(float(neg["x6"]))  # -0.0, not 0.0
    assert np.signbit(float(rows.loc["x3", "payload.details.w"]))
    if backend is None:
        assert neg.dtype == np.float64 and np.isnan(neg["x5"])
    else:
        assert neg["x5"] is pd.NA


# -- the placement caches, alone and shared by threads ----------------------------------------

_TEXT = st.text(alphabet="abcé€", max_size=4)


@st.composite
def sparse_columns(draw: st.DrawFn) -> tuple:
    length = draw(st.integers(1, 400))
    count = draw(st.integers(1, min(length, 40)))
    rows = sorted(draw(st.lists(st.integers(0, length - 1), min_size=count, max_size=count,
                                unique=True)))  # fmt: skip
    columns = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["text", "large", "float", "int"]))
        value = _TEXT if kind in ("text", "large") else st.floats(allow_nan=False)
        if kind == "int":
            value = st.integers(-(2**63), 2**63 - 1)
        values = draw(st.lists(st.none() | value, min_size=len(rows), max_size=len(rows)))
        if not draw(st.booleans()):
            values = [0.0 if v is None and kind == "float" else v for v in values]
        columns.append((kind, values, draw(st.integers(0, 2)), draw(st.booleans())))
    return length, rows, columns


_TYPES = {"text": pa.string(), "large": pa.large_string(), "float": pa.float64(),
          "int": pa.int64()}  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(sparse_columns())
def test_columns_spread_on_one_set_of_rows_share_its_caches_correctly(case):
    length, rows, columns = case
    placed = _Rows(np.array(rows, dtype=np.int64), length)
    for kind, values, pad, large_text in columns:
        padded = pa.array([None] * pad + values + [None] * pad, _TYPES[kind]).slice(pad, len(rows))
        got = _spread(padded, placed, large_text=large_text)
        got.validate(full=True)
        expected: list = [None] * length
        for row, value in zip(rows, values):
            expected[row] = value
        assert got.to_pylist() == expected
        assert got.null_count == sum(v is None for v in expected)


def test_two_threads_filling_a_placement_at_once_get_the_same_columns():
    rng = np.random.default_rng(3)
    sizes = [5, 4000, 30]
    order = pa.array(rng.permutation(sum(sizes)))
    texts = {
        "a": pa.array([f"a{i}" for i in range(5)]),
        "c": pa.array(["c" * (i % 4) for i in range(30)]),
    }
    floats = {"a": pa.array([-0.0, 1.0, None, 2.0, 3.0]), "c": pa.array(np.arange(30.0))}
    reference = Layout(["a", "b", "c"], sizes, order)
    expected_text = reference.take(texts, pa.string(), True).to_pylist()
    expected_float = reference.take(floats, pa.float64()).to_numpy(zero_copy_only=False)
    failures: list[str] = []
    for _ in range(60):
        layout = Layout(["a", "b", "c"], sizes, order)
        barrier = threading.Barrier(4)

        def run(which: int, layout: Layout = layout, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            if which % 2:
                got = layout.spread_floats(floats)
                if got is None or not np.array_equal(got, expected_float, equal_nan=True):
                    failures.append("floats")
                elif not np.array_equal(np.signbit(got), np.signbit(expected_float)):
                    failures.append("signbit")
            else:
                column = layout.take(texts, pa.string(), True)
                column.validate(full=True)
                if column.to_pylist() != expected_text:
                    failures.append("text")

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert list(layout._places) == [("a", "c")]  # one placement, however many threads
    assert failures == []


# -- the Arrow pool and gc, over nested and concurrent reads --------------------------------


@pytest.mark.filterwarnings("ignore::croct_pandas.errors.SchemaWarning")
def test_concurrent_nested_reads_restore_the_pool_and_gc_once_all_end(inputs, monkeypatch):
    monkeypatch.setattr(frame_threads, "_THREADED_ROWS", 0)
    before = pa.default_memory_pool().backend_name
    start = threading.Barrier(4)
    inside: list[str] = []
    gc_inside: list[bool] = []
    errors: list[BaseException] = []

    def read(depth: int) -> None:
        try:
            start.wait(10)
            for round_ in range(3):
                with paused_gc(), system_arrow_pool():
                    if depth and round_ % 2:
                        with system_arrow_pool(), paused_gc():
                            build_frame(inputs["one_each"])
                    frame = build_frame(inputs["mixed"][:6])
                    inside.append(pa.default_memory_pool().backend_name)
                    gc_inside.append(gc.isenabled())
                    assert len(frame) > 0
        except BaseException as error:  # handed to the test below
            errors.append(error)

    threads = [threading.Thread(target=read, args=(i % 2,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert set(inside) == {"system" if DEFAULT_IS_MIMALLOC else before}
    assert gc_inside and not any(gc_inside)
    assert pa.default_memory_pool().backend_name == before
    assert gc.isenabled()


def test_a_gc_the_user_turned_off_stays_off_and_the_pool_follows_nesting():
    gc.disable()
    try:
        with paused_gc():
            with paused_gc():
                pass
            assert not gc.isenabled()
        assert not gc.isenabled()  # was off before: not turned on by the block
    finally:
        gc.enable()
    with paused_gc():
        raised = False
        try:
            with paused_gc(), system_arrow_pool():
                raise RuntimeError("inside")
        except RuntimeError:
            raised = True
        assert raised and not gc.isenabled()  # the outer block goes on
    assert gc.isenabled()


@pytest.mark.skipif(not DEFAULT_IS_MIMALLOC, reason="pyarrow's default pool is not mimalloc")
def test_a_proxy_pool_the_user_set_sees_the_reads_allocations():
    saved = pa.default_memory_pool()
    proxy = pa.proxy_memory_pool(saved)
    pa.set_memory_pool(proxy)
    try:
        with system_arrow_pool():
            array = pa.allocate_buffer(50_000 * 8)  # through the default pool
            counted = proxy.bytes_allocated()
            del array
        assert counted >= 50_000 * 8
    finally:
        pa.set_memory_pool(saved)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_child_forked_as_another_thread_starts_a_read_has_gc_on(monkeypatch):
    entered, release = threading.Event(), threading.Event()
    original = process_state._GC._apply

    def slow_apply() -> Any:
        state = original()
        entered.set()
        release.wait(5)  # a fork handler that takes the lock waits out this timeout
        return state

    monkeypatch.setattr(process_state._GC, "_apply", slow_apply)

    def starting_read() -> None:
        with paused_gc():
            pass

    thread = threading.Thread(target=starting_read)
    thread.start()
    assert entered.wait(10)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report gc's state, leave without the parent's cleanup
        os.close(read)
        os.write(write, str(gc.isenabled()).encode())
        os._exit(0)
    os.close(write)
    release.set()
    thread.join(10)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert gc.isenabled()
    assert reported == "True"


# -- columns that a frame name holds twice ---------------------------------------------------

# types that spec 0.8.0 lists and the schema does not know (croct-export-api section 3.27): their
# payload paths are those of known types' schema columns
EIGHT = [
    {"eventId": "p1", "timestamp": T0 + 13 * HOUR, "sessionId": "s", "userId": "u",
     "context": None, "payload": {"type": "productOrdered",
                                  "order": {"orderId": "o1", "currency": "USD", "total": 10.5,
                                            "quantity": 1},
                                  "item": {"index": 0, "quantity": 1, "total": 10.5}}},
    {"eventId": "p2", "timestamp": T0 + 13 * HOUR + 1, "sessionId": "s", "userId": "u",
     "context": None, "payload": {"type": "userProfileChanged",
                                  "patch": {"operations": [{"type": "set", "path": "a",
                                                            "value": "1"}]}}},
]  # fmt: skip


@pytest.mark.parametrize("event", EIGHT, ids=["productOrdered", "userProfileChanged"])
def test_an_unknown_type_sharing_a_schema_path_keeps_its_values(event):
    known = _event({"@type": "orderPlaced", "order": {"orderId": "k", "total": 3}}, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SchemaWarning)  # a patch of another shape falls back
        df = build_frame(normalize_items([event, known]).tables.items())
    assert df.columns.is_unique
    row = df.iloc[0]
    if event["payload"]["type"] == "productOrdered":
        # the unknown type's values join the known type's columns, which keep their dtypes
        assert row["payload.order.orderId"] == "o1" and row["payload.order.total"] == 10.5
        assert str(df["payload.order.total"].dtype) == "float64"
        assert df.loc[1, "payload.order.orderId"] == "k" and df.loc[1, "payload.order.total"] == 3
    else:
        assert row["payload.patch.operations"] is not None


def test_a_read_of_a_productordered_event_returns_it(tmp_path):
    with Emulator(events=EIGHT[:1], dialect="0.8.0") as emu:
        df = cp.read_croct_events(
            "2026-01-01", "2026-01-02", api_key=emu.api_key, base_url=emu.url,
            cache=False, progress=False,
        )  # fmt: skip
    assert list(df["id"]) == ["p1"]
    assert df.loc[0, "payload.order.orderId"] == "o1"


def test_an_unknown_top_level_type_key_is_not_lost():
    event = _event({"@type": "tabOpened", "tabId": "t"}, 0, type="kept-somewhere")
    with pytest.warns(SchemaWarning, match="type_raw"):
        df = build_frame(normalize_items([event]).tables.items())
    assert df.loc[0, "type_raw"] == "kept-somewhere" and df.loc[0, "type"] == "tabOpened"


# -- the key fingerprint memo and the cache files -------------------------------------------


def test_the_key_reaches_no_file_log_or_repr_through_the_memo(tmp_path, caplog):
    key = "edge-secret-key-7c1d0e"
    caplog.set_level(logging.DEBUG)
    with Emulator(users=10, days=1, api_key=key) as emu:
        for _ in range(2):  # the second read finds its fingerprint in the memo
            df = cp.read_croct_events(
                "2026-01-01", "2026-01-02", api_key=key, base_url=emu.url,
                cache=str(tmp_path), progress=False,
            )  # fmt: skip
        with pytest.raises(cp.CroctError) as failure:
            cp.read_croct_events(
                "2026-01-01", "2026-01-02", api_key=key + "-wrong", base_url=emu.url,
                cache=str(tmp_path), progress=False,
            )  # fmt: skip
    assert len(df) > 0
    digests = list(client_module._FINGERPRINTS)
    assert digests and all(len(d) == 32 for d in digests)
    secrets_ = [key.encode(), *digests, *(d.hex().encode() for d in digests)]
    for folder, _, files in os.walk(tmp_path):
        for name in files:
            with open(os.path.join(folder, name), "rb") as fh:
                data = fh.read()
            assert not any(s in data for s in secrets_), name
    shown = caplog.text + repr(client_module._FINGERPRINTS) + str(failure.value) + repr(df.attrs)
    assert key not in shown
    assert not any(d.hex() in caplog.text for d in digests)
    # the memo answers what PBKDF2 gives, and another key gets its own answer
    client = cp.Client(key, base_url="http://127.0.0.1:9")
    expected = hashlib.pbkdf2_hmac("sha256", key.encode(), b"s\0http://127.0.0.1:9", 50).hex()
    assert client.key_fingerprint(b"s", 50) == expected == client.key_fingerprint(b"s", 50)
    assert cp.Client(key + "x", base_url="http://127.0.0.1:9").key_fingerprint(b"s", 50) != (
        expected
    )


def test_partitions_are_written_plain_and_snappy_ones_still_read(tmp_path, monkeypatch):
    tables = dict(normalize_items(generate_events(users=20, days=1, seed=2)).tables.items())
    table = tables["pageOpened"]
    plain = str(tmp_path / "plain.parquet")
    cache_store.write_partition(plain, table, {"0.7"}, str(tmp_path / "_tmp"))
    meta = pq.ParquetFile(plain).metadata
    codecs = {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    assert codecs == {"UNCOMPRESSED"}
    monkeypatch.setattr(cache_store, "_CODEC", "snappy")  # a cache an earlier version wrote
    older = str(tmp_path / "older.parquet")
    cache_store.write_partition(older, table, {"0.7"}, str(tmp_path / "_tmp"))
    for path in (plain, older):
        got = cache_store.read_partition(path, "pageOpened")
        assert got is not None
        assert got[0].equals(table) and got[1] == {"0.7"}
