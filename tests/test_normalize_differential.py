"""The three normalising paths against each other and against the specs, one wire leaf at a time.

Every known leaf of every event type (core keys, context, payload at every depth, list elements
such as cart and order items, free-form values) gets adversarial values (booleans, integral
floats, -0.0, integers at the edges of float64 and int64, numeric strings of every spelling,
other shapes, long and non-ASCII text). The same two events (the emulator's richest event of
the type, and a copy with the one leaf changed) then go through the typed path (as a response
body), the dict fast path and the value-by-value path, which must give equal tables; the
value-by-value table must follow :func:`wire_mutations.expected` (a value the schema accepts is
kept exactly, anything else is null and kept as sent in ``_croct_raw``). Frame-level rules (one
warning per contradicted column, text fallback, the ``to_events()`` round trip) are checked on a
leaf of each kind. The defects this suite found have tests of their own at the end.
"""

from __future__ import annotations

import warnings
from typing import Any

import orjson
import pandas as pd
import pytest
from wire_mutations import (
    ADVERSARIAL,
    REJECT,
    Leaf,
    base_event,
    body_of,
    column_values,
    differences,
    expected,
    leaves,
    mutate,
    plain,
    raw_of,
    three_paths,
)

import croct_pandas  # noqa: F401  (registers df.croct)
from croct_pandas.errors import SchemaWarning
from croct_pandas.frame import build_frame
from croct_pandas.normalize_worker import normalize_bodies
from croct_pandas.schema import EVENT_TYPES

#: Types whose core and context leaves are swept (they are the same for every type).
CORE_TYPES = ("tabOpened", "locationDetected")


def _swept_leaves() -> dict[str, list[Leaf]]:
    """Each type's leaves, without the ones an earlier type already covered (carts share
    their fields, every type shares the core keys and the context)."""
    seen: set[tuple[Any, ...]] = set()
    out: dict[str, list[Leaf]] = {}
    for event_type in EVENT_TYPES:
        mine = []
        for leaf in leaves(event_type):
            shared = leaf.path[0] not in ("payload",)
            if shared and event_type not in CORE_TYPES:
                continue
            key = (leaf.path, leaf.kind) if not shared else (event_type, leaf.path)
            if key in seen:
                continue
            seen.add(key)
            mine.append(leaf)
        out[event_type] = mine
    return out


SWEPT = _swept_leaves()

_PYTHON_INTEGERS = (" 5", "1_000")
_PYTHON_NUMBERS = (*_PYTHON_INTEGERS, "NaN", "-Infinity")


def _check_oracle(leaf: Leaf, value: Any, paths: Any) -> str | None:
    """The changed row (row 1) of the value-by-value table against the specs."""
    table = paths.slow[leaf.event_type]
    raw = raw_of(table, 1)
    if leaf.kind in ("list", "map", "free") or leaf.in_list:
        if leaf.kind == "free":
            return None  # free-form values are inferred in the frame, checked there
        # a list or object is kept whole, or kept raw whole: nothing is lost either way
        cell = column_values(table, leaf.column)[1]
        if value is not None and cell is None and leaf.column not in raw:
            return f"{leaf.label}={value!r}: null and not in _croct_raw"
        return None
    want = expected(leaf, value)
    if leaf.kind == "id":
        want = "sha1" if value is None else want
    cell = column_values(table, leaf.column)[1]
    if want is REJECT:
        # an id is never null: one that is not text reads as its JSON text
        held = None
        if leaf.kind == "id":
            held = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        if cell != held or raw.get(leaf.column, REJECT) != value:
            return f"{leaf.label}={value!r}: cell {cell!r}, raw {raw}"
    elif want == "sha1":
        if not str(cell).startswith("sha1:"):
            return f"{leaf.label}=null: id {cell!r}"
    elif cell != plain(want) or leaf.column in raw:
        return f"{leaf.label}={value!r}: cell {cell!r} (want {want!r}), raw {raw}"
    return None


