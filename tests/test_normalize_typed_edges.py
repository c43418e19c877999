"""Edge cases of the typed path (normalize_typed) against the dict path, input by input.

Each test builds response bodies the Export API could send (or a broken server could), then
checks that ``normalize_bodies_typed`` either declines (None) or gives exactly the tables that
``normalize_items`` makes from the same bodies parsed with orjson: columns, dtypes, values, nulls,
``_croct_raw`` and ``spec_versions``. Where it declines, ``normalize_bodies`` must still equal the
dict path. The tests under "what once broke" pin inputs that used to make the two differ.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from normalize_compare import assert_tables_equal

from croct_pandas.emulator import generate_events
from croct_pandas.normalize import NormalizedPage, normalize_items
from croct_pandas.normalize_typed import normalize_bodies_typed
from croct_pandas.normalize_worker import normalize_bodies
from croct_pandas.schema import EVENT_TYPES

#: a placeholder replaced in the body text by a number that Python objects cannot carry to orjson
BIG = "__BIG_NUMBER__"


def body(events: list[dict[str, Any]], **replace: bytes) -> bytes:
    text = orjson.dumps({"items": events, "metadata": {"applicationSlug": "s"}, "nextCursor": ""})
    for old, new in replace.items():
        text = text.replace(old.encode(), new)
    return text


def with_big(events: list[dict[str, Any]], number: bytes) -> bytes:
    return orjson.dumps({"items": events}).replace(f'"{BIG}"'.encode(), number)


def dict_path(bodies: list[bytes]) -> NormalizedPage:
    return normalize_items([item for b in bodies for item in orjson.loads(b)["items"]])


def assert_typed(bodies: list[bytes], *, declined: bool | None = False) -> None:
    """The typed path equals the dict path (``declined=False``), declines and the fallback
    equals it (``declined=True``), or either (``declined=None``)."""
    want = dict_path(bodies)
    got = normalize_bodies_typed(bodies)
    if declined is not None:
        assert (got is None) is declined, "declined" if got is None else "taken"
    if got is not None:
        assert_tables_equal(got, want)
    assert_tables_equal(normalize_bodies(bodies), want)


@pytest.fixture(scope="module")
def shop() -> list[dict[str, Any]]:
    events = generate_events(users=60, days=2, seed=7)
    assert {e["payload"]["@type"] for e in events} == set(EVENT_TYPES)
    return events


def of(shop: list[dict[str, Any]], event_type: str, n: int = 6) -> list[dict[str, Any]]:
    events = [e for e in shop if e["payload"]["@type"] == event_type][:n]
    assert events, event_type
    # rare types are repeated (ids and all): each copy is still a distinct row
    return copy.deepcopy([events[i % len(events)] for i in range(n)])


def _leaf_paths(obj: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in obj.items():
        if key == "@type":
            continue
        if isinstance(value, dict) and value:
            out.extend(_leaf_paths(value, (*prefix, key)))
        else:
            out.append((*prefix, key))
    return out


def _at(obj: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path[:-1]:
        obj = obj[key]
    return obj


# -- what holds -------------------------------------------------------------------------------


def test_null_and_missing_at_every_payload_level_of_every_type(shop):
    # each event of a type gets one leaf or object nulled, the next the same one removed
    for event_type in EVENT_TYPES:
        events = of(shop, event_type, 40)
        paths = sorted({p for e in events for p in _leaf_paths(e["payload"])})
        changed: list[dict[str, Any]] = []
        for i, path in enumerate(paths):
            for depth in range(1, len(path) + 1):
                for mode in ("null", "missing"):
                    e = copy.deepcopy(events[(i + depth) % len(events)])
                    try:
                        parent = _at(e["payload"], path[:depth])
                    except (KeyError, TypeError):
                        continue
                    if not isinstance(parent, dict):
                        continue
                    if mode == "null":
                        parent[path[depth - 1]] = None
                    else:
                        parent.pop(path[depth - 1], None)
                    changed.append(e)
        assert_typed([body(events + changed)])


def test_null_missing_and_empty_context_and_core_fields(shop):
    events = of(shop, "pageOpened", 10)
    events[0]["context"] = {}
    events[1]["context"] = None
    del events[2]["context"]
    events[3]["context"] = {"metadata": None, "type": None}
    events[4]["context"] = {"metadata": {}}
    events[5]["timestamp"] = None
    events[6]["systemTimestamp"] = None
    events[7]["sessionId"] = None
    del events[8]["userId"]
    events[9]["eventId"] = None  # 0.7.x events with a null eventId: still 0.7
    assert_typed([body(events)])


def test_empty_objects_for_nested_nodes(shop):
    slots = of(shop, "slotPersonalized")
    slots[0]["payload"]["personalization"] = {}
    slots[1]["payload"]["personalization"]["slotVersion"] = {}
    slots[2]["payload"]["metadata"] = {}
    located = of(shop, "locationDetected")
    located[0]["payload"]["location"] = {}
    located[1]["payload"]["location"]["coordinates"] = {}
    located[2]["payload"]["location"]["region"] = None
    carts = of(shop, "cartViewed")
    carts[0]["payload"]["cart"]["items"][0]["product"] = {}
    carts[1]["payload"]["cart"]["items"][0]["product"] = None
    carts[2]["payload"]["cart"]["items"] = [{}]
    assert_typed([body(slots), body(located), body(carts)])


def test_duplicate_keys_keep_the_last_value_on_both_paths(shop):
    events = of(shop, "tabOpened", 3)
    assert_typed([body(events, **{'"tabId":': b'"tabId":"first","tabId":'})])
    assert_typed([body(events, **{'"tabId":': b'"tabId":null,"tabId":'})])
    assert_typed([body(events, **{'"id":': b'"id":"first","id":'})])
    assert_typed(
        [body(events, **{'"payload":': b'"payload":{"@type":"goalCompleted"},"payload":'})]
    )
    assert_typed([body(events, **{'{"items":': b'{"items":[],"items":'})])
    # the first of two spellings is unknown, or the two tags differ: declined, never guessed
    tags = '"@type":"tabOpened"'
    assert_typed(
        [body(events, **{tags: b'"@type":"tabOpened","@type":"pageOpened"'})], declined=True
    )
    assert_typed(
        [body(events, **{tags: b'"@type":"pageOpened","@type":"tabOpened"'})], declined=True
    )
    context = '"context":'
    assert_typed([body(events, **{context: b'"context":{"odd":1},"context":'})], declined=True)


def test_discriminators(shop):
    events = of(shop, "tabOpened", 3)
    events[0]["payload"]["type"] = "tabOpened"
    events[1]["payload"]["type"] = "pageOpened"  # @type wins, on both paths
    events[2]["payload"]["type"] = 5
    assert_typed([body(events)])
    last = of(shop, "tabOpened", 3)
    payload = last[0]["payload"]
    payload["@type"] = payload.pop("@type")  # the tag after the other keys
    assert_typed([body(last)])
    alone = of(shop, "tabOpened", 3)
    alone[0]["payload"]["type"] = alone[0]["payload"].pop("@type")  # spec 0.8.0's spelling
    assert_typed([body(alone)], declined=True)
    nulled = of(shop, "tabOpened", 3)
    nulled[0]["payload"]["@type"] = None
    assert_typed([body(nulled)], declined=True)


def test_free_form_objects(shop):
    events = of(shop, "eventOccurred", 8)
    events[0]["payload"]["details"] = {"z": 1, "a": {"y": [1, None, {"b": -0.0}], "x": True}}
    events[1]["payload"]["details"] = {}
    events[2]["payload"]["details"] = None
    events[3]["payload"]["details"] = {"é\U0001f600": "line\nbreak\u2028\x00", "n": 1e308}
    events[4]["payload"]["details"] = {"big": 2**63, "small": -(2**63), "f": 1.5e-300}
    del events[5]["payload"]["details"]
    clicks = of(shop, "userClicked", 4)
    clicks[0]["context"] = {"metadata": {"k": 1, "n": None, "l": [1, "a"], "o": {}}}
    carts = of(shop, "cartViewed", 4)
    carts[0]["payload"]["cart"]["taxes"] = {"vat": 0.2, "nested": {"a": 1}}
    carts[1]["payload"]["cart"]["costs"] = {}
    assert_typed([body(events), body(clicks), body(carts)])
    for odd in ([1, 2], "text", 5, True):
        other = of(shop, "eventOccurred", 4)
        other[1]["payload"]["details"] = odd
        assert_typed([body(other)], declined=True)


def test_lists_empty_null_and_of_another_shape(shop):
    carts = of(shop, "cartViewed", 6)
    carts[0]["payload"]["cart"]["items"] = []
    carts[1]["payload"]["cart"]["items"] = None
    del carts[2]["payload"]["cart"]["items"]
    carts[3]["payload"]["cart"]["items"][0]["quantity"] = 2.0
    located = of(shop, "locationDetected", 6)
    located[0]["payload"]["location"]["languages"] = []
    located[1]["payload"]["location"]["languages"] = [None, "en"]
    located[2]["payload"]["location"]["tags"] = None
    audiences = of(shop, "audienceMatched", 4)
    audiences[0]["payload"]["audienceIds"] = []
    audiences[1]["payload"]["audienceIds"] = [{}]
    assert_typed([body(carts), body(located), body(audiences)])
    for odd in ({"index": 1}, "x", [""], [["index"]], [{"product": {"odd": 1}}], [{"odd": 1}]):
        other = of(shop, "cartViewed", 3)
        other[1]["payload"]["cart"]["items"] = odd
        assert_typed([body(other)], declined=True)
    other = of(shop, "cartViewed", 3)
    other[1]["payload"]["cart"]["items"][0]["product"] = ["name"]
    assert_typed([body(other)], declined=True)


def test_a_text_where_a_list_of_texts_belongs_is_kept_raw_not_split(shop):
    # pyarrow would read "en" as ["e", "n"]: both paths keep the value raw instead
    located = of(shop, "locationDetected", 4)
    located[1]["payload"]["location"]["languages"] = "en"
    assert_typed([body(located)], declined=True)
    table = normalize_bodies([body(located)]).tables["locationDetected"]
    assert table.column("payload.location.languages")[1].as_py() is None
    assert orjson.loads(table.column("_croct_raw")[1].as_py()) == {
        "payload.location.languages": "en"
    }
    opened = of(shop, "pageOpened", 4)
    opened[0]["payload"]["preferredLanguages"] = ["en-US", "pt"]
    opened[1]["payload"]["preferredLanguages"] = "en-US,pt"
    assert_typed([body(opened)], declined=True)
    languages = normalize_bodies([body(opened)]).tables["pageOpened"]
    assert languages.column("payload.preferredLanguages").to_pylist()[:2] == ["en-US,pt"] * 2


def test_patch_operations(shop):
    events = of(shop, "userSignedUp", 8)
    values = [{"z": 1, "a": [1.5, None]}, None, True, 2**63, -0.0, "é\U0001f600", [], {}]
    events[0]["payload"]["patch"] = {
        "operations": [{"type": "set", "path": f"p{i}", "value": v} for i, v in enumerate(values)]
    }
    events[1]["payload"]["patch"] = {"operations": [{"type": "unset", "path": "a"}]}
    events[2]["payload"]["patch"] = {"operations": []}
    events[3]["payload"]["patch"] = {}
    events[4]["payload"]["patch"] = None
    events[5]["payload"]["patch"] = {"operations": "not a list"}
    events[6]["payload"]["patch"] = {"operations": [{"type": "set", "odd": 1}]}
    events[7]["payload"]["patch"] = {"operations": [{"type": 5, "path": ["a"]}]}
    assert_typed([body(events)])


def test_numbers_at_the_edges(shop):
    carts = of(shop, "cartViewed", 6)
    carts[0]["payload"]["cart"]["subtotal"] = -0.0
    carts[1]["payload"]["cart"]["subtotal"] = 1e308
    carts[2]["payload"]["cart"]["subtotal"] = 7  # an integer where a number belongs
    carts[3]["payload"]["cart"]["total"] = 5e-324
    carts[4]["timestamp"] = -0.0
    carts[5]["systemTimestamp"] = float(carts[5]["timestamp"])
    goals = of(shop, "goalCompleted", 4)
    for e, value in zip(goals, ["-0", "1e400", "0.5e-3", "-1E+2"]):  # JSON numbers in quotes
        e["payload"]["value"] = value
    populations = of(shop, "locationDetected", 3)
    for e, value in zip(populations, ["0", "12", "-7"]):
        e["payload"]["location"]["population"] = value
    assert_typed([body(carts), body(goals), body(populations)])


@pytest.mark.parametrize("text", ["NaN", "inf", "-Infinity", "+1.5", "007", " 5", "1_000", "0x1F"])
def test_numeric_text_that_is_not_a_json_number_is_declined(shop, text):
    # pyarrow's cast (and Python's float()) would read these; a number sent as text is a JSON
    # number in quotes, so the value-by-value path keeps them raw
    goals = of(shop, "goalCompleted", 2)
    goals[1]["payload"]["value"] = text
    assert_typed([body(goals)], declined=True)
    table = dict_path([body(goals)]).tables["goalCompleted"]
    assert table.column("payload.value")[1].as_py() is None
    assert orjson.loads(table.column("_croct_raw")[1].as_py()) == {"payload.value": text}


def test_a_boolean_where_a_number_belongs_is_declined(shop):
    # pyarrow would read it as 1.0; the value-by-value path keeps it raw, as both paths must
    carts = of(shop, "cartViewed", 3)
    carts[1]["payload"]["cart"]["subtotal"] = True
    carts[2]["timestamp"] = False
    assert_typed([body(carts)], declined=True)
    table = dict_path([body(carts)]).tables["cartViewed"]
    raw = table.column("_croct_raw").to_pylist()
    assert raw[0] is None
    assert orjson.loads(raw[1]) == {"payload.cart.subtotal": True}
    assert orjson.loads(raw[2]) == {"timestamp": False}


@pytest.mark.parametrize(
    ("event_type", "path", "number"),
    [
        ("cartViewed", ("cart", "subtotal"), b"18446744073709551616"),
        ("cartViewed", ("cart", "subtotal"), b"9223372036854775808"),
        ("goalCompleted", ("value",), b"-9223372036854775809"),
        ("tabOpened", ("tabId",), b"1e400"),
        ("pageLoaded", ("lastModifiedTime",), b"1e308"),
        ("orderPlaced", ("order", "installments"), b"100000000000000000000"),
    ],
)
def test_numbers_out_of_range_are_declined(shop, event_type, path, number):
    events = of(shop, event_type, 3)
    _at(events[1]["payload"], path)[path[-1]] = BIG
    bodies = [with_big(events, number)]
    assert normalize_bodies_typed(bodies) is None
    if number != b"1e400":  # orjson refuses 1e400: the dict path raises, as it should
        assert_tables_equal(normalize_bodies(bodies), dict_path(bodies))


def test_strings_with_escapes_and_characters_beyond_the_bmp(shop):
    events = of(shop, "tabOpened", 4)
    events[0]["payload"]["tabId"] = 'q"b\\s\n\t\u2028\x00\x1f'
    events[1]["payload"]["tabId"] = "\U0001f600𝄞é"
    escaped = body(events[2:], **{'"tabId":"': b'"tabId":"\\ud83d\\ude00\\u00e9\\/'})
    assert_typed([body(events[:2]), escaped])
    lone = body(events[2:], **{'"tabId":"': b'"tabId":"\\ud83d'})
    assert normalize_bodies_typed([lone]) is None  # orjson refuses it too


def test_envelopes_whitespace_and_batches(shop):
    pretty = orjson.dumps({"items": shop[:150]}, option=orjson.OPT_INDENT_2)
    extra = orjson.dumps({"nextCursor": "c", "more": None, "items": shop[150:300], "m": [1]})
    assert_typed([pretty, extra, b' \n\t{ "items" : [ ] }\n', body(shop[300:400])])
    assert_typed([])
    assert_typed([b'{"items": []}'])
    mixed = copy.deepcopy(shop[:80])
    mixed[40]["payload"]["@type"] = "brandNew"
    assert_typed([body(shop[80:160]), body(mixed)], declined=True)


@pytest.mark.parametrize(
    "text", [b'{"items": null}', b"{}", b"[]", b'{"items": [null]}', b'{"items": [1]}', b""]
)
def test_bodies_of_another_shape_are_declined(text):
    assert normalize_bodies_typed([text]) is None


def test_wrong_kinds_are_declined_or_equal(shop):
    changes = [
        ("id", 5),
        ("userId", 5),
        ("timestamp", "1767225600000"),
        ("timestamp", True),
        ("context", []),
        ("context", {"type": 1}),
        ("payload.tabId", 5),
        ("payload.tabId", ["a"]),
        ("payload.tabId", {"a": 1}),
    ]
    for where, value in changes:
        events = of(shop, "tabOpened", 3)
        target = events[1]
        *parents, key = where.split(".")
        for p in parents:
            target = target[p]
        target[key] = value
        assert_typed([body(events)], declined=None)


# -- what once broke -------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["cartViewed", "audienceMatched"])
def test_null_element_in_a_list_of_structs(shop, event_type):
    events = of(shop, event_type, 3)
    payload = events[0]["payload"]
    values = payload["cart"]["items"] if event_type == "cartViewed" else payload["audienceIds"]
    values.append(None)
    assert_typed([body(events)], declined=False)


@pytest.mark.parametrize("where", ["details", "taxes", "patch"])
def test_integer_beyond_64_bits_in_a_free_form_value(shop, where):
    if where == "details":
        events = of(shop, "eventOccurred", 3)
        events[0]["payload"]["details"] = {"n": BIG}
    elif where == "taxes":
        events = of(shop, "cartViewed", 3)
        events[0]["payload"]["cart"]["taxes"] = {"vat": BIG}
    else:
        events = of(shop, "userSignedUp", 3)
        events[0]["payload"]["patch"] = {"operations": [{"type": "set", "path": "n", "value": BIG}]}
    assert_typed([with_big(events, b"18446744073709551616")], declined=True)


def _slots(shop, major: Any, minor: Any) -> list[dict[str, Any]]:
    events = of(shop, "slotPersonalized", 4)
    for e in events:
        e["payload"]["personalization"]["slotVersion"] = {
            "majorVersion": major,
            "minorVersion": minor,
        }
    return events


@pytest.mark.parametrize(
    ("major", "minor", "timestamp"),
    [("0x1F", 4, None), ("3", True, None), ("3", 4, True)],
    ids=["hex-text", "bool-number", "bool-timestamp"],
)
def test_mixed_spellings_with_values_only_arrow_accepts(shop, major, minor, timestamp):
    # the dict path goes value by value here (null, value kept raw): so does the fallback
    events = _slots(shop, major, minor)
    if timestamp is not None:
        events[0]["timestamp"] = timestamp
    assert_typed([body(events)], declined=True)


def test_mixed_spellings_are_declined_and_read_value_by_value(shop):
    assert_typed([body(_slots(shop, "3", 4))], declined=True)
    assert_typed([body(_slots(shop, "007", 4.0))], declined=True)
    assert_typed([body(_slots(shop, "3", "4"))], declined=False)
    assert_typed([body(_slots(shop, 3, 4.0))], declined=False)


def test_explicit_null_event_id_in_a_group_that_goes_value_by_value(shop):
    events = _slots(shop, "3", 4)
    events[0]["eventId"] = None
    assert_typed([body(events)], declined=True)


def test_invalid_utf8_is_declined(shop):
    events = of(shop, "tabOpened", 2)
    assert normalize_bodies_typed([body(events, **{'"tabId":"': b'"tabId":"\xff'})]) is None


def test_null_element_in_patch_operations(shop):
    events = of(shop, "userSignedUp", 3)
    events[0]["payload"]["patch"] = {"operations": [None, {"type": "unset", "path": "a"}]}
    assert_typed([body(events)], declined=False)


def test_a_list_of_values_where_an_object_belongs_is_never_read_field_by_field(shop):
    # pyarrow reads a list as a struct's fields in order when the lengths match: a product
    # sent as an 11-value array must not become a product
    carts = of(shop, "cartViewed", 3)
    carts[0]["payload"]["cart"]["items"][0]["product"] = [f"v{i}" for i in range(11)]
    assert_typed([body(carts)], declined=True)
    table = normalize_bodies([body(carts)]).tables["cartViewed"]
    assert table.column("payload.cart.items")[0].as_py() is None
    raw = orjson.loads(table.column("_croct_raw")[0].as_py())
    assert raw["payload.cart.items"][0]["product"] == [f"v{i}" for i in range(11)]
