"""Interval algebra, coverage per event type and settledness of the cache manifest."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from croct_pandas.cache_manifest import (
    ALL_TYPES,
    BEGIN,
    Manifest,
    Record,
    intersect,
    subtract,
    union,
)

intervals = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda t: (min(t), max(t))),
    max_size=6,
)


def points(ivs: list[tuple[int, int]]) -> set[int]:
    return {x for s, e in ivs for x in range(s, e)}


def canonical(ivs: list[tuple[int, int]]) -> bool:
    return all(s < e for s, e in ivs) and all(a[1] < b[0] for a, b in itertools.pairwise(ivs))


@given(intervals, intervals)
def test_interval_algebra_matches_sets_of_points(a, b):
    for result, expected in [
        (union(a + b), points(a) | points(b)),
        (subtract(a, b), points(a) - points(b)),
        (intersect(a, b), points(a) & points(b)),
    ]:
        assert points(result) == expected
        assert canonical(result)


def test_all_types_coverage_serves_any_subset_but_a_subset_does_not_serve_all():
    m = Manifest("v")
    m.record(None, (0, 100), fetched_at=1000)
    assert m.covered(["pageOpened", "orderPlaced"], settle_ms=0) == [(0, 100)]
    m2 = Manifest("v")
    m2.record(["pageOpened"], (0, 100), fetched_at=1000)
    assert m2.covered(None, settle_ms=0) == []
    assert m2.covered(["pageOpened", "orderPlaced"], settle_ms=0) == []
    assert m2.covered(["pageOpened"], settle_ms=0) == [(0, 100)]


def test_a_set_of_types_is_covered_where_every_type_is():
    m = Manifest("v")
    m.record(["a", "b"], (0, 50), fetched_at=1000)
    m.record(["b"], (50, 80), fetched_at=1000)
    m.record(None, (70, 100), fetched_at=1000)
    assert m.covered(["b"], settle_ms=0) == [(0, 100)]
    assert m.covered(["a", "b"], settle_ms=0) == [(0, 50), (70, 100)]


def test_settledness_is_judged_per_call_from_end_and_fetch_time():
    m = Manifest("v")
    m.record(None, (0, 1000), fetched_at=1500)
    # the part that ended at least `settle` before the fetch is final, the rest provisional
    assert m.covered(None, settle_ms=0) == [(0, 1000)]
    assert m.covered(None, settle_ms=800) == [(0, 700)]
    assert m.covered(None, settle_ms=2000) == []
    # everything held counts when the caller asks what is held, settled or not
    assert m.covered(None, settle_ms=None) == [(0, 1000)]


def test_a_newer_fetch_replaces_the_older_records_it_overlaps():
    m = Manifest("v")
    m.record(None, (0, 100), fetched_at=1)
    m.record(["x"], (20, 40), fetched_at=2)
    m.record(None, (30, 60), fetched_at=3)
    assert m.coverage[ALL_TYPES] == [Record(0, 30, 1), Record(30, 60, 3), Record(60, 100, 1)]
    # the all-types refetch at 3 superseded x's own record where they overlap
    assert m.coverage["x"] == [Record(20, 30, 2)]
    assert [(r.start, r.end, r.fetched_at) for r in m.records("x")] == [
        (0, 20, 1),
        (20, 30, 2),
        (30, 60, 3),
        (60, 100, 1),
    ]
    assert m.oldest_fetch(["x"], (20, 60)) == 2
    assert m.oldest_fetch(None, (30, 60)) == 3


def test_neighbouring_slices_of_one_export_merge_into_one_record():
    m = Manifest("v")
    for start in range(0, 100, 10):
        m.record(None, (start, start + 10), fetched_at=7)
    assert m.coverage[ALL_TYPES] == [Record(0, 100, 7)]


def test_json_round_trip_keeps_the_beginning_of_data_as_null():
    m = Manifest("v", metadata={"applicationSlug": "a"}, base_url="http://x")
    m.record(None, (BEGIN, 500), fetched_at=9)
    m.record(["pageOpened"], (500, 600), fetched_at=10)
    doc = m.to_json()
    assert doc["coverage"]["*"] == [[None, 500, 9]]
    again = Manifest.from_json(doc)
    assert again == m


@pytest.mark.parametrize("settle", [0, 5, 50])
def test_final_part_never_reaches_past_the_fetch_minus_settle(settle):
    rec = Record(0, 100, 120)
    start, end = rec.final_part(settle)
    assert start == 0
    assert end == min(100, 120 - settle)
