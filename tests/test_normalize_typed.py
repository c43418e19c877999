"""The typed path (normalize_typed) gives exactly the dict path's tables, or declines.

Every batch the typed path takes must come out as ``normalize_items`` makes it from the same
events; every batch it cannot take as it is must be declined (None), and ``normalize_bodies``
(what the workers and the export run) must then still give the dict path's tables.
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys

import orjson
import pyarrow as pa
import pytest
from normalize_compare import assert_tables_equal

from croct_pandas.emulator import generate_events
from croct_pandas.emulator.dialect import to_0_8
from croct_pandas.normalize import NormalizedPage, normalize_items
from croct_pandas.normalize_typed import normalize_bodies_typed
from croct_pandas.normalize_worker import normalize_bodies, pack_page, unpack_page
from croct_pandas.schema import EVENT_TYPES


def body(events: list[dict]) -> bytes:
    return orjson.dumps({"items": events, "metadata": {"applicationSlug": "s"}, "nextCursor": ""})


def assert_same(got: NormalizedPage | None, events: list[dict]) -> None:
    assert got is not None
    assert_tables_equal(got, normalize_items(copy.deepcopy(events)))


@pytest.fixture(scope="module")
def shop() -> list[dict]:
    return generate_events(users=120, days=3, seed=11)


def test_every_event_type_comes_out_as_the_dict_path_makes_it(shop):
    assert {e["payload"]["@type"] for e in shop} == set(EVENT_TYPES)
    pages = [body(shop[i : i + 500]) for i in range(0, len(shop), 500)]
    typed = normalize_bodies_typed(pages)
    assert_same(typed, shop)
    assert typed is not None and typed.num_rows == len(shop)


def test_each_type_alone_and_in_small_batches(shop):
    for event_type in EVENT_TYPES:
        events = [e for e in shop if e["payload"]["@type"] == event_type][:40]
        assert_same(normalize_bodies_typed([body(events[:1]), body(events[1:])]), events)


def test_nulls_and_missing_nested_objects_read_as_the_dict_path_reads_them(shop):
    rng = random.Random(5)
    events = copy.deepcopy(shop[:400])
    for e in events:
        context = e.get("context")
        if isinstance(context, dict):
            for key in list(context):
                roll = rng.random()
                if roll < 0.2:
                    context[key] = None
                elif roll < 0.4:
                    del context[key]
        if rng.random() < 0.1:
            e["context"] = None
    assert_same(normalize_bodies_typed([body(events)]), events)


def _of_type(shop, event_type, n=20):
    events = copy.deepcopy([e for e in shop if e["payload"]["@type"] == event_type][:n])
    assert events, event_type
    return events


def test_numbers_sent_as_text_read_as_the_dict_path_reads_them(shop):
    events = _of_type(shop, "goalCompleted")
    for i, e in enumerate(events):
        e["payload"]["value"] = "9.5" if i % 2 else None
    assert_same(normalize_bodies_typed([body(events)]), events)
    located = _of_type(shop, "locationDetected")
    for e in located:
        location = e["payload"].get("location") or {}
        location["population"] = "1200"
        e["payload"]["location"] = location
    assert_same(normalize_bodies_typed([body(located)]), located)


def test_languages_as_a_list_or_as_text(shop):
    events = _of_type(shop, "pageOpened")
    for i, e in enumerate(events):
        e["payload"]["preferredLanguages"] = ["en-US", "pt"] if i % 2 else "en-US,pt"
    # a group with both spellings: the dict path goes value by value, and so must the result
    assert_same(normalize_bodies([body(events)]), events)
    as_lists = copy.deepcopy(events[1::2])
    assert_same(normalize_bodies_typed([body(as_lists)]), as_lists)


def test_an_int_field_with_a_fraction_is_declined(shop):
    events = _of_type(shop, "slotPersonalized")
    events[0]["payload"]["personalization"]["slotVersion"] = {"majorVersion": 1.5}
    assert normalize_bodies_typed([body(events)]) is None
    assert_same(normalize_bodies([body(events)]), events)


def _unknown_top(e):
    e["extra"] = 1


def _unknown_payload(e):
    e["payload"]["notInTheSchema"] = {"a": 1}


def _unknown_context(e):
    e["context"] = dict(e.get("context") or {}, brandNew="x")


def _unknown_type(e):
    e["payload"]["@type"] = "somethingNew"


def _event_id(e):
    e["eventId"] = e.pop("id")


def _no_id(e):
    del e["id"]


def _string_for_object(e):
    e["context"] = "not an object"


def _fraction_in_a_time(e):
    e["timestamp"] = e["timestamp"] + 0.5


DECLINED = [
    _unknown_top,
    _unknown_payload,
    _unknown_context,
    _unknown_type,
    _event_id,
    _no_id,
    _string_for_object,
    _fraction_in_a_time,
]


@pytest.mark.parametrize("change", DECLINED, ids=lambda f: f.__name__.strip("_"))
def test_what_the_typed_path_cannot_take_is_declined_and_still_normalised(shop, change):
    events = copy.deepcopy(shop[:60])
    change(events[7])
    pages = [body(events)]
    assert normalize_bodies_typed(pages) is None
    assert_same(normalize_bodies(pages), events)


def test_an_unknown_key_inside_a_list_element_is_declined(shop):
    carts = [e for e in shop if e["payload"]["@type"] == "cartViewed"][:5]
    assert carts
    events = copy.deepcopy(carts)
    items = events[0]["payload"]["cart"]["items"]
    assert items
    items[0]["somethingElse"] = True
    assert normalize_bodies_typed([body(events)]) is None
    assert_same(normalize_bodies([body(events)]), events)


def test_spec_0_8_events_take_the_dict_path(shop):
    rng = random.Random(3)
    events = [to_0_8(copy.deepcopy(e), rng) for e in shop[:80]]
    assert normalize_bodies_typed([body(events)]) is None
    assert_same(normalize_bodies([body(events)]), events)


def test_a_garbled_body_is_declined():
    assert normalize_bodies_typed([b'{"items": [{"id": "e1", "timestamp": 1}']) is None


def test_packed_batches_come_back_whole(shop):
    page = normalize_items(copy.deepcopy(shop[:300]))
    back = unpack_page(pack_page(page))
    assert back.spec_versions == page.spec_versions
    for event_type, table in page.tables.items():
        assert back.tables[event_type].equals(table)
        assert back.tables[event_type].schema.equals(table.schema, check_metadata=True)
    assert isinstance(back.tables[event_type], pa.Table)


def test_two_number_fields_one_sent_as_text_one_as_numbers(shop):
    # the dict path converts a group in one spelling and goes value by value when no single
    # spelling fits; the typed path declines such a group so that the result is the same
    events = _of_type(shop, "slotPersonalized")
    for e in events:
        e["payload"]["personalization"]["slotVersion"] = {"majorVersion": "3", "minorVersion": 4}
    assert normalize_bodies_typed([body(events)]) is None
    got = normalize_bodies([body(events)])
    assert_same(got, events)
    table = got.tables["slotPersonalized"]
    major = table.column("payload.personalization.slotVersion.majorVersion")
    assert major.to_pylist() == [3] * len(events)


_AT_ONCE = """
import importlib.util, sys, threading, types
spec = importlib.util.find_spec("croct_pandas")
package = types.ModuleType("croct_pandas")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["croct_pandas"] = package
sys.setswitchinterval(1e-6)  # switch threads as often as possible
from croct_pandas.normalize_typed import normalize_bodies_typed
body = sys.stdin.buffer.read()
barrier = threading.Barrier(8)
taken = []
def run():
    barrier.wait()
    taken.append(normalize_bodies_typed([body]) is not None)
threads = [threading.Thread(target=run) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sum(taken))
"""


def test_threads_normalising_at_once_in_a_fresh_process_do_not_crash(shop):
    # the first decoder is made while other threads want it too (an export's threads do this):
    # msgspec must not be handed half-made type information (it crashed ~1 run in 3)
    data = body(shop[:300])
    for _ in range(8):
        run = subprocess.run(
            [sys.executable, "-c", _AT_ONCE], input=data, capture_output=True, timeout=120
        )
        assert run.returncode == 0, run.stderr.decode()[-800:]
        assert run.stdout.strip() == b"8"
