"""The HTTP client: paging, parameters, retries, error mapping, the rate budget and secrecy.

Most tests fake HTTP at the transport level (a ``Request -> Response`` function); the last group
runs the default ``requests`` transport against a tiny ``http.server`` on 127.0.0.1.
"""

from __future__ import annotations

import copy
import http.server
import logging
import pickle
import random
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import orjson
import pytest
from fake_clock import FakeClock

from croct_pandas.client import Client, Page, Request, RequestsTransport, Response
from croct_pandas.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CancelledError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitError,
    RetriesExhaustedError,
    ServerError,
    TransportError,
)
from croct_pandas.retry import RateBudget

KEY = "sk-live-0123456789abcdef-SECRET"
NOV1 = 1_793_491_200_000
HOUR = 3_600_000
META = {
    "organizationName": "Acme",
    "organizationSlug": "acme",
    "workspaceName": "Shop",
    "workspaceSlug": "shop",
    "applicationName": "Web",
    "applicationSlug": "web",
}
TYPES = ("pageOpened", "productViewed", "orderPlaced")
EVENTS = [
    {
        "id": f"e{i:02d}",
        "timestamp": NOV1 + i * HOUR,
        "sessionId": "s",
        "userId": "u",
        "context": None,
        "payload": {"@type": TYPES[i % 3]},
    }
    for i in range(25)
]


