"""Wire values -> frame columns and dtypes, one row of the table per kind of the schema."""

from __future__ import annotations

import hashlib
import warnings

import orjson
import pandas as pd
import pyarrow as pa
import pytest

import croct_pandas  # noqa: F401  (registers df.croct)
from croct_pandas.errors import SchemaWarning
from croct_pandas.frame import build_frame
from croct_pandas.normalize import normalize_items, normalize_page, storage_schema
from croct_pandas.normalize_worker import normalize_bodies
from croct_pandas.schema import EVENT_TYPES, column_order

T0 = 1767225600000  # 2026-01-01T00:00:00Z
STRING = pd.StringDtype("pyarrow")


def event(payload: dict, *, i: int = 0, context=None, **core) -> dict:
    base = {"id": f"e{i}", "timestamp": T0 + i, "sessionId": "s1", "userId": "u1"}
    base.update(core)
    return {**base, "context": context, "payload": payload}


def frame(wire_events, **kw) -> pd.DataFrame:
    return build_frame(normalize_items(wire_events).tables.items(), **kw)


CART = {
    "currency": "BRL",
    "items": [
        {
            "index": 0,
            "product": {"productId": "p1", "name": "Shoe", "displayPrice": 10},
            "quantity": 2,
            "total": 20.0,
        }
    ],
    "total": 20,
    "taxes": {"vat": 1.5},
    "lastUpdateTime": T0,
}

# (event type, payload, column, expected dtype (str), expected value)
KINDS = [
    ("productViewed", {"product": {"name": "Shoe"}}, "payload.product.name", "string", "Shoe"),
    ("orderPlaced", {"order": {"installments": 3}}, "payload.order.installments", "Int64", 3),
    (
        "productViewed",
        {"product": {"displayPrice": 10}},
        "payload.product.displayPrice",
        "float64",
        10.0,
    ),
    (
        "nothingChanged",
        {"sinceTime": T0},
        "payload.sinceTime",
        "datetime64[ms, UTC]",
        pd.Timestamp(T0, unit="ms", tz="UTC"),
    ),
    ("tabVisibilityChanged", {"visibility": "HIDDEN"}, "payload.visibility", "category", "hidden"),
    (
        "clientDetected",
        {"client": {"browser": {"type": "IN_APP"}}},
        "payload.client.browser.type",
        "category",
        "in-app",
    ),
    (
        "locationDetected",
        {"location": {"continent": "SA"}},
        "payload.location.continent",
        "category",
        "SA",
    ),
    ("goalCompleted", {"goalId": "g1", "value": "9.5"}, "payload.value", "float64", 9.5),
    ("goalCompleted", {"goalId": "g1", "value": 9.5}, "payload.value", "float64", 9.5),
    ("leadGenerated", {"value": "12"}, "payload.value", "float64", 12.0),
    (
        "locationDetected",
        {"location": {"population": "12000"}},
        "payload.location.population",
        "Int64",
        12000,
    ),
    (
        "locationDetected",
        {"location": {"population": 12000}},
        "payload.location.population",
        "Int64",
        12000,
    ),
    (
        "slotPersonalized",
        {"personalization": {"slotVersion": {"majorVersion": "2"}}},
        "payload.personalization.slotVersion.majorVersion",
        "Int64",
        2,
    ),
    (
        "pageOpened",
        {"url": "https://a.b", "preferredLanguages": ["en-US", "pt-BR"]},
        "payload.preferredLanguages",
        "string",
        "en-US,pt-BR",
    ),
    (
        "pageOpened",
        {"url": "https://a.b", "preferredLanguages": "en-US"},
        "payload.preferredLanguages",
        "string",
        "en-US",
    ),
    (
        "locationDetected",
        {"location": {"timeZone": "America/Sao_Paulo"}},
        "payload.location.timezone",
        "string",
        "America/Sao_Paulo",
    ),
    (
        "audienceMatched",
        {"audiences": [{"id": "a1", "name": "VIP", "customId": None}]},
        "payload.audienceIds",
        "list",
        [{"id": "a1", "name": "VIP", "customId": None}],
    ),
    (
        "clientDetected",
        {"client": {"device": {"type": "mobile"}}},
        "payload.client.device.category",
        "category",
        "mobile",
    ),
    ("cartModified", {"cart": CART}, "payload.cart.taxes.vat", "float64", 1.5),
    (
        "cartModified",
        {"cart": CART},
        "payload.cart.lastUpdateTime",
        "datetime64[ms, UTC]",
        pd.Timestamp(T0, unit="ms", tz="UTC"),
    ),
    (
        "eventOccurred",
        {"name": "x", "details": {"plan": "pro", "seats": 3}},
        "payload.details.plan",
        "string",
        "pro",
    ),
    (
        "eventOccurred",
        {"name": "x", "details": {"plan": "pro", "seats": 3}},
        "payload.details.seats",
        "Int64",
        3,
    ),
]


