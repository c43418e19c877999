"""Fault injection: validation, rates, what each fault looks like on the wire, reproducibility."""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from croct_pandas.emulator import Emulator, Faults, generate_events
from croct_pandas.emulator.faults import Injector
from croct_pandas.errors import InvalidArgumentError

KEY = "fault-key-0123456789"


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return generate_events(users=30, days=1, seed=8)


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["X-Api-Key"] = KEY
        yield session


def within_binomial(count: int, n: int, p: float) -> bool:
    """Whether ``count`` successes of ``n`` trials is plausible at rate ``p`` (4.5 sd)."""
    spread = 4.5 * math.sqrt(n * p * (1 - p))
    return n * p - spread <= count <= n * p + spread


def outcome(http: requests.Session, url: str, **params: Any) -> tuple[str, Any]:
    """What a client sees: ("ok", body), ("http", status), ("reset", None) or ("truncate", n)."""
    try:
        response = http.get(url + "/export/events", params={"pageSize": 20, **params}, timeout=10)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return "reset", None
    if response.status_code != 200:
        return "http", response.status_code
    assert int(response.headers["Content-Length"]) == len(response.content)
    try:
        return "ok", response.json()
    except ValueError:
        return "truncate", len(response.content)


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"error_rate": -0.1}, "error_rate"),
        ({"reset_rate": 1.5}, "reset_rate"),
        ({"truncate_rate": "0.1"}, "truncate_rate"),
        ({"slow_rate": float("nan")}, "slow_rate"),
        ({"repeat_rate": 2}, "repeat_rate"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": -3}, "rate_limit"),
        ({"slow_s": -1}, "slow_s"),
        ({"latency_s": float("inf")}, "latency_s"),
        ({"seed": 1.5}, "seed"),
        ({"retry_after": "no"}, "retry_after"),
        ({"error_rate": 0.5, "reset_rate": 0.3, "truncate_rate": 0.3}, "must not exceed 1"),
    ],
)
def test_bad_faults_are_refused_naming_the_parameter(arguments: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        Faults(**arguments)


def test_faults_are_frozen_and_keyword_only() -> None:
    faults = Faults(error_rate=0.1)
    with pytest.raises(AttributeError):
        faults.error_rate = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        Faults(1)  # type: ignore[misc]


def test_injector_rates_and_token_bucket_with_a_fake_clock() -> None:
    faults = Faults(seed=3, error_rate=0.2, reset_rate=0.1, truncate_rate=0.15, repeat_rate=0.3)
    injector = Injector(faults)
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(4000):
        for name in injector.decide(KEY).injected:
            seen[name.split(":")[0]] += 1
    assert within_binomial(seen["error"], 4000, 0.2)
    assert within_binomial(seen["reset"], 4000, 0.1)
    assert within_binomial(seen["truncate"], 4000, 0.15)
    now = [100.0]
    limited = Injector(Faults(rate_limit=2.0), clock=lambda: now[0])
    answers = [limited.decide(KEY).status for _ in range(3)]
    assert answers == [None, None, 429]  # a burst of one second's worth, then refused
    assert limited.decide(KEY).retry_after == 1
    assert limited.decide("another key").status is None  # buckets are per key
    now[0] += 0.5
    assert limited.decide(KEY).status is None  # one token back after half a second
    quiet = Injector(Faults(rate_limit=0.1, retry_after=False), clock=lambda: now[0])
    quiet.decide(KEY)
    refused = quiet.decide(KEY)
    assert refused.status == 429 and refused.retry_after is None


# -- on the wire --------------------------------------------------------------------------------


def test_errors_come_at_their_rate_as_problem_details(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    with Emulator(events, api_key=KEY, faults=Faults(seed=5, error_rate=0.3)) as emu:
        statuses: collections.Counter[int] = collections.Counter()
        for _ in range(300):
            response = http.get(emu.url + "/export/events", timeout=10)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                assert response.headers["Content-Type"] == "application/problem+json"
                body = response.json()
                assert body["status"] == response.status_code and body["title"]
        errors = sum(n for status, n in statuses.items() if status >= 500)
        assert within_binomial(errors, 300, 0.3)
        assert set(statuses) == {200, 500, 502, 503}
        for record in emu.requests:
            assert record.faults == ([f"error:{record.status}"] if record.status >= 500 else [])


def test_mixed_faults_match_the_log_request_by_request(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    faults = Faults(seed=9, error_rate=0.15, reset_rate=0.15, truncate_rate=0.15, slow_rate=0.2)
    with Emulator(events, api_key=KEY, faults=faults) as emu:
        seen = [outcome(http, emu.url) for _ in range(300)]
        log = list(emu.requests)
    assert len(log) == 300
    counts: collections.Counter[str] = collections.Counter()
    for (what, detail), record in zip(seen, log, strict=True):
        injected = [f for f in record.faults if f != "slow"]
        if what == "reset":
            assert injected == ["reset"]
        elif what == "truncate":
            assert injected == ["truncate"] and detail > 0
        elif what == "http":
            assert injected == [f"error:{detail}"] and record.status == detail
        else:
            assert injected == [] and len(detail["items"]) == 20 == record.items
        counts[what] += 1
        counts["slow"] += "slow" in record.faults
    assert within_binomial(counts["reset"], 300, 0.15)
    assert within_binomial(counts["truncate"], 300, 0.15)
    assert within_binomial(counts["http"], 300, 0.15)
    assert within_binomial(counts["slow"], 300, 0.2)


def test_a_reset_sends_headers_and_part_of_the_body_then_resets(
    events: list[dict[str, Any]],
) -> None:
    with Emulator(events, api_key=KEY, faults=Faults(reset_rate=1.0)) as emu:
        response = requests.get(
            emu.url + "/export/events", headers={"X-Api-Key": KEY}, stream=True, timeout=10
        )
        assert response.status_code == 200
        expected = int(response.headers["Content-Length"])
        received = bytearray()
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
            for chunk in response.iter_content(1024):
                received.extend(chunk)
        assert 0 < len(received) < expected
        assert emu.requests[0].faults == ["reset"]


def test_truncated_bodies_are_complete_responses_that_are_not_json(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    with Emulator(events, api_key=KEY, faults=Faults(truncate_rate=1.0)) as emu:
        for _ in range(20):
            response = http.get(emu.url + "/export/events", timeout=10)
            assert response.status_code == 200
            assert len(response.content) == int(response.headers["Content-Length"]) > 0
            with pytest.raises(json.JSONDecodeError):
                json.loads(response.content)
        assert all(r.faults == ["truncate"] for r in emu.requests)


@pytest.mark.parametrize("retry_after", [True, False])
def test_rate_limit_answers_429_with_or_without_retry_after(
    events: list[dict[str, Any]], http: requests.Session, retry_after: bool
) -> None:
    # 0.2 requests per second: the second of a quick burst is over the limit
    faults = Faults(rate_limit=0.2, retry_after=retry_after)
    with Emulator(events, api_key=KEY, faults=faults) as emu:
        responses = [http.get(emu.url + "/export/events", timeout=10) for _ in range(4)]
        other = requests.get(emu.url + "/export/events", headers={"X-Api-Key": "x"}, timeout=10)
        log = list(emu.requests)
    assert responses[0].status_code == 200
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    for response in limited:
        assert response.json()["status"] == 429
        if retry_after:
            assert response.headers["Retry-After"].isdigit()
            assert int(response.headers["Retry-After"]) >= 1
        else:
            assert "Retry-After" not in response.headers
    assert other.status_code == 401  # a wrong key is refused before any bucket
    assert sum("rate_limit" in r.faults for r in log) == len(limited)


def test_repeated_items_start_cursor_pages_and_the_log_says_how_many(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    with Emulator(events, api_key=KEY, faults=Faults(seed=2, repeat_rate=0.5)) as emu:
        items: list[dict[str, Any]] = []
        cursor = None
        pages: list[list[str]] = []
        while True:
            params = {"pageSize": 25, **({"cursor": cursor} if cursor else {})}
            body = http.get(emu.url + "/export/events", params=params, timeout=10).json()
            pages.append([e["id"] for e in body["items"]])
            items.extend(body["items"])
            cursor = body["nextCursor"]
            if not cursor:
                break
        log = list(emu.requests)
    assert "repeat" not in " ".join(log[0].faults)  # a first page has nothing to repeat
    repeats = 0
    for before, page, record in zip(pages, pages[1:], log[1:], strict=False):
        counts = [f for f in record.faults if f.startswith("repeat:")]
        if counts:
            n = int(counts[0].split(":")[1])
            assert 1 <= n <= 3 and page[:n] == before[-n:]
            repeats += 1
        else:
            assert not set(page) & set(before)
    assert within_binomial(repeats, len(pages) - 1, 0.5)
    unique = list(dict.fromkeys(e["id"] for e in items))
    assert unique == [e["id"] for e in emu.events]
    assert len(items) > len(unique)


def test_same_seed_same_faults_other_seed_other_faults(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    def run(seed: int) -> list[list[str]]:
        faults = Faults(seed=seed, error_rate=0.2, truncate_rate=0.2, slow_rate=0.3)
        with Emulator(events, api_key=KEY, faults=faults) as emu:
            for _ in range(60):
                outcome(http, emu.url)
            return [r.faults for r in emu.requests]

    first = run(4)
    assert first == run(4)
    assert first != run(5)


def test_latency_and_slow_answers_are_logged(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    faults = Faults(seed=1, latency_s=0.001, slow_rate=0.5, slow_s=0.001)
    with Emulator(events, api_key=KEY, faults=faults) as emu:
        for _ in range(40):
            assert outcome(http, emu.url)[0] == "ok"
        log = list(emu.requests)
    assert all("latency" in r.faults for r in log)
    assert within_binomial(sum("slow" in r.faults for r in log), 40, 0.5)
