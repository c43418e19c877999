"""Page: a body checked whole as it arrives, its events parsed only when read."""

from __future__ import annotations

import orjson
import pytest

from croct_pandas.errors import TransportError
from croct_pandas.page import Page

EVENTS = [
    {"id": "e1", "timestamp": 1767225600000, "payload": {"@type": "tabOpened", "tabId": "t"}},
    {"id": "e2", "timestamp": 1767225600500, "payload": {"@type": "tabOpened", "tabId": "é"}},
]
META = {"applicationSlug": "shop"}


def body_of(items: object = EVENTS, **extra: object) -> bytes:
    return orjson.dumps({"items": items, "metadata": META, "nextCursor": "c2", **extra})


def test_a_body_becomes_a_page_whose_events_equal_the_wire() -> None:
    body = body_of()
    page = Page.from_body(body, cursor="c1")
    assert (page.count, page.next_cursor, page.cursor, page.nbytes) == (2, "c2", "c1", len(body))
    assert page.metadata == META
    assert page.last_item() == EVENTS[-1]
    assert page.items == EVENTS
    assert orjson.loads(page.items_json()) == EVENTS
    assert page == Page(EVENTS, META, "c2", cursor="c1", nbytes=len(body))


def test_events_are_not_parsed_until_read() -> None:
    page = Page.from_body(body_of())
    assert page._items is None
    page.items_json(), page.last_item()
    assert page._items is None
    assert page.items[0]["id"] == "e1" and page._items is not None


def test_an_empty_cursor_and_missing_metadata_read_as_none_and_empty() -> None:
    page = Page.from_body(b'{"items": [], "nextCursor": ""}')
    assert (page.count, page.next_cursor, page.metadata, page.items) == (0, None, {}, [])
    assert page.last_item() is None and page.items_json() == b"[]"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (body_of()[:-7], "truncated"),
        (b"", "truncated"),
        (b"[1, 2]", "invalid body"),
        (body_of(items=[1, 2]), "not a list of objects"),
        (body_of(items={"id": "e1"}), "invalid body"),
        (body_of(metadata=[1]), "invalid body"),
        (body_of(nextCursor=7), "invalid body"),
        (b'{"items": [{"id": tru}]}', "invalid or truncated JSON"),
        (b'{"items": [{"id": "\xff"}]}', "invalid or truncated JSON"),
        (b'{"nextCursor": "c"}', "invalid body"),
    ],
)
def test_a_body_that_is_not_a_page_is_a_transport_error(body: bytes, message: str) -> None:
    # the client retries transport errors: a cut or garbled body is fetched again
    with pytest.raises(TransportError, match=message):
        Page.from_body(body)


def test_an_event_orjson_refuses_fails_when_read_with_a_transport_error() -> None:
    page = Page.from_body(b'{"items": [{"value": 1e999}]}')
    assert page.count == 1
    with pytest.raises(TransportError, match="invalid JSON in a page's events"):
        _ = page.items


def test_repr_counts_events_instead_of_printing_them() -> None:
    text = repr(Page.from_body(body_of(), cursor="c1"))
    assert "<2 events>" in text and "tabOpened" not in text and "'c1'" in text