@pytest.mark.parametrize(("event_type", "payload", "column", "dtype", "value"), KINDS)
def test_each_kind_becomes_its_dtype(event_type, payload, column, dtype, value):
    df = frame([event({"@type": event_type, **payload})])
    got = df[column]
    if dtype == "list":
        assert isinstance(got.dtype, pd.ArrowDtype) and pa.types.is_list(got.dtype.pyarrow_dtype)
        assert got.iloc[0] == value
        return
    if dtype == "string":
        assert got.dtype == STRING
    else:
        assert str(got.dtype) == dtype
    assert got.iloc[0] == value


def test_core_columns_and_order():
    ctx = {
        "type": "web",
        "tabId": "t1",
        "url": "https://shop.example/",
        "metadata": {"sdkVersion": "1.0"},
    }
    df = frame([event({"@type": "tabOpened", "tabId": "t1"}, context=ctx)], events=["tabOpened"])
    assert list(df.columns) == [
        "id",
        "type",
        "timestamp",
        "sessionId",
        "userId",
        "systemTimestamp",
        "context.type",
        "context.tabId",
        "context.url",
        "context.metadata.sdkVersion",
        "payload.tabId",
    ]
    assert df["id"].dtype == STRING and df["userId"].dtype == STRING
    assert isinstance(df["type"].dtype, pd.CategoricalDtype)
    assert list(df["type"].cat.categories) == ["tabOpened"]
    assert str(df["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert df["systemTimestamp"].isna().all()
    assert isinstance(df.index, pd.RangeIndex)


def test_every_known_type_has_its_columns_even_without_events():
    df = frame([])
    expected = [name for name, _ in column_order(EVENT_TYPES)]
    assert list(df.columns[6:]) == expected
    assert list(df["type"].cat.categories) == sorted(EVENT_TYPES)
    assert str(df["payload.cart.total"].dtype) == "float64"
    assert str(df["payload.order.installments"].dtype) == "Int64"


def test_dtype_does_not_depend_on_whether_a_page_held_values():
    with_value = frame([event({"@type": "orderPlaced", "order": {"installments": 2}})])
    only_nulls = frame([event({"@type": "orderPlaced", "order": {"installments": None}})])
    assert with_value.dtypes.equals(only_nulls.dtypes)


def test_enum_categories_come_from_the_schema():
    df = frame([event({"@type": "orderPlaced", "order": {"status": "PAID"}})])
    assert list(df["payload.order.status"].cat.categories) == ["completed", "paid", "placed"]
    assert not df["payload.order.status"].cat.ordered


def test_a_new_enum_value_is_a_new_category_with_one_warning():
    events = [
        event({"@type": "orderPlaced", "order": {"status": "REFUNDED"}}, i=0),
        event({"@type": "orderPlaced", "order": {"status": "REFUNDED"}}, i=1),
    ]
    with pytest.warns(SchemaWarning, match="payload.order.status") as record:
        df = frame(events)
    assert len([w for w in record if issubclass(w.category, SchemaWarning)]) == 1
    assert "refunded" in df["payload.order.status"].cat.categories
    assert (df["payload.order.status"] == "refunded").all()


def test_text_where_a_number_belongs_falls_back_to_string_and_keeps_everything():
    events = [
        event({"@type": "productViewed", "product": {"displayPrice": 10.5}}, i=0),
        event({"@type": "productViewed", "product": {"displayPrice": "free"}}, i=1),
    ]
    with pytest.warns(SchemaWarning, match="payload.product.displayPrice"):
        df = frame(events)
    assert df["payload.product.displayPrice"].dtype == STRING
    assert df["payload.product.displayPrice"].tolist() == ["10.5", "free"]


# a JSON boolean where a number, an integer or a time belongs: pyarrow reads true as 1.0 in a
# float64 field, and the fast paths convert all three through float64
BOOLEANS = [
    ("productViewed", {"product": {"displayPrice": True}}, "payload.product.displayPrice", "true"),
    ("orderPlaced", {"order": {"installments": False}}, "payload.order.installments", "false"),
    ("goalCompleted", {"goalId": "g", "value": True}, "payload.value", "true"),
]


@pytest.mark.parametrize("path", ["dicts", "bytes"])
@pytest.mark.parametrize(("event_type", "payload", "column", "text"), BOOLEANS)
def test_a_boolean_where_a_number_belongs_is_kept_as_sent(path, event_type, payload, column, text):
    clean = {"@type": event_type, **_numbers_of(payload)}
    events = [event(clean, i=0), event({"@type": event_type, **payload}, i=1)]
    with pytest.warns(SchemaWarning, match=column):
        df = _through(path, events, event_type)
    assert df[column].dtype == STRING
    assert df[column].tolist()[1] == text
    assert df[column].tolist()[0] not in (None, text)


@pytest.mark.parametrize("path", ["dicts", "bytes"])
def test_a_boolean_in_a_list_element_keeps_the_list_as_sent(path):
    cart = {**CART, "items": [{**CART["items"][0], "quantity": True}]}
    events = [event({"@type": "cartViewed", "cart": CART}, i=0)]
    events.append(event({"@type": "cartViewed", "cart": cart}, i=1))
    with pytest.warns(SchemaWarning, match="payload.cart.items"):
        df = _through(path, events, "cartViewed")
    kept, clean = df["payload.cart.items"].tolist()[1], df["payload.cart.items"].tolist()[0]
    assert orjson.loads(kept) == cart["items"]
    assert orjson.loads(clean)[0]["quantity"] == 2


@pytest.mark.parametrize("path", ["dicts", "bytes"])
def test_a_boolean_timestamp_is_kept_beside_the_time(path):
    events = [event({"@type": "tabOpened", "tabId": "t"}, i=0)]
    events.append(event({"@type": "tabOpened", "tabId": "t"}, i=1, timestamp=True))
    with pytest.warns(SchemaWarning, match="timestamp"):
        df = _through(path, events, "tabOpened")
    assert df["timestamp"].isna().sum() == 1
    assert df["timestamp_raw"].dropna().tolist() == [True]


def _numbers_of(payload: dict) -> dict:
    """``payload`` with every boolean turned into a number of its field's kind."""
    return {
        k: _numbers_of(v) if isinstance(v, dict) else (2 if isinstance(v, bool) else v)
        for k, v in payload.items()
    }


def _through(path: str, events: list[dict], event_type: str) -> pd.DataFrame:
    if path == "dicts":
        page = normalize_items(events)
    else:  # the response bytes, as an export reads them (the typed decoder first)
        body = orjson.dumps({"items": events, "metadata": {}, "nextCursor": ""})
        page = normalize_bodies([body])
    return build_frame(page.tables.items(), events=[event_type])


def test_the_storage_table_keeps_the_schema_type_and_the_raw_value():
    page = normalize_items([event({"@type": "productViewed", "product": {"displayPrice": "free"}})])
    table = page.tables["productViewed"]
    assert table.schema == storage_schema("productViewed")
    assert table.column("payload.product.displayPrice").to_pylist() == [None]
    assert orjson.loads(table.column("_croct_raw")[0].as_py()) == {
        "payload.product.displayPrice": "free"
    }


def test_unknown_types_and_fields_are_kept_with_inferred_columns():
    events = [
        event(
            {"@type": "postViewed", "post": {"postId": "p1", "tags": ["a"], "publishTime": 5}}, i=0
        ),
        event(
            {"@type": "postViewed", "post": {"postId": "p2", "tags": [], "publishTime": 6.5}}, i=1
        ),
        event({"@type": "productViewed", "product": {"productId": "x"}, "flag": True}, i=2),
    ]
    df = frame(events)
    assert df["payload.post.postId"].tolist()[:2] == ["p1", "p2"]
    assert df["payload.post.postId"].dtype == STRING
    assert str(df["payload.post.publishTime"].dtype) == "float64"  # int + float -> float64
    assert isinstance(df["payload.post.tags"].dtype, pd.ArrowDtype)
    assert str(df["payload.flag"].dtype) == "boolean"
    assert "postViewed" in df["type"].cat.categories
    # inferred columns come after the schema's payload columns, sorted by name
    inferred = [
        c
        for c in df.columns
        if c
        in ("payload.flag", "payload.post.postId", "payload.post.publishTime", "payload.post.tags")
    ]
    assert inferred == sorted(inferred)
    assert list(df.columns).index("payload.flag") > list(df.columns).index("payload.audienceIds")


def test_a_mixed_inferred_column_becomes_text_with_one_warning():
    events = [
        event({"@type": "eventOccurred", "name": "a", "details": {"v": 1}}, i=0),
        event({"@type": "eventOccurred", "name": "b", "details": {"v": "one"}}, i=1),
    ]
    with pytest.warns(SchemaWarning, match="payload.details.v"):
        df = frame(events)
    assert df["payload.details.v"].tolist() == ["1", "one"]


def test_inference_runs_over_the_whole_result_not_per_page():
    first = normalize_items(
        [event({"@type": "eventOccurred", "name": "a", "details": {"n": 1}}, i=0)]
    )
    second = normalize_items(
        [event({"@type": "eventOccurred", "name": "b", "details": {"n": 2.5}}, i=1)]
    )
    df = build_frame([*first.tables.items(), *second.tables.items()])
    assert str(df["payload.details.n"].dtype) == "float64"
    assert df["payload.details.n"].tolist() == [1.0, 2.5]


def test_both_dialects_give_the_same_frame():
    v071 = event(
        {"@type": "audienceMatched", "audienceIds": [{"id": "a", "name": "A", "customId": None}]}
    )
    v080 = {k: v for k, v in v071.items() if k != "id"} | {"eventId": "e0"}
    v080["payload"] = {"type": "audienceMatched", "audiences": v071["payload"]["audienceIds"]}
    a, b = frame([v071]), frame([v080])
    pd.testing.assert_frame_equal(a, b)
    assert normalize_items([v080]).spec_versions == {"0.8"}


def test_a_repeated_event_appears_once_and_the_last_copy_wins():
    old = event({"@type": "goalCompleted", "goalId": "g", "value": "1"})
    new = event({"@type": "goalCompleted", "goalId": "g", "value": "2"})
    first, second = normalize_items([old]), normalize_items([new, new])
    df = build_frame([*first.tables.items(), *second.tables.items()])
    assert len(df) == 1 and df["payload.value"].iloc[0] == 2.0


def test_an_event_without_id_gets_a_sha1_of_its_canonical_json():
    bare = {
        "timestamp": T0,
        "sessionId": "s",
        "userId": "u",
        "context": None,
        "payload": {"@type": "tabOpened", "tabId": "t"},
    }
    canonical = orjson.dumps(bare, option=orjson.OPT_SORT_KEYS)
    df = frame([bare])
    assert df["id"].iloc[0] == "sha1:" + hashlib.sha1(canonical).hexdigest()


def test_rows_are_sorted_by_timestamp_then_id_and_windowed():
    events = [
        event({"@type": "tabOpened", "tabId": "t"}, i=0, id="b", timestamp=T0 + 5),
        event({"@type": "tabOpened", "tabId": "t"}, i=0, id="a", timestamp=T0 + 5),
        event({"@type": "tabOpened", "tabId": "t"}, i=0, id="c", timestamp=T0 + 1),
        event({"@type": "tabOpened", "tabId": "t"}, i=0, id="d", timestamp=T0 + 9),
    ]
    df = frame(events, start=T0, end=T0 + 9)
    assert df["id"].tolist() == ["c", "a", "b"]


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_dtype_backends(backend):
    df = frame(
        [event({"@type": "productViewed", "product": {"displayPrice": 1.5}})], dtype_backend=backend
    )
    price = df["payload.product.displayPrice"].dtype
    if backend == "numpy_nullable":
        assert price == pd.Float64Dtype()
        assert isinstance(df["type"].dtype, pd.CategoricalDtype)
    else:
        assert all(isinstance(t, pd.ArrowDtype) for t in df.dtypes)
        assert pa.types.is_dictionary(df["type"].dtype.pyarrow_dtype)
        assert df["timestamp"].dtype.pyarrow_dtype == pa.timestamp("ms", tz="UTC")


def test_normalize_page_reads_a_body():
    body = orjson.dumps(
        {
            "items": [event({"@type": "tabOpened", "tabId": "t"})],
            "metadata": {"applicationSlug": "shop"},
            "nextCursor": "abc",
        }
    )
    page, metadata, cursor = normalize_page(body)
    assert page.num_rows == 1 and metadata == {"applicationSlug": "shop"} and cursor == "abc"


def test_no_warning_for_clean_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame([event({"@type": "cartModified", "cart": CART})])


def test_a_bad_timestamp_keeps_the_row_and_its_value_beside_it():
    bad = event({"@type": "tabOpened", "tabId": "t"}, i=1, timestamp="yesterday")
    with pytest.warns(SchemaWarning, match="timestamp"):
        df = frame([event({"@type": "tabOpened", "tabId": "t"}), bad])
    assert str(df["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert df["timestamp"].isna().sum() == 1
    assert df["timestamp_raw"].dropna().tolist() == ["yesterday"]
