"""The fast paths of frame assembly give what the plain ones give.

``Layout.take`` spreads a column's values onto the frame's rows with numpy instead of a take
with a mostly-null index; the gathers may run on worker threads. Both are checked against
straightforward references: row-by-row Python for the layout, the single-threaded build for
the frame (same values, dtypes, warnings and order of warnings).
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
import warnings
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from croct_pandas import frame_threads as frame_module
from croct_pandas.emulator import generate_events
from croct_pandas.errors import SchemaWarning
from croct_pandas.frame import build_frame
from croct_pandas.frame_infer import _categorical
from croct_pandas.frame_layout import Layout, _Rows, _spread
from croct_pandas.normalize import normalize_items

T0 = 1767225600000  # 2026-01-01T00:00:00Z

# (Arrow type, a strategy for one of its values)
KINDS = [
    (pa.string(), st.text(max_size=6)),
    (pa.large_string(), st.text(max_size=6)),
    (pa.binary(), st.binary(max_size=6)),
    (pa.float64(), st.floats(allow_nan=False)),
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.int8(), st.integers(-128, 127)),
    (pa.timestamp("ms", tz="UTC"), st.integers(0, 2**40)),
    (pa.bool_(), st.booleans()),
    (pa.list_(pa.string()), st.lists(st.text(max_size=3), max_size=3)),
]


def _chunked(values: list, type_: pa.DataType, cuts: list[int], pad: int) -> pa.ChunkedArray:
    """``values`` as chunks cut at ``cuts``, each a slice of a longer array (offset != 0)."""
    bounds = [0, *sorted(c % (len(values) + 1) for c in cuts), len(values)]
    chunks = []
    for low, high in itertools.pairwise(bounds):
        padded = pa.array([None] * pad + values[low:high] + [None] * pad, type_)
        chunks.append(padded.slice(pad, high - low))
    return pa.chunked_array(chunks, type_)


@st.composite
def layouts(draw: st.DrawFn) -> tuple:
    type_, value = draw(st.sampled_from(KINDS))
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
    types = [f"t{i}" for i in range(len(sizes))]
    order = draw(st.permutations(range(sum(sizes))))
    present = {}
    for t, n in zip(types, sizes):
        if not draw(st.booleans()):
            continue
        values = draw(st.lists(st.none() | value, min_size=n, max_size=n))
        cuts = draw(st.lists(st.integers(0, n), max_size=2))
        present[t] = _chunked(values, type_, cuts, pad=draw(st.integers(0, 2)))
    return types, sizes, list(order), present, type_, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(layouts())
def test_take_puts_each_value_on_its_row(case):
    types, sizes, order, present, type_, large_text = case
    layout = Layout(types, sizes, pa.array(order, pa.int64()))
    got = layout.take(present, type_, large_text)
    got.validate(full=True)
    expected_type = pa.large_string() if large_text and type_ == pa.string() else type_
    assert got.type == expected_type
    # row by row: frame row r holds source row order[r], of the type whose block holds it
    source = []
    for t, n in zip(types, sizes):
        source.extend(present[t].to_pylist() if t in present else [None] * n)
    expected = [source[i] for i in order]
    assert got.to_pylist() == expected
    assert got.null_count == sum(v is None for v in expected)


def test_the_placement_of_a_set_of_types_is_built_once():
    layout = Layout(["a", "b", "c"], [2, 2, 1], pa.array([4, 0, 2, 1, 3]))
    first = layout.take({"a": pa.array(["x", "y"]), "c": pa.array(["z"])}, pa.string())
    second = layout.take({"a": pa.array([1, 2]), "c": pa.array([3])}, pa.int64())
    assert first.to_pylist() == ["z", "x", None, "y", None]
    assert second.to_pylist() == [3, 1, None, 2, None]
    assert list(layout._places) == [("a", "c")]


def test_types_with_only_nulls_and_no_types_give_nulls_of_the_type():
    layout = Layout(["a", "b"], [2, 1], pa.array([2, 0, 1]))
    got = layout.take({"a": pa.array([None, None], pa.float64())}, pa.float64())
    assert got.type == pa.float64() and got.to_pylist() == [None, None, None]
    assert layout.take({}, pa.string()).to_pylist() == [None, None, None]


def test_spread_of_values_with_an_offset_reads_from_the_offset():
    values = pa.array(["skip", "a", None, "bc", "skip"]).slice(1, 3)
    got = _spread(values, _Rows(np.array([0, 2, 5]), 6), large_text=True)
    got.validate(full=True)
    assert got.type == pa.large_string()
    assert got.to_pylist() == ["a", None, None, None, None, "bc"]
    stamps = pa.array([1, 2, 3], pa.timestamp("ms", tz="UTC")).slice(1)
    got = _spread(stamps, _Rows(np.array([1, 3]), 4))
    assert got.to_pylist() == [
        None,
        datetime(1970, 1, 1, 0, 0, 0, 2000, tzinfo=timezone.utc),
        None,
        datetime(1970, 1, 1, 0, 0, 0, 3000, tzinfo=timezone.utc),
    ]


def test_categorical_keeps_nulls_and_warns_once_of_new_values():
    values = pa.array(["PAID", None, "refunded", "paid", "refunded"])
    with pytest.warns(SchemaWarning, match="'PAID', 'refunded'") as record:
        got = _categorical("payload.order.status", "orderStatus", values)
    assert len(record) == 1
    assert got.dictionary.to_pylist() == ["PAID", "completed", "paid", "placed", "refunded"]
    assert got.indices.type == pa.int32()
    assert got.to_pylist() == ["PAID", None, "refunded", "paid", "refunded"]


def _event(payload: dict, i: int, **core) -> dict:
    base = {"id": f"x{i}", "timestamp": T0 + i, "sessionId": "s1", "userId": "u1"}
    return {**base, **core, "context": None, "payload": payload}


ODD = [
    _event({"@type": "orderPlaced", "order": {"status": "REFUNDED"}}, 0),
    _event({"@type": "orderPlaced", "order": {"status": "PAID", "installments": "two"}}, 1),
    _event({"@type": "productViewed", "product": {"displayPrice": "free"}}, 2),
    _event({"@type": "eventOccurred", "name": "a", "details": {"v": 1}}, 3),
    _event({"@type": "eventOccurred", "name": "b", "details": {"v": "one"}}, 4),
    _event({"@type": "tabOpened", "tabId": "t"}, 5, timestamp="yesterday"),
    _event({"@type": "postViewed", "post": {"postId": "p", "tags": ["a"]}}, 6),
]


def _build(threaded: bool, monkeypatch: pytest.MonkeyPatch, tables, **kw):
    monkeypatch.setattr(frame_module, "_THREADED_ROWS", 0 if threaded else 10**9)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        df = build_frame(tables, **kw)
    return df, [(str(w.message), w.category, w.filename) for w in record]


@pytest.fixture(scope="module")
def tables() -> list:
    events = generate_events(users=40, days=2, seed=5)
    first = normalize_items(events[: len(events) // 2] + ODD).tables.items()
    second = normalize_items(events[len(events) // 3 :] + ODD[:3]).tables.items()  # overlaps
    return [*first, *second]


WARNED = ("order.status", "order.installments", "product.displayPrice", "details.v")


@pytest.mark.parametrize(
    ("backend", "window"),
    [(None, False), ("numpy_nullable", True), ("pyarrow", True)],
)
def test_threads_give_the_same_frame_and_warnings(tables, backend, window, monkeypatch):
    kw = {"dtype_backend": backend, "attrs": {"a": 1}}
    if window:  # the row with a bad timestamp falls outside, with its warning
        kw.update(start=T0 - 1, end=T0 + 86_400_000)
    serial, serial_warnings = _build(False, monkeypatch, tables, **kw)
    threaded, threaded_warnings = _build(True, monkeypatch, tables, **kw)
    pd.testing.assert_frame_equal(threaded, serial, check_exact=True)
    assert list(threaded.dtypes.astype(str)) == list(serial.dtypes.astype(str))
    assert threaded.attrs == serial.attrs == {"croct": {"a": 1}}
    assert threaded_warnings == serial_warnings
    messages = " ".join(m for m, _, _ in serial_warnings)
    assert all(f"payload.{name}" in messages for name in WARNED)
    assert ("'timestamp'" in messages) is not window
    assert all(category is SchemaWarning for _, category, _ in serial_warnings)
    assert threaded["id"].is_unique and len(threaded) > 100


@pytest.mark.filterwarnings("ignore::croct_pandas.errors.SchemaWarning")
def test_text_columns_hold_large_string_for_pandas_and_string_for_pyarrow(tables):
    df = build_frame(tables)
    assert df["userId"].dtype == pd.StringDtype("pyarrow")
    assert df["userId"].array._pa_array.type == pa.large_string()
    arrow = build_frame(tables, dtype_backend="pyarrow")
    assert arrow["userId"].dtype == pd.ArrowDtype(pa.string())


@pytest.mark.filterwarnings("ignore::croct_pandas.errors.SchemaWarning")
def test_an_error_in_a_threaded_gather_reaches_the_caller(tables, monkeypatch):
    def broken(self, present, type_, large_text=False):
        raise pa.ArrowInvalid("no")

    monkeypatch.setattr(frame_module, "_THREADED_ROWS", 0)
    monkeypatch.setattr(Layout, "take", broken)
    with pytest.raises(pa.ArrowInvalid, match="no"):
        build_frame(tables)


def _build_in_child(queue) -> None:
    frame_module._THREADED_ROWS = 0
    events = normalize_items(generate_events(users=5, days=1, seed=1)).tables.items()
    queue.put(len(build_frame(events)))


@pytest.mark.filterwarnings("ignore::croct_pandas.errors.SchemaWarning")
@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_gets_its_own_threads(tables, monkeypatch):
    monkeypatch.setattr(frame_module, "_THREADED_ROWS", 0)
    build_frame(tables)  # the parent's pool now exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_build_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=60) > 0  # a pool without threads would never answer
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()


def _reference(values: list, rows: list[int], length: int) -> list:
    out: list = [None] * length
    for value, row in zip(values, rows):
        out[row] = value
    return out


@pytest.mark.parametrize("large_text", [False, True])
@pytest.mark.parametrize("count", [1, 3, 40])
def test_sparse_text_repeats_its_offsets_and_shares_the_bitmap(large_text, count):
    # on fewer than 1 in 12 rows the offsets are repeated, not summed over the frame
    length = 600
    rows = np.sort(np.random.default_rng(count).choice(length, count, replace=False))
    rows[0] = 0 if count > 2 else rows[0]  # a value on the first row
    rows[-1] = length - 1 if count > 1 else rows[-1]  # and on the last
    texts = [f"v{i}" * (i % 3) for i in range(count)]
    with_nulls = [None if i % 4 == 1 else t for i, t in enumerate(texts)]
    padded = pa.array(["pad", *texts, "pad"]).slice(1, count)  # an offset into its buffers

    placed = _Rows(rows, length)
    for values, expected in ((padded, texts), (pa.array(with_nulls), with_nulls)):
        got = _spread(values, placed, large_text=large_text)
        got.validate(full=True)
        assert got.type == (pa.large_string() if large_text else pa.string())
        assert got.to_pylist() == _reference(expected, list(rows), length)
    # a second column on the same rows reuses the bitmap and still reads its own values
    other = pa.array([str(i) for i in range(count)])
    again = _spread(other, placed, large_text=large_text)
    assert again.to_pylist() == _reference(other.to_pylist(), list(rows), length)
    assert again.buffers()[0] is not None and again.null_count == length - count


def test_floats_of_some_types_go_straight_to_numpy_with_nan_for_null():
    layout = Layout(["a", "b", "c"], [2, 2, 1], pa.array([2, 0, 4, 1, 3]))
    present = {
        "a": pa.chunked_array([pa.array([1.5, None]), pa.array([], pa.float64())]),
        "c": pa.array([-0.0]),
    }
    got = layout.spread_floats(present)
    expected = layout.take(present, pa.float64()).to_numpy(zero_copy_only=False)
    assert got is not None and got.dtype == np.float64 and got.flags.writeable
    np.testing.assert_array_equal(got, expected)
    assert np.signbit(got[np.flatnonzero(~np.isnan(got) & (got == 0))]).all()  # -0.0 kept
    # every type, or none: the Arrow path gives the column
    assert layout.spread_floats({t: pa.array([1.0] * n) for t, n in zip("abc", [2, 2, 1])}) is None
    assert layout.spread_floats({"a": pa.array([None, None], pa.float64())}) is None
