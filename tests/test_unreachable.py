"""A host that cannot be reached fails in about a second with a plain message; failures to
connect after the host has answered, timeouts and resets keep the full retries.

Unit tests drive the Client with a fake transport (and a sleep recorder, so nothing waits);
the rest use the real transport against loopback sockets: a closed port, a socket that never
answers, one that resets, and the emulator.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import croct_pandas as cp
from croct_pandas.client import UNREACHED_RETRIES, UNREACHED_WAIT, Client
from croct_pandas.emulator import Emulator
from croct_pandas.errors import RetriesExhaustedError, TransportError
from croct_pandas.transport import ConnectFailedError, Request, RequestsTransport, Response

KEY = "sk-unreachable-0123456789-SECRET"
BODY = orjson.dumps({"items": [], "metadata": {}, "nextCursor": None})
REFUSED = ConnectFailedError(
    "connection failed: 127.0.0.1:1 refused the connection ([Errno 111] Connection refused)",
    host="127.0.0.1:1",
)
TIMEOUT = TransportError("timed out after 30 s (api.croct.io:443; ReadTimeout: Read timed out.)")


class Script:
    """A transport answering from a list: a Response is returned, an exception raised; the last
    entry repeats forever."""

    def __init__(self, *steps: Response | BaseException) -> None:
        self.steps = list(steps)
        self.calls = 0

    def __call__(self, request: Request) -> Response:
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        if isinstance(step, BaseException):
            raise step
        return step


class Waits:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.reasons: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_wait(self, seconds: float, reason: str) -> None:
        self.reasons.append(reason)


def client(transport: Script, waits: Waits, **kw: Any) -> Client:
    return Client(KEY, transport=transport, sleep=waits.sleep, on_wait=waits.on_wait, **kw)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def check_unreachable(error: RetriesExhaustedError, base_url: str) -> None:
    text = str(error)
    assert text.startswith(f"Could not reach the API at {base_url} "), text
    assert "Check base_url (or the CROCT_API_URL environment variable)" in text
    assert "network connection" in text
    assert KEY not in text and KEY not in repr(error.last_error)
    assert isinstance(error.last_error, ConnectFailedError)


# -- the retry policy, with a fake transport ----------------------------------------------------


def test_a_host_never_reached_gets_two_short_retries() -> None:
    waits, transport = Waits(), Script(REFUSED)
    with pytest.raises(RetriesExhaustedError) as info:
        client(transport, waits).get_page()
    check_unreachable(info.value, "https://api.croct.io")
    assert "(3 attempts; last failure: connection failed: 127.0.0.1:1 refused" in str(info.value)
    assert transport.calls == 1 + UNREACHED_RETRIES == 3
    assert len(waits.sleeps) == 2 and all(0 <= s <= UNREACHED_WAIT for s in waits.sleeps)
    assert sum(waits.sleeps) <= 2.0
    assert waits.reasons == ["connecting, retry 1/2", "connecting, retry 2/2"]


def test_a_blip_while_connecting_is_retried() -> None:
    waits, transport = Waits(), Script(REFUSED, REFUSED, Response(200, {}, BODY))
    assert client(transport, waits).get_page().items == []
    assert transport.calls == 3


@pytest.mark.parametrize("answer", [Response(200, {}, BODY), Response(503, {}, b"")])
def test_after_any_answer_a_failure_to_connect_gets_every_retry(answer: Response) -> None:
    waits, transport = Waits(), Script(answer, REFUSED)
    api = client(transport, waits, max_retries=5)
    if answer.status == 200:
        api.get_page()
    with pytest.raises(RetriesExhaustedError, match=r"failed 6 times") as info:
        api.get_page()
    assert isinstance(info.value.last_error, ConnectFailedError)
    assert transport.calls == (7 if answer.status == 200 else 6)  # a 503 is the first of the 6
    assert waits.reasons[-1] == "retry 5/5"


def test_timeouts_before_any_answer_get_every_retry() -> None:
    waits, transport = Waits(), Script(TIMEOUT)
    with pytest.raises(RetriesExhaustedError, match=r"failed 9 times.*timed out after 30 s"):
        client(transport, waits).get_page()
    assert transport.calls == 9
    assert waits.reasons == [f"retry {n}/8" for n in range(1, 9)]


def test_only_failures_to_connect_count_toward_the_two() -> None:
    waits, transport = Waits(), Script(REFUSED, TIMEOUT, TIMEOUT, REFUSED, TIMEOUT, REFUSED)
    with pytest.raises(RetriesExhaustedError) as info:
        client(transport, waits).get_page()
    check_unreachable(info.value, "https://api.croct.io")
    assert transport.calls == 6
    assert waits.reasons == [
        "connecting, retry 1/2",
        "retry 2/8",
        "retry 3/8",
        "connecting, retry 2/2",
        "retry 5/8",
    ]


@pytest.mark.parametrize(("max_retries", "calls"), [(0, 1), (1, 2), (5, 3)])
def test_max_retries_bounds_the_connect_retries_too(max_retries: int, calls: int) -> None:
    waits, transport = Waits(), Script(REFUSED)
    with pytest.raises(RetriesExhaustedError) as info:
        client(transport, waits, max_retries=max_retries).get_page()
    check_unreachable(info.value, "https://api.croct.io")
    assert transport.calls == calls


def test_a_key_in_a_transport_message_is_scrubbed() -> None:
    leaky = ConnectFailedError(f"connection failed: {KEY} refused", host=KEY)
    with pytest.raises(RetriesExhaustedError) as info:
        client(Script(leaky), Waits()).get_page()
    check_unreachable(info.value, "https://api.croct.io")
    assert isinstance(info.value.last_error, ConnectFailedError)
    assert info.value.last_error.host == "***"


# -- the real transport: which failures count as "could not connect" ----------------------------


def request(url: str, timeout: float = 5.0, cursor: str = "") -> Request:
    params = [("pageSize", "10")] + ([("cursor", cursor)] if cursor else [])
    return Request("GET", url + "/export/events", params, {"X-Api-Key": KEY}, timeout)


def test_a_closed_port_is_a_connect_failure_naming_the_host() -> None:
    port = closed_port()
    with pytest.raises(ConnectFailedError) as info:
        RequestsTransport(trust_env=False)(request(f"http://127.0.0.1:{port}", cursor="c" * 500))
    text = str(info.value)
    assert text.startswith(f"connection failed: 127.0.0.1:{port} refused the connection (")
    assert info.value.host == f"127.0.0.1:{port}"
    assert "ccccc" not in text and KEY not in text and len(text) < 200


def test_a_name_that_does_not_resolve_is_a_connect_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_dns(*args: Any, **kw: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # no lookup leaves the machine
    with pytest.raises(ConnectFailedError) as info:
        RequestsTransport(trust_env=False)(request("https://api.croct.example", cursor="x" * 900))
    text = str(info.value)
    assert "could not resolve the host name 'api.croct.example'" in text, text
    assert text.endswith("Name or service not known)") and "xxxxx" not in text


@pytest.fixture
def silent() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(params=["at once", "after the request"])
def resetting(request: pytest.FixtureRequest) -> Iterator[str]:
    """A port whose server resets every connection it accepts; it stops by itself."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            if request.param == "after the request":
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def test_a_timeout_is_not_a_connect_failure(silent: str) -> None:
    with pytest.raises(TransportError) as info:
        RequestsTransport(trust_env=False)(request(silent, timeout=0.2, cursor="c" * 500))
    assert not isinstance(info.value, ConnectFailedError)
    text = str(info.value)
    assert text.startswith(f"timed out after 0.2 s ({silent[7:]}; ReadTimeout: "), text
    assert "ccccc" not in text and len(text) < 200