@pytest.mark.parametrize("event_type", [t for t in EVENT_TYPES if SWEPT[t]])
def test_three_paths_agree_and_follow_the_specs_leaf_by_leaf(event_type):
    problems: list[str] = []
    typed_taken = 0
    for leaf in SWEPT[event_type]:
        for value in ADVERSARIAL:
            events = mutate(event_type, leaf, value)
            try:
                body_of(events)
            except TypeError:
                continue  # beyond 64 bits in a place orjson cannot write from Python
            paths = three_paths(events)
            for name, got in (("dict", paths.dicts), ("typed", paths.typed)):
                if got is not None:
                    problems += [
                        f"{name} {leaf.label}={value!r}: {d}" for d in differences(got, paths.slow)
                    ]
            typed_taken += paths.typed is not None
            problem = _check_oracle(leaf, value, paths)
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems[:20])
    # the typed path must have been compared at all (it declines most adversarial values)
    assert typed_taken > 0


def _unknown_key_places(event: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every object of the event with a closed set of keys (with its column prefix), list
    elements included; free-form objects take any key and are left out."""
    out: list[tuple[dict[str, Any], str]] = []
    maps = {leaf.column + "." for t in EVENT_TYPES for leaf in leaves(t) if leaf.kind == "map"}

    def walk(obj: Any, prefix: str) -> None:
        if isinstance(obj, dict) and prefix not in maps:
            out.append((obj, prefix))
            for key, value in obj.items():
                if key != "@type":
                    walk(value, f"{prefix}{key}.")
        elif isinstance(obj, list) and obj:
            walk(obj[0], prefix)

    walk(event, "")
    return out


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_unknown_keys_at_every_level_agree_and_are_kept(event_type):
    count = len(_unknown_key_places(base_event(event_type)))
    for i in range(count):
        changed = base_event(event_type)
        changed["id"] += "-odd"
        obj, prefix = _unknown_key_places(changed)[i]
        obj["zzUnknown"] = {"n": 2**53 + 1, "t": "é"}
        paths = three_paths([base_event(event_type), changed])
        for got in (paths.dicts, paths.typed):
            if got is not None:
                assert not differences(got, paths.slow), (prefix, differences(got, paths.slow))
        raw = orjson.dumps(raw_of(paths.slow[event_type], 1)).decode()
        # kept: under its own path, or inside the list or object it belongs to
        assert 'zzUnknown":{"n":9007199254740993,"t":"é"}' in raw, (prefix, raw)


ENUM_SPELLINGS = [
    ("tabVisibilityChanged", "payload.visibility", ["VISIBLE", "visible", "Hidden", "HIDDEN"]),
    ("clientDetected", "payload.client.browser.type", ["IN_APP", "in-app", "In_App", "WEB"]),
    ("clientDetected", "payload.client.device.category", ["DESKTOP", "Mobile", "bot"]),
    ("locationDetected", "payload.location.source", ["GPS", "ip", "Browser"]),
    ("locationDetected", "payload.location.continent", ["SA", "EU"]),
    ("orderPlaced", "payload.order.status", ["PAID", "placed", "Completed"]),
]


def _leaf(event_type: str, column: str) -> Leaf:
    return next(leaf for leaf in leaves(event_type) if leaf.column == column)


def _batch(leaf: Leaf, values: list[Any]) -> list[dict[str, Any]]:
    """One event per value, each with its own id."""
    events = []
    for i, value in enumerate(values):
        event = mutate(leaf.event_type, leaf, value)[1]
        event["id"] += f"-{i}"
        events.append(event)
    return events


def _frame(events: list[dict[str, Any]], event_type: str) -> tuple[pd.DataFrame, list[str]]:
    page = normalize_bodies([body_of(events)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = build_frame(page.tables.items(), events=[event_type])
    return df, [str(w.message) for w in caught if issubclass(w.category, SchemaWarning)]


def _by_id(df: pd.DataFrame, events: list[dict[str, Any]], column: str) -> list[Any]:
    cells = dict(zip(df["id"].astype(str), df[column].astype(object)))
    return [None if pd.isna(cells[e["id"]]) else cells[e["id"]] for e in events]


@pytest.mark.parametrize(("event_type", "column", "spellings"), ENUM_SPELLINGS)
def test_enum_spellings_become_the_schema_category(event_type, column, spellings):
    leaf = _leaf(event_type, column)
    events = _batch(leaf, spellings)
    paths = three_paths(events)
    for got in (paths.dicts, paths.typed):
        if got is not None:
            assert not differences(got, paths.slow)
    df, caught = _frame(events, event_type)
    assert not caught
    assert _by_id(df, events, column) == [expected(leaf, s) for s in spellings]
    assert isinstance(df[column].dtype, pd.CategoricalDtype)


#: A leaf of each kind and depth, for the frame-level rules.
FRAME_LEAVES = [
    ("tabOpened", "sessionId"),
    ("tabOpened", "context.url"),
    ("tabOpened", "payload.tabId"),
    ("clientDetected", "payload.client.device.operatingSystem.name"),
    ("orderPlaced", "payload.order.installments"),
    ("cartViewed", "payload.cart.subtotal"),
    ("locationDetected", "payload.location.coordinates.latitude"),
    ("nothingChanged", "payload.sinceTime"),
    ("goalCompleted", "payload.value"),
    ("locationDetected", "payload.location.population"),
    ("slotPersonalized", "payload.personalization.slotVersion.minorVersion"),
    ("pageOpened", "payload.preferredLanguages"),
]


def _split(leaf: Leaf) -> tuple[list[Any], list[Any]]:
    """The adversarial values the leaf accepts and those it rejects."""
    accepted: list[Any] = []
    rejected: list[Any] = []
    for value in ADVERSARIAL:
        if value is None:
            continue
        try:
            orjson.dumps(value)
        except TypeError:
            continue  # beyond 64 bits: orjson cannot write it from Python
        if leaf.kind == "time" and value == -(2**63):
            continue  # test_the_smallest_int64_time_is_not_nat
        (rejected if expected(leaf, value) is REJECT else accepted).append(value)
    return accepted, rejected


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@pytest.mark.parametrize(("event_type", "column"), FRAME_LEAVES)
def test_a_contradicted_column_falls_back_to_text_with_one_warning(event_type, column):
    leaf = _leaf(event_type, column)
    _, rejected = _split(leaf)
    events = [base_event(event_type), *_batch(leaf, rejected)]
    df, caught = _frame(events, event_type)
    assert [w for w in caught if repr(column) in w] == [caught[0]] and len(caught) == 1, caught
    assert pd.api.types.is_string_dtype(df[column].dtype)
    assert _by_id(df, events[1:], column) == [_as_text(v) for v in rejected]


@pytest.mark.parametrize("column", ["timestamp", "systemTimestamp"])
def test_a_contradicted_core_time_stays_a_datetime_with_the_value_beside_it(column):
    leaf = _leaf("tabOpened", column)
    _, rejected = _split(leaf)
    events = [base_event("tabOpened"), *_batch(leaf, rejected)]
    df, caught = _frame(events, "tabOpened")
    # the one warning for the column, and the inference's own for the mixed values beside it
    assert repr(column) in caught[0], caught
    assert all(repr(column + "_raw") in w for w in caught[1:]) and len(caught) <= 2, caught
    assert isinstance(df[column].dtype, pd.DatetimeTZDtype)
    assert all(cell is None for cell in _by_id(df, events[1:], column))
    # values of mixed types: the column beside it holds them as JSON text
    assert _by_id(df, events[1:], column + "_raw") == [_as_text(v) for v in rejected]


@pytest.mark.parametrize(("event_type", "column"), FRAME_LEAVES)
def test_accepted_values_are_kept_exactly_and_round_trip(event_type, column):
    leaf = _leaf(event_type, column)
    accepted, _ = _split(leaf)
    events = _batch(leaf, accepted)
    df, caught = _frame(events, event_type)
    assert not caught
    cells = _by_id(df, events, column)
    if leaf.kind == "time":
        cells = [
            None if c is None else int(c.asm8.astype("datetime64[ms]").view("i8")) for c in cells
        ]
    assert plain(cells) == plain([expected(leaf, v) for v in accepted])
    again, caught = _frame(df.croct.to_events(), event_type)
    assert not caught
    pd.testing.assert_frame_equal(again, df)


def test_generated_events_of_every_type_round_trip():
    events = [base_event(t) for t in EVENT_TYPES]
    page = normalize_bodies([body_of(events)])
    df = build_frame(page.tables.items())
    again = build_frame(normalize_bodies([body_of(df.croct.to_events())]).tables.items())
    pd.testing.assert_frame_equal(again, df)
    assert set(df["type"].astype(str)) == set(EVENT_TYPES)


# -- defects this suite found, each fixed ------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "column"),
    [
        ("locationDetected", "payload.location.population"),
        ("slotPersonalized", "payload.personalization.slotVersion.majorVersion"),
    ],
)
def test_hex_text_where_an_integer_may_come_as_text(event_type, column):
    leaf = _leaf(event_type, column)
    paths = three_paths(mutate(event_type, leaf, "0x1F"))
    assert not differences(paths.dicts, paths.slow)
    assert paths.typed is None or not differences(paths.typed, paths.slow)


@pytest.mark.parametrize("value", [2.0, -0.0])
@pytest.mark.parametrize("field", ["index", "quantity"])
def test_integral_float_in_a_list_element(value, field):
    leaf = _leaf("cartViewed", "payload.cart.items")
    element = Leaf("cartViewed", (*leaf.path, 0, field), leaf.column, "int", in_list=True)
    paths = three_paths(mutate("cartViewed", element, value))
    assert not differences(paths.dicts, paths.slow)
    assert paths.typed is None or not differences(paths.typed, paths.slow)


@pytest.mark.parametrize(
    ("event_type", "column"),
    [
        ("cartViewed", "payload.cart.items"),
        ("orderPlaced", "payload.order.items"),
        ("audienceMatched", "payload.audienceIds"),
    ],
)
def test_empty_text_where_a_list_of_objects_belongs(event_type, column):
    paths = three_paths(mutate(event_type, _leaf(event_type, column), ""))
    assert not differences(paths.dicts, paths.slow)
    assert raw_of(paths.dicts[event_type], 1) == {column: ""}


@pytest.mark.parametrize(
    ("event_type", "column", "value"),
    [("goalCompleted", "payload.value", v) for v in _PYTHON_NUMBERS]
    + [("locationDetected", "payload.location.population", v) for v in _PYTHON_INTEGERS],
)
def test_numeric_text_in_python_syntax(event_type, column, value):
    paths = three_paths(mutate(event_type, _leaf(event_type, column), value))
    table = paths.slow[event_type]
    assert column_values(table, column)[1] is None
    assert raw_of(table, 1) == {column: value}


@pytest.mark.parametrize("value", [True, 5, 1.5, [1], {"a": 1}])
def test_an_id_that_is_not_text_is_kept_and_reads_as_its_json_text(value):
    event = base_event("tabOpened")
    event["id"] = value
    paths = three_paths([event])
    assert paths.typed is None or not differences(paths.typed, paths.slow)
    assert not differences(paths.dicts, paths.slow)
    assert raw_of(paths.slow["tabOpened"], 0) == {"id": value}
    df, caught = _frame([event], "tabOpened")
    assert df["id"].tolist() == [orjson.dumps(value).decode()]
    assert any("'id'" in message for message in caught), caught


@pytest.mark.parametrize(
    ("event_type", "column"),
    [("tabOpened", "timestamp"), ("pageLoaded", "payload.lastModifiedTime")],
)
def test_the_smallest_int64_time_is_kept_as_sent(event_type, column):
    # pandas reads -2**63 as NaT: no frame can hold that time, so it is a contradiction
    leaf = _leaf(event_type, column)
    events = mutate(event_type, leaf, -(2**63))
    paths = three_paths(events)
    assert paths.typed is None or not differences(paths.typed, paths.slow)
    assert not differences(paths.dicts, paths.slow)
    assert column_values(paths.slow[event_type], column)[1] is None
    assert raw_of(paths.slow[event_type], 1) == {column: -(2**63)}
    df, caught = _frame(events, event_type)
    assert any(column in message for message in caught), caught
    if column == "timestamp":  # the frame's order rests on it: NaT, and the value beside it
        assert df["timestamp_raw"].dropna().tolist() == [-(2**63)]
    else:
        assert str(-(2**63)) in _by_id(df, events, column)


def test_valid_times_in_a_fallen_back_time_column_read_as_iso_text():
    leaf = _leaf("pageLoaded", "payload.lastModifiedTime")
    events = _batch(leaf, [0, "not a time"])
    df, _ = _frame(events, "pageLoaded")
    assert _by_id(df, events, leaf.column)[0] == "1970-01-01T00:00:00.000Z"


def test_a_number_text_read_as_infinity_round_trips():
    leaf = _leaf("goalCompleted", "payload.value")
    events = _batch(leaf, ["1e400", "-1e400", "2.5"])
    df, caught = _frame(events, "goalCompleted")
    assert not caught
    assert _by_id(df, events, leaf.column) == [float("inf"), float("-inf"), 2.5]
    again, caught = _frame(df.croct.to_events(), "goalCompleted")
    assert not caught
    assert again.equals(df)
