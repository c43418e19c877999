"""The emulator over real sockets: paging, windows, filters, cursors, errors, log, CLI."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from croct_pandas.emulator import APP_METADATA, Emulator, generate_events
from croct_pandas.emulator.dialect import event_id
from croct_pandas.errors import InvalidArgumentError

KEY = "test-key-0123456789"
ROOT = Path(__file__).resolve().parents[1]


def kind(event: dict[str, Any]) -> str:
    return event["payload"].get("@type", event["payload"].get("type"))


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return generate_events(users=60, days=2, seed=21)


@pytest.fixture(scope="module", params=[("0.7.1", False), ("0.8.0", False), ("0.7.1", True)])
def emu(request: pytest.FixtureRequest, events: list[dict[str, Any]]) -> Iterator[Emulator]:
    dialect, tail = request.param
    with Emulator(events, api_key=KEY, dialect=dialect, tail_cursor=tail, seed=21) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def plain(events: list[dict[str, Any]]) -> Iterator[Emulator]:
    with Emulator(events, api_key=KEY) as emulator:
        yield emulator


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["X-Api-Key"] = KEY
        yield session


def export(
    http: requests.Session, emu: Emulator, params: dict[str, Any], page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """Follow the cursor chain the way Croct's docs do; returns the items and the page count."""
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, "pageSize": page_size, **({"cursor": cursor} if cursor else {})}
        response = http.get(emu.url + "/export/events", params=query, timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        pages += 1
        assert set(body) == {"items", "metadata", "nextCursor"}
        assert body["metadata"] == emu.metadata and len(body["metadata"]) == 6
        assert len(body["items"]) <= page_size
        if emu.tail_cursor:
            assert body["nextCursor"], "tail mode: every page carries a cursor"
            if not body["items"]:
                break
        items.extend(body["items"])
        cursor = body["nextCursor"]
        if not cursor:
            break
        assert pages < 5000
    return items, pages


def expected(emu: Emulator, start: int | None, end: int | None, types: Any) -> list[str]:
    return [
        event_id(e)
        for e in emu.events
        if (start is None or e["timestamp"] >= start)
        and (end is None or e["timestamp"] < end)
        and (types is None or kind(e) in types)
    ]


@pytest.mark.parametrize(
    ("page_size", "window", "types"),
    [
        (1, (0.40, 0.44), None),
        (7, None, ["orderPlaced", "checkoutStarted", "cartAbandoned"]),
        (100, None, None),
        (1000, (0.25, 0.75), None),
        (100, (0.1, 0.9), ["pageOpened", "productViewed"]),
        (7, (0.5, None), ["userSignedIn"]),
    ],
)
def test_paging_reaches_every_event_exactly_once(
    emu: Emulator,
    http: requests.Session,
    page_size: int,
    window: tuple[float, float | None] | None,
    types: list[str] | None,
) -> None:
    first, last = emu.events[0]["timestamp"], emu.events[-1]["timestamp"]
    start = end = None
    params: dict[str, Any] = {}
    if window is not None:
        start = int(first + (last - first) * window[0])
        params["start"] = start
        if window[1] is not None:
            end = int(first + (last - first) * window[1])
            params["end"] = end
    if types is not None:
        params["events"] = types
    items, pages = export(http, emu, params, page_size)
    ids = [event_id(item) for item in items]
    want = expected(emu, start, end, types)
    assert want, "the case must select something"
    assert ids == want
    chosen = set(want)
    assert items == [e for e in emu.events if event_id(e) in chosen]
    assert pages >= -(-len(want) // page_size)


def test_tail_cursor_mode_ends_with_an_empty_page_that_keeps_a_cursor(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    with Emulator(events[:5], api_key=KEY, tail_cursor=True) as emu:
        url = emu.url + "/export/events"
        page = http.get(url, params={"pageSize": 5}).json()
        assert len(page["items"]) == 5 and page["nextCursor"]
        again = http.get(url, params={"pageSize": 5, "cursor": page["nextCursor"]}).json()
        assert again["items"] == [] and again["nextCursor"]
        still = http.get(url, params={"pageSize": 5, "cursor": again["nextCursor"]}).json()
        assert still["items"] == [] and still["nextCursor"]
    with Emulator(events[:5], api_key=KEY) as emu:
        page = http.get(emu.url + "/export/events", params={"pageSize": 5}).json()
        assert len(page["items"]) == 5 and page["nextCursor"] == ""


def test_start_is_inclusive_end_exclusive_and_page_size_defaults_to_100(
    plain: Emulator, http: requests.Session
) -> None:
    url = plain.url + "/export/events"
    moment = plain.events[300]["timestamp"]
    at = [event_id(e) for e in plain.events if e["timestamp"] == moment]
    page = http.get(url, params={"start": moment, "pageSize": 1000}).json()
    assert [event_id(e) for e in page["items"][: len(at)]] == at
    page = http.get(url, params={"end": moment, "pageSize": 1000}).json()
    assert all(e["timestamp"] < moment for e in page["items"])
    assert len(http.get(url).json()["items"]) == 100
    empty = http.get(url, params={"start": 1, "end": 2}).json()
    assert empty == {"items": [], "metadata": plain.metadata, "nextCursor": ""}


def test_single_event_by_id(emu: Emulator, http: requests.Session) -> None:
    wanted = emu.events[42]
    response = http.get(f"{emu.url}/export/events/{event_id(wanted)}")
    assert response.status_code == 200
    assert response.json() == {"metadata": emu.metadata, "event": wanted}
    missing = http.get(f"{emu.url}/export/events/no-such-event")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["status"] == 404 and "no-such-event" in missing.json()["detail"]


# -- refusals -------------------------------------------------------------------------------


def cursor_of(emu: Emulator, http: requests.Session, **params: Any) -> str:
    body = http.get(emu.url + "/export/events", params={"pageSize": 3, **params}).json()
    cursor: str = body["nextCursor"]
    assert cursor
    return cursor


def tampered(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[5] ^= 1  # move the position by a few events
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 1001}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
        ({"pageSize": "2.5"}, "pageSize"),
        ({"start": "yesterday"}, "start"),
        ({"end": "1.5e12"}, "end"),
        ({"start": 1_800_000_000_000, "end": 1_700_000_000_000}, "end"),
        ({"start": 1_700_000_000_000, "end": 1_700_000_000_000}, "end"),
        ({"start": [1, 2]}, "start"),
        ({"events": ["pageOpened", "pageViewed"]}, "events"),
        ({"events": ""}, "events"),
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": "AAAA"}, "cursor"),
        ({"cursor": ""}, "cursor"),
    ],
)
def test_invalid_input_gets_400_naming_the_parameter(
    plain: Emulator, http: requests.Session, params: dict[str, Any], name: str
) -> None:
    response = http.get(plain.url + "/export/events", params=params)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://croct.help/api/invalid-input"
    assert body["title"] == "Invalid input" and body["status"] == 400
    assert body["detail"].startswith(name + ":"), body


def test_cursors_are_bound_to_their_query_and_their_emulator(
    plain: Emulator, events: list[dict[str, Any]], http: requests.Session
) -> None:
    url = plain.url + "/export/events"
    start = plain.events[10]["timestamp"]
    cursor = cursor_of(plain, http, start=start, events=["pageOpened", "pageLoaded"])
    same = {"start": start, "events": ["pageLoaded", "pageOpened"], "cursor": cursor}
    assert http.get(url, params=same).status_code == 200  # the order of types does not matter
    for changed in (
        {"start": start + 1},
        {"end": start + 10**9},
        {"events": ["pageOpened"]},
        {"events": None},
        {"cursor": tampered(cursor)},
    ):
        response = http.get(url, params={**same, **changed})
        assert response.status_code == 400, changed
        assert response.json()["detail"].startswith("cursor:")
    with Emulator(events, api_key=KEY) as other:
        foreign = cursor_of(other, http)
    response = http.get(url, params={"cursor": foreign})
    assert response.status_code == 400 and response.json()["detail"].startswith("cursor:")


@pytest.mark.parametrize("key", [None, "wrong-key", KEY.upper()])
def test_missing_or_wrong_key_gets_401(plain: Emulator, key: str | None) -> None:
    headers = {} if key is None else {"X-Api-Key": key}
    for path in ("/export/events", f"/export/events/{event_id(plain.events[0])}"):
        response = requests.get(plain.url + path, headers=headers)
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == 401 and body["title"] and body["type"].startswith("https://")
        assert KEY not in response.text


def test_other_paths_and_methods_are_refused(plain: Emulator, http: requests.Session) -> None:
    assert http.get(plain.url + "/export/sessions").status_code == 404
    assert http.get(plain.url + "/events").status_code == 404
    response = http.post(plain.url + "/export/events")
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


# -- log, repr and lifecycle ----------------------------------------------------------------


def test_request_log_records_each_request_without_the_key(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    with Emulator(events, api_key=KEY) as emu:
        http.get(emu.url + "/export/events", params={"pageSize": 9, "events": ["a", "b"]})
        http.get(emu.url + "/export/events", params={"pageSize": 9, "events": ["pageOpened"]})
        requests.get(emu.url + "/export/events", params={"key": KEY})
        log = list(emu.requests)
        assert [(r.method, r.path, r.status, r.items) for r in log] == [
            ("GET", "/export/events", 400, 0),
            ("GET", "/export/events", 200, 9),
            ("GET", "/export/events", 401, 0),
        ]
        assert log[1].params == [("pageSize", "9"), ("events", "pageOpened")]
        assert log[2].params == [("key", "***")]
        assert ("X-Api-Key", "***") in log[0].headers
        assert log[0].time <= log[1].time <= log[2].time
        assert all(r.faults == [] for r in log)
        everything = repr(log) + repr(emu) + str(emu.__dict__.get("requests"))
        assert KEY not in everything
        emu.reset_log()
        assert emu.requests == []


def test_given_events_are_copied_sorted_and_served_in_the_emulator_dialect(
    events: list[dict[str, Any]], http: requests.Session
) -> None:
    shuffled = list(reversed(events[:50]))
    snapshot = repr(shuffled)
    with Emulator(shuffled, api_key=KEY, dialect="0.8.0") as new:
        assert [e["eventId"] for e in new.events] == [e["id"] for e in events[:50]]
        assert all("systemTimestamp" in e and "type" in e["payload"] for e in new.events)
        with Emulator(new.events, api_key=KEY, dialect="0.7.1") as old:
            served = http.get(old.url + "/export/events").json()["items"]
            assert served == events[:50]
    assert repr(shuffled) == snapshot


def test_lifecycle_and_argument_checks(events: list[dict[str, Any]]) -> None:
    emu = Emulator(events[:10], api_key=KEY)
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.url
    assert "stopped" in repr(emu) and KEY not in repr(emu)
    emu.start()
    url = emu.url
    assert requests.get(url + "/export/events", headers={"X-Api-Key": KEY}).status_code == 200
    with pytest.raises(RuntimeError, match="already running"):
        emu.start()
    emu.stop()
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/export/events", headers={"X-Api-Key": KEY}, timeout=5)
    assert len(Emulator(events[:1]).api_key) >= 20  # a random key when none is given
    for bad, name in (
        ({"dialect": "0.9"}, "dialect"),
        ({"port": 70000}, "port"),
        ({"faults": {"error_rate": 0.1}}, "faults"),
        ({"api_key": ""}, "api_key"),
    ):
        with pytest.raises(InvalidArgumentError, match=name):
            Emulator(events[:1], **bad)
    with pytest.raises(InvalidArgumentError, match="events"):
        Emulator([{"id": "x"}])


def test_generated_store_is_the_one_generate_events_makes() -> None:
    with Emulator(users=15, days=1, seed=4, api_key=KEY) as emu:
        assert emu.events == generate_events(users=15, days=1, seed=4)
        assert emu.faults is None and emu.metadata == APP_METADATA


# -- the command line -------------------------------------------------------------------------

_CLI = (
    "import argparse, sys\n"
    "from croct_pandas.emulator.cli import add_arguments, run\n"
    "parser = argparse.ArgumentParser()\n"
    "add_arguments(parser)\n"
    "sys.exit(run(parser.parse_args(sys.argv[1:])))\n"
)


def start_cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CROCT_API_KEY", None)
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, "--port", "0", "--users", "10", "--days", "1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_cli_prints_the_url_first_serves_and_stops_on_sigterm() -> None:
    process = start_cli("--api-key", KEY, "--dialect", "0.8.0")
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        hint = process.stdout.readline()
        assert KEY not in hint and "--api-key" in hint
        body = requests.get(url + "/export/events", headers={"X-Api-Key": KEY}, timeout=10).json()
        assert body["items"] and "eventId" in body["items"][0]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert KEY not in out + err


def test_cli_serves_a_json_lines_file(events: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events[:30]), encoding="utf-8")
    process = start_cli("--api-key", KEY, "--events", str(path))
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        body = requests.get(url + "/export/events", headers={"X-Api-Key": KEY}, timeout=10).json()
        assert body["items"] == events[:30] and body["nextCursor"] == ""
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0


def test_cli_prints_a_generated_key_once_and_refuses_bad_options() -> None:
    process = start_cli()
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        key = process.stdout.readline().split("API key: ", 1)[1].strip()
        assert requests.get(url + "/export/events", headers={"X-Api-Key": key}).status_code == 200
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert key not in out  # the rest of the output does not repeat it
    bad = start_cli("--error-rate", "1.5")
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and out == ""
    assert err.count("\n") == 1 and "--error-rate" in err