def test_a_reset_is_not_a_connect_failure(resetting: str) -> None:
    with pytest.raises(TransportError) as info:
        RequestsTransport(trust_env=False)(request(resetting, cursor="c" * 500))
    assert not isinstance(info.value, ConnectFailedError)
    text = str(info.value)
    assert text.startswith(f"connection failed ({resetting[7:]}; "), text
    assert "ccccc" not in text and KEY not in text


def test_resets_before_any_answer_get_every_retry(resetting: str) -> None:
    waits = Waits()
    api = Client(KEY, base_url=resetting, max_retries=3, sleep=waits.sleep)
    with api, pytest.raises(RetriesExhaustedError, match="failed 4 times") as info:
        api.get_page()
    assert not isinstance(info.value.last_error, ConnectFailedError)
    assert len(waits.sleeps) == 3


# -- end to end ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", ["off", "on"])
def test_read_croct_events_on_a_closed_port_fails_in_seconds(cache: str, tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    began = time.monotonic()
    with pytest.raises(RetriesExhaustedError) as info:
        cp.read_croct_events(
            "2026-01-01",
            "2026-01-08",
            api_key=KEY,
            base_url=base_url,
            cache=False if cache == "off" else tmp_path / "cache",
            progress=False,
        )
    took = time.monotonic() - began
    assert took < 15, f"took {took:.1f} s"
    check_unreachable(info.value, base_url)
    assert "refused the connection" in str(info.value)


def test_a_host_that_stops_answering_gets_every_retry() -> None:
    waits = Waits()
    with Emulator(users=3, days=1, api_key=KEY) as emu:
        api = Client(KEY, base_url=emu.url, max_retries=3, sleep=waits.sleep)
        assert api.get_page("2026-01-01", "2026-01-02", page_size=5).count == 5
    # the emulator is gone: its port now refuses, but this host has answered before
    with api, pytest.raises(RetriesExhaustedError, match="failed 4 times") as info:
        api.get_page("2026-01-01", "2026-01-02", page_size=5)
    assert isinstance(info.value.last_error, ConnectFailedError)
    assert len(waits.sleeps) == 3 and KEY not in str(info.value)