class Top(random.Random):
    """Jitter that always picks the ceiling, so delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.waits: list[tuple[float, str]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_wait(self, seconds: float, reason: str) -> None:
        self.waits.append((seconds, reason))


class FakeAPI:
    """Serves EVENTS by cursor offset; ``script`` holds what the next calls get instead
    (a Response, an exception, or None for the normal answer)."""

    def __init__(self, events=EVENTS, *, tail_cursor=False, script=(), empty_cursor=None):
        self.events = list(events)
        self.tail_cursor = tail_cursor
        self.empty_cursor = empty_cursor
        self.script = list(script)
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            step = self.script.pop(0) if self.script else None
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Response):
            return step
        return self.answer(request)

    def answer(self, request: Request) -> Response:
        params: dict[str, list[str]] = {}
        for key, value in request.params:
            params.setdefault(key, []).append(value)
        start = int(params["start"][0]) if "start" in params else -1
        end = int(params["end"][0]) if "end" in params else 1 << 62
        wanted = set(params.get("events", TYPES))
        chosen = [
            e
            for e in self.events
            if start <= e["timestamp"] < end and e["payload"]["@type"] in wanted
        ]
        offset = int(params["cursor"][0][1:]) if "cursor" in params else 0
        size = int(params["pageSize"][0])
        chunk = chosen[offset : offset + size]
        after = offset + len(chunk)
        nxt: str | None = f"c{after}"
        if after >= len(chosen) and not self.tail_cursor:
            nxt = self.empty_cursor
        body = orjson.dumps({"items": chunk, "metadata": META, "nextCursor": nxt})
        return Response(200, {"Content-Type": "application/json"}, body)

    def params(self, n: int) -> list[tuple[str, str]]:
        return self.requests[n].params


def ok(body: Any) -> Response:
    return Response(200, {}, orjson.dumps(body))


def status(code: int, body: Any = None, **headers: str) -> Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body) if body is not None else b""
    return Response(code, headers, raw)


def make(api: FakeAPI, rec: Recorder | None = None, **kw: Any) -> Client:
    rec = rec or Recorder()
    kw.setdefault("rng", Top())
    return Client(KEY, transport=api, sleep=rec.sleep, on_wait=rec.on_wait, **kw)


# -- paging ------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty_cursor", [None, ""])
def test_pages_to_the_end_by_missing_cursor(empty_cursor):
    api = FakeAPI(empty_cursor=empty_cursor)
    pages = list(make(api).iter_pages(page_size=10))
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [p.cursor for p in pages] == [None, "c10", "c20"]
    assert [p.next_cursor for p in pages] == ["c10", "c20", None]
    assert [e["id"] for p in pages for e in p.items] == [e["id"] for e in EVENTS]
    assert len(api.requests) == 3
    assert all(p.metadata == META for p in pages)
    assert all(p.nbytes > 100 for p in pages)


def test_pages_to_the_end_by_empty_page():
    api = FakeAPI(tail_cursor=True)  # nextCursor never ends: an empty page does
    client = make(api)
    pages = list(client.iter_pages(page_size=10))
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert pages[-1].next_cursor == "c25"  # kept, to resume a stateful sync later
    assert len(api.requests) == 4
    assert dict(api.params(3))["cursor"] == "c25"
    # resuming from the kept cursor: one request, an empty first page
    resumed = list(client.iter_pages(page_size=10, cursor=pages[-1].next_cursor))
    assert len(resumed) == 1 and resumed[0].items == [] and resumed[0].metadata == META


def test_an_empty_first_page_is_yielded_once():
    api = FakeAPI(events=[])
    pages = list(make(api).iter_pages("2026-11-01", "2026-11-02"))
    assert len(pages) == 1
    assert pages[0] == Page(items=[], metadata=META, next_cursor=None, cursor=None, nbytes=ANY)
    assert len(api.requests) == 1


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY: Any = _Any()


def test_iter_events_flattens_pages():
    api = FakeAPI()
    got = list(make(api).iter_events(events=["orderPlaced"], page_size=3))
    assert [e["id"] for e in got] == [
        e["id"] for e in EVENTS if e["payload"]["@type"] == "orderPlaced"
    ]
    assert len(api.requests) == 3


def test_get_page_returns_one_page_and_its_cursor():
    api = FakeAPI()
    page = make(api).get_page(NOV1, NOV1 + 5 * HOUR, page_size=2, cursor="c2")
    assert [e["id"] for e in page.items] == ["e02", "e03"]
    assert (page.cursor, page.next_cursor) == ("c2", "c4")


def test_iteration_arguments_are_checked_before_any_request():
    api = FakeAPI()
    client = make(api)
    with pytest.raises(InvalidArgumentError, match="start="):
        client.iter_pages(start=1_793_491_200)
    with pytest.raises(InvalidArgumentError, match="did you mean 'orderPlaced'"):
        client.iter_events(events="OrderPlaced")
    with pytest.raises(InvalidArgumentError, match="page_size"):
        client.get_page(page_size=5000)
    with pytest.raises(InvalidArgumentError, match="must be before end"):
        client.iter_pages("2026-11-02", "2026-11-01")
    with pytest.raises(InvalidArgumentError, match="cursor"):
        client.iter_pages(cursor="")
    with pytest.raises(InvalidArgumentError, match="event_id"):
        client.get_event("")
    assert api.requests == []


# -- parameters --------------------------------------------------------------------------------


def test_params_order_repeats_and_the_same_window_on_every_page():
    api = FakeAPI()
    client = make(api, base_url="https://api.example.com/export/")
    list(
        client.iter_pages(
            "2026-11-01", NOV1 + 24 * HOUR, ["productViewed", "pageOpened"], page_size=4
        )
    )
    window = [
        ("start", str(NOV1)),
        ("end", str(NOV1 + 24 * HOUR)),
        ("pageSize", "4"),
        ("events", "productViewed"),
        ("events", "pageOpened"),
    ]
    assert len(api.requests) == 4
    assert api.params(0) == window
    assert api.params(1) == [*window, ("cursor", "c4")]
    assert api.params(3) == [*window, ("cursor", "c12")]
    for request in api.requests:
        assert request.method == "GET"
        assert request.url == "https://api.example.com/export/events"
        assert request.headers["X-Api-Key"] == KEY
        assert request.headers["Accept"] == "application/json"
        assert request.timeout == 30.0


def test_no_events_param_without_a_filter_and_no_start_without_start():
    api = FakeAPI()
    make(api, timeout=2.5).get_page(end=datetime(2026, 11, 2))
    assert api.params(0) == [("end", str(NOV1 + 24 * HOUR)), ("pageSize", "1000")]
    assert api.requests[0].timeout == 2.5
    make(api).get_page(events="orderPlaced")
    assert api.params(1) == [("pageSize", "1000"), ("events", "orderPlaced")]


def test_get_event_quotes_the_id_and_returns_the_event():
    api = FakeAPI(script=[ok({"metadata": META, "event": EVENTS[3]})])
    assert make(api).get_event("a/b c") == EVENTS[3]
    assert api.requests[0].url == "https://api.croct.io/export/events/a%2Fb%20c"
    assert api.requests[0].params == []


# -- retries -----------------------------------------------------------------------------------

FAILURES = {
    "503": status(503, {"title": "Unavailable"}),
    "500 no body": status(500),
    "502 html": status(502, b"<html>bad gateway</html>"),
    "408": status(408),
    "transport": TransportError("connection failed (ConnectionError: reset by peer)"),
    "truncated json": Response(200, {}, b'{"items": [{"id": "e1"}, {"id'),
    "not json": Response(200, {}, b"<html>ok</html>"),
    "empty 200": Response(200, {}, b""),
    "list body": ok([1, 2]),
    "no items": ok({"metadata": META, "nextCursor": None}),
    "items not list": ok({"items": {"id": "e1"}}),
    "item not object": ok({"items": [1]}),
    "metadata not object": ok({"items": [], "metadata": []}),
    "cursor not str": ok({"items": [], "nextCursor": 7}),
}


@pytest.mark.parametrize("failure", list(FAILURES), ids=list(FAILURES))
def test_each_failure_kind_is_retried_with_backoff(failure):
    rec = Recorder()
    api = FakeAPI(script=[FAILURES[failure]] * 3)
    page = make(api, rec).get_page(page_size=10)
    assert len(page.items) == 10
    assert len(api.requests) == 4
    assert rec.sleeps == [0.5, 1.0, 2.0]
    assert rec.waits == [(0.5, "retry 1/8"), (1.0, "retry 2/8"), (2.0, "retry 3/8")]
    assert all(r.params == api.requests[0].params for r in api.requests)


def test_backoff_is_capped_and_jitter_is_seeded():
    rec = Recorder()
    api = FakeAPI(script=[status(503)] * 6)
    make(api, rec, backoff=1.0, max_backoff=4.0).get_page()
    assert rec.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    runs = []
    for _ in range(2):
        seeded = Recorder()
        make(FakeAPI(script=[status(503)] * 4), seeded, rng=random.Random(42)).get_page()
        runs.append(seeded.sleeps)
    assert runs[0] == runs[1]
    assert all(0 <= s <= c for s, c in zip(runs[0], [0.5, 1.0, 2.0, 4.0]))


def test_retry_after_delta_seconds_is_obeyed():
    rec = Recorder()
    api = FakeAPI(script=[status(429, None, **{"Retry-After": "7"})])
    make(api, rec).get_page()
    assert rec.sleeps == [7.0]
    assert rec.waits == [(7.0, "rate limited")]


def test_retry_after_http_date_is_obeyed():
    rec = Recorder()
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    api = FakeAPI(script=[status(429, None, **{"retry-after": when})])
    make(api, rec).get_page()
    assert len(rec.sleeps) == 1 and 10.0 < rec.sleeps[0] <= 20.0


def test_retry_after_is_capped():
    rec = Recorder()
    api = FakeAPI(script=[status(429, None, **{"Retry-After": "3600"})] * 2)
    make(api, rec, max_retry_after=45.0).get_page()
    assert rec.sleeps == [45.0, 45.0]


def test_rate_limit_without_retry_after_backs_off_on_its_own():
    rec = Recorder()
    api = FakeAPI(script=[status(429), status(429, {"title": "Too many requests"})])
    make(api, rec).get_page()
    assert rec.sleeps == [0.5, 1.0]
    assert [why for _, why in rec.waits] == ["rate limited", "rate limited"]


def test_retry_after_on_503_is_obeyed_too():
    rec = Recorder()
    make(FakeAPI(script=[status(503, None, **{"Retry-After": "3"})]), rec).get_page()
    assert rec.sleeps == [3.0]


def test_max_retries_zero_fails_on_first_error():
    api = FakeAPI(script=[status(500)])
    with pytest.raises(RetriesExhaustedError, match="failed 1 times"):
        make(api, max_retries=0).get_page()


# -- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body", "cls", "text"),
    [
        (401, {"title": "Unauthorized", "type": "https://croct.help/api/unauthorized"},
         AuthenticationError, "CROCT_API_KEY"),
        (403, {"title": "Forbidden", "detail": "missing data_export"},
         AuthenticationError, "missing data_export"),
        (400, {"title": "Invalid input", "detail": "pageSize must be at most 1000"},
         BadRequestError, "pageSize must be at most 1000"),
        (400, {"title": "Invalid input", "details": "Unknown event type foo"},
         BadRequestError, "Unknown event type foo"),
        (400, b"plain text problem", BadRequestError, "plain text problem"),
        (404, {"title": "Not found", "status": 404}, NotFoundError, "Not found"),
        (302, None, APIError, "status 302"),
        (409, None, APIError, "status 409"),
    ],
)  # fmt: skip
def test_client_errors_are_mapped_and_not_retried(code, body, cls, text):
    rec = Recorder()
    api = FakeAPI(script=[status(code, body, Location="https://elsewhere.example.com/")])
    with pytest.raises(cls) as info:
        make(api, rec).get_page()
    assert type(info.value) is cls
    assert info.value.status == code
    assert text in str(info.value)
    assert len(api.requests) == 1 and rec.sleeps == []


def test_problem_details_fields_are_kept():
    body = {"title": "Invalid input", "type": "https://croct.help/api/invalid-input", "detail": "d"}
    with pytest.raises(BadRequestError) as info:
        make(FakeAPI(script=[status(400, body)])).get_page()
    err = info.value
    assert (err.title, err.detail, err.problem_type) == (
        "Invalid input",
        "d",
        "https://croct.help/api/invalid-input",
    )


def test_get_event_not_found():
    api = FakeAPI(script=[status(404, {"title": "Event not found"})])
    with pytest.raises(NotFoundError, match="Event not found"):
        make(api).get_event("nope")


def test_get_event_invalid_body_is_retried():
    rec = Recorder()
    api = FakeAPI(script=[ok({"metadata": META}), ok({"event": EVENTS[0]})])
    assert make(api, rec).get_event("e00") == EVENTS[0]
    assert rec.sleeps == [0.5]


# -- exhaustion --------------------------------------------------------------------------------


def test_exhaustion_says_what_failed_and_how_to_resume_from_a_cursor():
    api = FakeAPI(script=[None, *[status(503, {"title": "Service unavailable"})] * 4])
    client = make(api, max_retries=3)
    pages = client.iter_pages("2026-11-01", events="orderPlaced", page_size=4)
    first = next(pages)
    with pytest.raises(RetriesExhaustedError) as info:
        next(pages)
    message = str(info.value)
    assert "failed 4 times" in message
    assert "HTTP 503: Service unavailable" in message
    assert "/export/events?start=1793491200000&pageSize=4&events=orderPlaced&cursor=c4" in message
    assert f"call again with cursor={first.next_cursor!r} to continue from this page" in message
    assert "read_croct_events resumes from its cache" in message
    assert isinstance(info.value.last_error, ServerError)
    assert len(api.requests) == 5
    # the hint works: the same call with that cursor continues the chain
    rest = list(client.iter_pages("2026-11-01", events="orderPlaced", page_size=4, cursor="c4"))
    assert [e["id"] for p in [first, *rest] for e in p.items] == [
        e["id"] for e in EVENTS if e["payload"]["@type"] == "orderPlaced"
    ]


def test_exhaustion_without_a_cursor_and_after_transport_errors():
    api = FakeAPI(script=[TransportError("timed out after 30 s (ReadTimeout: ...)")] * 3)
    with pytest.raises(RetriesExhaustedError) as info:
        make(api, max_retries=2).get_page(NOV1)
    message = str(info.value)
    assert "timed out after 30 s" in message
    assert "start this chain over" in message
    assert "cursor=" not in message
    assert isinstance(info.value.last_error, TransportError)


def test_exhaustion_by_rate_limiting_keeps_the_retry_after():
    rec = Recorder()
    api = FakeAPI(script=[status(429, {"title": "Too many requests"}, **{"Retry-After": "2"})] * 2)
    with pytest.raises(RetriesExhaustedError, match="HTTP 429: Too many requests") as info:
        make(api, rec, max_retries=1).get_page()
    last = info.value.last_error
    assert isinstance(last, RateLimitError) and last.retry_after == 2.0
    assert rec.sleeps == [2.0]


# -- the shared rate budget --------------------------------------------------------------------


def test_a_429_holds_the_shared_budget_and_slows_it():
    clock = FakeClock()
    budget = RateBudget(clock=clock, sleep=clock.sleep, increase=1.0)
    waits: list[tuple[float, str]] = []
    api = FakeAPI(script=[None, None, status(429, None, **{"Retry-After": "4"})])

    def on_wait(seconds: float, reason: str) -> None:
        waits.append((seconds, reason))

    client = Client(
        KEY, transport=api, sleep=clock.sleep, budget=budget, on_wait=on_wait, rng=Top()
    )
    other = Client(KEY, transport=api, sleep=clock.sleep, budget=budget, rng=Top())
    client.get_page(page_size=1)
    client.get_page(page_size=1)
    client.get_page(page_size=1)  # 429, then held 4 s by the budget, then success
    assert waits == [(4.0, "rate limited")]
    assert clock.now == 4.0
    limited = budget.rate
    assert limited is not None
    # another client on the same budget is now paced, not free
    other.get_page(page_size=1)
    other.get_page(page_size=1)
    assert clock.now > 4.0
    assert budget.rate is not None and budget.rate > limited  # successes grow it back


def test_threads_share_one_client_and_one_budget():
    clock = FakeClock()
    budget = RateBudget(clock=clock, sleep=clock.sleep)
    rng = random.Random(5)
    lock = threading.Lock()
    base = FakeAPI()

    def flaky(request: Request) -> Response:
        with lock:
            roll = rng.random()
        if roll < 0.15:
            return status(503)
        if roll < 0.25:
            return status(429, None, **{"Retry-After": "1"})
        if roll < 0.3:
            raise TransportError("connection failed (reset)")
        return base(request)

    client = Client(KEY, transport=flaky, sleep=clock.sleep, budget=budget, max_retries=50)
    windows = [(NOV1 + i * 6 * HOUR, NOV1 + (i + 1) * 6 * HOUR) for i in range(4)] * 3
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start, end = windows[n]
            results[n] = [e["id"] for e in client.iter_events(start, end, page_size=2)]
        except BaseException as exc:  # pragma: no cover - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(windows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for n, (start, end) in enumerate(windows):
        assert results[n] == [e["id"] for e in EVENTS if start <= e["timestamp"] < end]


# -- logging and secrecy -----------------------------------------------------------------------


def test_debug_log_has_one_line_per_request_and_retry(caplog):
    caplog.set_level(logging.DEBUG, logger="croct_pandas.client")
    make(FakeAPI(script=[status(503)])).get_page(NOV1, page_size=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "croct_pandas.client"]
    assert len(lines) == 3
    assert lines[0].startswith("GET /export/events?start=1793491200000&pageSize=5 -> 503, 0 bytes")
    assert lines[1].startswith("retry 1/8 of GET /export/events?start=1793491200000&pageSize=5")
    assert "-> 200" in lines[2]


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        last = getattr(exc, "last_error", None)
        yield from ([last] if isinstance(last, BaseException) else [])
        exc = exc.__cause__ or exc.__context__


def test_the_key_appears_nowhere(caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    echo = {"title": "Bad", "detail": f"key {KEY} refused"}
    failures = [
        TransportError("connection failed"),
        status(500, f"server saw X-Api-Key: {KEY}".encode()),
        status(429, echo, **{"Retry-After": "1"}),
        Response(200, {}, b'{"items": ['),
        status(503, echo),
    ]
    rec = Recorder()
    seen: list[str] = []
    errors: list[BaseException] = []
    for script, kw in [
        (failures, {"max_retries": 4}),
        ([status(401, echo)], {}),
        ([status(400, echo)], {}),
        ([status(404, echo)], {}),
        ([ValueError("transport bug")], {}),
    ]:
        api = FakeAPI(script=script)
        client = make(api, rec, **kw)
        seen += [repr(client), str(vars(client)), repr(api.requests)]
        try:
            client.get_page(cursor="c1")
        except Exception as exc:
            errors.append(exc)
        seen += [repr(r) for r in api.requests]
    assert [type(e).__name__ for e in errors] == [
        "RetriesExhaustedError",
        "AuthenticationError",
        "BadRequestError",
        "NotFoundError",
        "ValueError",
    ]
    for error in errors:
        for exc in _chain(error):
            seen += [str(exc), repr(exc), str(vars(exc))]
    for record in caplog.records:
        seen += [record.getMessage(), str(record.msg), repr(record.args)]
    seen += [repr(w) for w in rec.waits]
    assert len(seen) > 30
    for text in seen:
        assert KEY not in text
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(client)
    with pytest.raises(TypeError, match="never pickled"):
        copy.deepcopy(client)
    assert repr(client) == "Client(base_url='https://api.croct.io', api_key='***')"


def test_key_from_environment_and_missing_key(monkeypatch):
    monkeypatch.setenv("CROCT_API_KEY", KEY)
    api = FakeAPI()
    client = Client(transport=api)
    client.get_page()
    assert api.requests[0].headers["X-Api-Key"] == KEY
    assert KEY not in repr(client)
    monkeypatch.delenv("CROCT_API_KEY")
    with pytest.raises(InvalidArgumentError, match="CROCT_API_KEY"):
        Client(transport=api)


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"max_retries": 2.0}, "max_retries"),
        ({"backoff": -0.1}, "backoff"),
        ({"backoff": float("nan")}, "backoff"),
        ({"max_backoff": 0.1}, "max_backoff"),
        ({"max_backoff": float("inf")}, "max_backoff"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"sleep": None}, "sleep"),
        ({"transport": "http"}, "transport"),
        ({"budget": 10}, "budget"),
        ({"on_wait": print, "rng": 42}, "rng"),
        ({"on_wait": 1}, "on_wait"),
        ({"base_url": "http://api.croct.io"}, "base_url"),
    ],
)
def test_client_validates_everything_up_front(kw, name):
    with pytest.raises(InvalidArgumentError) as info:
        Client(KEY, **kw)
    assert name in str(info.value)
    assert KEY not in str(info.value)


# -- the default transport against a real loopback server ---------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: LoopbackServer = self.server  # type: ignore[assignment]
        with server.lock:
            mode = server.modes.pop(0) if server.modes else "ok"
            server.seen.append((self.path, dict(self.headers)))
        if mode == "reset":
            # no answer at all: the client sees the connection close under it
            self.close_connection = True
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            return
        body = orjson.dumps({"items": [EVENTS[0]], "metadata": META, "nextCursor": None})
        if mode == "slow":
            time.sleep(1.0)
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:9/export/events")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) + (500 if mode == "truncate" else 0)))
        self.end_headers()
        self.wfile.write(body[:20] if mode == "truncate" else body)

    def log_message(self, *args: Any) -> None:
        pass


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.modes: list[str] = []
        self.seen: list[tuple[str, dict[str, str]]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the slow mode writes to a socket the client already gave up on

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _request(url: str, timeout: float = 5.0) -> Request:
    headers = {"X-Api-Key": KEY, "Accept": "application/json"}
    return Request("GET", url + "/export/events", [("pageSize", "10")], headers, timeout)


def test_default_transport_round_trip(server):
    transport = RequestsTransport(trust_env=False)
    response = transport(_request(server.url))
    transport.close()
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert orjson.loads(response.body)["items"] == [EVENTS[0]]
    path, headers = server.seen[0]
    assert path == "/export/events?pageSize=10"
    assert headers["X-Api-Key"] == KEY and headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("mode", "text"),
    [("reset", "connection failed"), ("truncate", "cut off"), ("slow", "timed out after 0.2 s")],
)
def test_default_transport_turns_failures_into_transport_errors(server, mode, text):
    server.modes.append(mode)
    transport = RequestsTransport(trust_env=False)
    with pytest.raises(TransportError, match=text) as info:
        transport(_request(server.url, timeout=0.2))
    transport.close()
    assert KEY not in str(info.value)
    assert info.value.__cause__ is None


def test_connection_refused_is_a_transport_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError, match="connection failed"):
        RequestsTransport(trust_env=False)(_request(f"http://127.0.0.1:{port}", timeout=1.0))


def test_client_retries_over_real_sockets(server):
    server.modes += ["reset", "truncate", "slow"]
    rec = Recorder()
    with Client(KEY, base_url=server.url + "/export", timeout=0.2, sleep=rec.sleep) as client:
        page = client.get_page(page_size=10)
    assert page.items == [EVENTS[0]]
    assert len(rec.sleeps) == 3
    assert len(server.seen) == 4


def test_redirects_are_not_followed(server):
    server.modes.append("redirect")
    client = Client(KEY, base_url=server.url, max_retries=0)
    with pytest.raises(APIError) as info:
        client.get_page()
    client.close()
    assert info.value.status == 302
    assert len(server.seen) == 1


def test_loopback_ignores_proxy_settings(server, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # a transport that trusts the environment goes to the dead proxy...
    with pytest.raises(TransportError):
        RequestsTransport(trust_env=True)(_request(server.url, timeout=1.0))
    assert server.seen == []
    # ...the client's transport for a loopback base URL does not
    with Client(KEY, base_url=server.url, max_retries=0) as client:
        assert client.get_page().items == [EVENTS[0]]
    assert len(server.seen) == 1


def test_each_thread_gets_its_own_session(server):
    transport = RequestsTransport(trust_env=False)
    sessions = []
    lock = threading.Lock()

    def work() -> None:
        transport(_request(server.url))
        with lock:
            sessions.append(transport._session())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    transport(_request(server.url))
    sessions.append(transport._session())
    assert len({id(s) for s in sessions}) == 4
    assert len(server.seen) == 4
    transport.close()


def test_key_fingerprint_is_pbkdf2_and_remembered_without_the_key() -> None:
    import hashlib

    import croct_pandas.client as client_module

    key = "fingerprint-test-key-1f3a9c"
    client = Client(key, base_url="https://api.example")
    expected = hashlib.pbkdf2_hmac("sha256", key.encode(), b"salt\0https://api.example", 1000).hex()
    assert client.key_fingerprint(b"salt", 1000) == expected
    # the second call is remembered: the same answer, and nothing of the key is kept
    assert client.key_fingerprint(b"salt", 1000) == expected
    memo = client_module._FINGERPRINTS
    assert expected in memo.values()
    assert all(key.encode() not in digest for digest in memo)
    # another salt, base URL or key is another fingerprint
    assert client.key_fingerprint(b"other", 1000) != expected
    assert Client(key, base_url="https://other.example").key_fingerprint(b"salt", 1000) != expected
    assert Client(key + "x", base_url="https://api.example").key_fingerprint(b"salt", 1000) != (
        expected
    )


# -- cancelling ------------------------------------------------------------------------------


def test_a_set_cancel_sends_nothing_and_a_bad_one_is_refused() -> None:
    sent: list[Request] = []

    def transport(request: Request) -> Response:
        sent.append(request)
        return Response(200, {}, b'{"items": [], "nextCursor": null}')

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError, match="/export/events"):
        Client(KEY, transport=transport, cancel=cancel).get_page()
    assert sent == []
    with pytest.raises(InvalidArgumentError, match=r"cancel accepts a threading\.Event"):
        Client(KEY, transport=transport, cancel=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "headers", "options"),
    [
        # the first retry's backoff waits up to 20 s (a real time.sleep)
        (503, {}, {"backoff": 20.0, "max_backoff": 20.0, "rng": random.Random(1)}),
        # the rate budget holds every request for the 20 s Retry-After (a real time.sleep)
        (429, {"Retry-After": "20"}, {"budget": RateBudget()}),
    ],
    ids=["backoff", "rate-budget"],
)
def test_cancel_ends_a_real_wait_at_once(
    status: int, headers: dict[str, str], options: dict[str, Any]
) -> None:
    cancel = threading.Event()
    sent: list[float] = []

    def transport(request: Request) -> Response:
        sent.append(time.monotonic())
        return Response(status, headers, b'{"title": "Try later"}')

    client = Client(KEY, transport=transport, cancel=cancel, **options)
    threading.Timer(0.3, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(CancelledError):
        client.get_page()
    assert len(sent) == 1
    assert time.monotonic() - began < 10


def test_an_answer_arriving_after_the_cancel_is_dropped() -> None:
    cancel = threading.Event()

    def transport(request: Request) -> Response:
        cancel.set()  # set while the request is in flight
        return Response(200, {}, b'{"items": [{"id": "a"}], "nextCursor": "c2"}')

    with pytest.raises(CancelledError):
        Client(KEY, transport=transport, cancel=cancel).get_page()


def test_settings_changed_on_the_client_take_effect() -> None:
    sent: list[Request] = []

    def transport(request: Request) -> Response:
        sent.append(request)
        return Response(503, {}, b'{"title": "Unavailable"}')

    client = Client(KEY, transport=transport, sleep=lambda seconds: None, max_retries=8)
    client.max_retries = 1
    client.timeout = 2.5
    with pytest.raises(RetriesExhaustedError):
        client.get_page()
    assert len(sent) == 2 and {r.timeout for r in sent} == {2.5}
    assert (client.max_retries, client.timeout) == (1, 2.5)


def test_a_budget_with_its_own_sleep_sees_the_cancel_when_it_returns() -> None:
    cancel = threading.Event()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        cancel.set()

    budget = RateBudget(sleep=sleep)
    budget.on_rate_limited(5.0)
    assert budget.acquire(cancel=cancel) == 0.0
    assert len(slept) == 1 and slept[0] == pytest.approx(5.0, abs=0.5)  # one wait, then out
