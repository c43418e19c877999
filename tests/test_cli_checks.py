"""The command line checks everything before it starts and speaks command-line.

Most tests call ``croct_pandas.cli.main`` in this process (a subprocess costs a second of
imports each); the ones about signals, or a server that must run on its own, use a subprocess.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from croct_pandas.cli import main
from croct_pandas.emulator import Emulator, Faults, generate_events
from croct_pandas.frame import read_parquet_frame

T0 = 1767225600000
DAY = 86_400_000
WINDOW = ["--start", "2026-01-01", "--end", "2026-01-02"]
# Python's names for what the command line calls options: none may reach a command-line user
PYTHON_WORDS = re.compile(r"\b(page_size|base_url|api_key|latency_s|error_rate)\b|=None|\w+=")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("CROCT_API_KEY", "CROCT_API_URL", "CROCT_PANDAS_CACHE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def store() -> list[dict]:
    return generate_events(users=40, days=2, seed=3)


@pytest.fixture
def emu(store, monkeypatch):
    with Emulator(store) as emulator:
        monkeypatch.setenv("CROCT_API_KEY", emulator.api_key)
        yield emulator


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse's own exit for a usage mistake
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def export(emu: Emulator, output: Path | str, *more: str) -> list[str]:
    return ["export", *WINDOW, "--output", str(output), "--base-url", emu.url, "--no-progress",
            *more]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- 1. export --output is checked before any request ----------------------------------------


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("missing/events.parquet", "does not exist"),
        ("a-file/events.parquet", "is not a folder"),
        ("a-folder", "is a folder"),
        ("events.xlsx", ".parquet, FILE.csv or FILE.jsonl"),
    ],
)
def test_export_output_is_checked_before_any_request(capsys, emu, tmp_path, name, says):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    code, out, err = run(capsys, *export(emu, tmp_path / name, "--cache", str(tmp_path / "c")))
    line = one_line(err)
    assert code == 2 and out == ""
    assert line.startswith("croct-pandas: error: --output ") and says in line
    assert emu.requests == []
    assert not (tmp_path / "c").exists()


def test_export_refuses_a_folder_or_file_it_cannot_write(capsys, emu, tmp_path, monkeypatch):
    # the tests run as root, for whom every folder is writable: os.access says what it would say
    # to a user without the permission
    locked = tmp_path / "locked"
    locked.mkdir()
    existing = tmp_path / "old.csv"
    existing.write_text("x\n")
    real_access = os.access
    refused = {str(locked), str(existing)}
    monkeypatch.setattr(
        os, "access", lambda p, mode: str(p) not in refused and real_access(p, mode)
    )
    code, _, err = run(capsys, *export(emu, locked / "events.csv", "--no-cache"))
    assert code == 2 and "no permission to write in the folder" in one_line(err)
    code, _, err = run(capsys, *export(emu, existing, "--no-cache"))
    assert code == 2 and "cannot be overwritten" in one_line(err)
    assert emu.requests == []
    assert existing.read_text() == "x\n"


# -- 2. demo checks its arguments before any work --------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--users", "0"], "argument --users: '0' is not a whole number above 0"),
        (["--days", "-3"], "argument --days: '-3' is not a whole number above 0"),
        (["--days", "two"], "argument --days: 'two' is not a whole number above 0"),
        (["--output", "{tmp}/missing/funnel.png"], "does not exist"),
        (["--output", "{tmp}/funnel.txt"], ".png"),
        (["--output", "{tmp}"], "is a folder"),
        (["--port", "70000"], "not a port from 0 to 65535"),
    ],
)
def test_demo_checks_its_arguments_before_it_starts(capsys, tmp_path, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, "demo", "--cache", str(tmp_path / "c"), *argv)
    assert code == 2
    assert out == ""  # not even "Generating a store ..."
    assert says in one_line(err) and "--" in one_line(err)
    assert not (tmp_path / "c").exists()


def test_demo_chart_formats_are_what_matplotlib_saves():
    from croct_pandas.demo import chart_suffixes

    suffixes = chart_suffixes()
    assert {".png", ".svg", ".pdf", ".jpg"} <= suffixes
    assert ".txt" not in suffixes and ".pgf" not in suffixes


# -- 3. help says how to give the key and what the exit codes mean ---------------------------


def test_help_says_where_the_key_comes_from_and_the_exit_codes(capsys):
    code, top, _ = run(capsys, "--help")
    assert code == 0
    code, export_help, _ = run(capsys, "export", "--help")
    assert code == 0
    code, demo_help, _ = run(capsys, "demo", "--help")
    assert code == 0
    for text in (top, export_help, demo_help):
        assert "exit codes:" in text
        assert re.search(r"^\s+2\s+bad usage", text, re.M) and re.search(r"^\s+130\s", text, re.M)
    assert "CROCT_API_KEY environment variable" in export_help
    assert "shell history" in export_help
    flat = " ".join(export_help.split())
    assert "events per request, 1-1000" in flat
    assert "time slices fetched at once, 1-64" in flat
    assert "--no-progress hide the progress bar" in flat
    assert "space- or comma-separated" in flat
    assert "seed of the store" in " ".join(demo_help.split())
    assert "needs no API key" in " ".join(demo_help.split())


# -- 4. the Python API's errors in command-line words -----------------------------------------


@pytest.mark.parametrize(
    ("more", "env", "starts"),
    [
        (["--page-size", "5000"], {}, "--page-size 5000: --page-size accepts"),
        (["--workers", "0"], {}, "--workers 0: --workers accepts"),
        (["--start", "someday"], {}, "--start 'someday': not an ISO 8601 date"),
        (["--start", "1767225600"], {}, "--start 1767225600: looks like epoch seconds"),
        (["--start", "2026-01-03"], {}, "--start (2026-01-03"),
        (["--events", "orderplaced"], {}, "--events 'orderplaced': unknown event type"),
        (["--base-url", "ftp://host"], {}, "--base-url 'ftp://host': --base-url accepts"),
        (["--base-url", "http://a:b@host"], {}, "--base-url must not carry credentials"),
        ([], {"CROCT_API_URL": "http://example.com"}, "CROCT_API_URL='http://example.com'"),
        ([], {"CROCT_API_KEY": ""}, "no API key: set the CROCT_API_KEY environment variable"),
    ],
)
def test_export_errors_speak_command_line(capsys, emu, tmp_path, monkeypatch, more, env, starts):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = export(emu, tmp_path / "x.parquet", "--no-cache", *more)
    if "--base-url" in more or "CROCT_API_URL" in env:
        at = argv.index("--base-url")
        del argv[at : at + 2]  # the one under test is the only one
    if "--start" in more:
        at = argv.index("--start")
        del argv[at : at + 2]
    code, out, err = run(capsys, *argv)
    line = one_line(err)
    assert code == 2 and out == ""
    assert line.startswith(f"croct-pandas: error: {starts}"), line
    assert not PYTHON_WORDS.search(line.split(": ", 2)[2].replace(starts, "", 1)), line
    assert "datetime" not in line and "Timestamp" not in line
    assert emu.requests == []


def test_unknown_event_type_says_how_to_take_every_type(capsys, emu, tmp_path):
    code, _, err = run(
        capsys, *export(emu, tmp_path / "x.csv", "--no-cache", "--events", "ordrPlaced")
    )
    line = one_line(err)
    assert code == 2
    assert "did you mean 'orderPlaced'?" in line and "leave out --events to include every" in line


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["--latency", "-1"], "--latency must be a number of seconds"),
        (["--slow", "4000"], "--slow must be a number of seconds"),
        (["--error-rate", "2"], "--error-rate must be a number from 0 to 1"),
        (["--error-rate", "0.6", "--reset-rate", "0.6"], "--error-rate + --reset-rate + "),
        (["--rate-limit", "0"], "--rate-limit must be requests per second above 0"),
        (["--start", "someday"], "--start must be a date"),
    ],
)
def test_emulator_errors_speak_command_line(capsys, argv, starts):
    code, out, err = run(capsys, "emulator", "--port", "0", "--users", "5", "--days", "1", *argv)
    line = one_line(err)
    assert code == 2 and out == ""
    assert line.startswith(f"croct-pandas emulator: error: {starts}"), line
    assert not re.search(r"\w_\w|None", line), line


# -- 5. --events takes spaces, commas or both --------------------------------------------------


def test_export_events_take_spaces_and_commas(capsys, emu, store, tmp_path):
    forms = {
        "spaces": ["orderPlaced", "pageOpened", "productViewed"],
        "commas": ["orderPlaced,pageOpened,productViewed"],
        "both": ["orderPlaced,", "pageOpened", ",productViewed"],
    }
    wanted = {"orderPlaced", "pageOpened", "productViewed"}
    expected = sorted(
        e["id"]
        for e in store
        if T0 <= e["timestamp"] < T0 + DAY and e["payload"]["@type"] in wanted
    )
    for form, values in forms.items():
        out = tmp_path / f"{form}.parquet"
        code, _, err = run(capsys, *export(emu, out, "--no-cache", "--events", *values))
        assert code == 0, err
        frame = read_parquet_frame(str(out))
        assert set(frame["type"].astype(str)) == wanted, form
        assert sorted(frame["id"].astype(str)) == expected, form
    code, _, err = run(capsys, *export(emu, tmp_path / "x.csv", "--no-cache", "--events", ","))
    assert code == 2 and "--events needs event types" in one_line(err)


# -- 6. emulator --events FILE names the option, the file and what it must hold -----------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        ("folder", "is a folder"),
        ('{"timestamp": 1767225600000}\nnot json\n', "line 2 is not JSON"),
        ("[1, 2", "not JSON"),
        ('{"events": []}', "event 1 is not an object with an integer 'timestamp'"),
        ('"text"', "event 1 is not an object with an integer 'timestamp'"),
        ('[{"id": "e1"}]', "event 1 is not an object with an integer 'timestamp'"),
    ],
)
def test_emulator_events_file_errors_name_the_option_and_file(capsys, tmp_path, content, says):
    path = tmp_path / "events.jsonl"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "emulator", "--port", "0", "--events", str(path))
    line = one_line(err)
    assert code == 2 and out == ""
    assert line.startswith(f"croct-pandas emulator: error: --events '{path}'"), line
    assert says in line and "JSON object per line or a JSON array" in line


# -- 7. the emulator says the days it holds; an empty export says why it may be empty ----------


def test_emulator_banner_gives_the_days_of_its_events(tmp_path):
    events = generate_events(users=10, days=3, seed=5, start="2026-02-10")
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    proc = subprocess.Popen(
        [sys.executable, "-m", "croct_pandas.cli", "emulator", "--port", "0", "--api-key", "k-1",
         "--events", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first_line = proc.stdout.readline()  # the SIGTERM handler is set before this line
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # the handler only ends the wait: the lines after the first are printed all the same; read
    # through the same buffered reader (communicate() would skip what readline() buffered)
    lines = [first_line, *proc.stdout.read().splitlines()]
    proc.stdout.close()
    proc.stderr.close()
    assert len(lines) >= 4, lines
    assert lines[0].startswith("http://127.0.0.1:")
    assert f"Serving {len(events):,} events" in lines[2]
    first = time.strftime("%Y-%m-%d", time.gmtime(events[0]["timestamp"] / 1000))
    last = time.strftime("%Y-%m-%d", time.gmtime(events[-1]["timestamp"] / 1000))
    assert (first, last) == ("2026-02-10", "2026-02-12")
    assert f"from {first} to {last} UTC: --start 2026-02-10 --end 2026-02-13" in lines[3]
    assert proc.returncode == 0


def test_an_empty_export_says_the_window_held_no_event(capsys, emu, tmp_path):
    out = tmp_path / "none.parquet"
    code, printed, err = run(capsys, "export", "--start", "2025-06-01", "--end", "2025-06-02",
                             "--output", str(out), "--base-url", emu.url, "--no-cache",
                             "--no-progress")  # fmt: skip
    assert code == 0, err
    assert printed.strip() == (
        f"0 events -> {out} (no event in this window: check --start and --end)"
    )
    code, printed, _ = run(capsys, *export(emu, out, "--no-cache", "--events", "orderPlaced"))
    assert code == 0 and "no event" not in printed  # this window does hold orders


# -- 8. a rerun of the demo reads its cache ----------------------------------------------------


def demo_numbers(printed: str) -> tuple[int, int]:
    served = re.search(r"emulator at http://127\.0\.0\.1:\d+: ([\d,]+) events", printed)
    read = re.search(r"(?:Exported|Read) ([\d,]+) events", printed)
    assert served and read, printed
    return int(served[1].replace(",", "")), int(read[1].replace(",", ""))


def test_a_rerun_of_the_demo_reads_the_cache_and_a_new_store_replaces_it(capsys, tmp_path):
    port = free_port()
    argv = ["demo", "--users", "25", "--days", "2", "--port", str(port), "--no-progress",
            "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "f.svg")]  # fmt: skip
    code, first, err = run(capsys, *argv)
    assert code == 0, err
    assert f"emulator at http://127.0.0.1:{port}:" in first
    assert re.search(r"Exported [\d,]+ events in [\d.]+ s with [1-9]\d* requests", first)
    code, second, err = run(capsys, *argv)
    assert code == 0, err
    assert f"emulator at http://127.0.0.1:{port}:" in second
    assert re.search(r"Read [\d,]+ events from the cache in .+ with 0 requests", second)
    assert "Exported" not in second
    assert demo_numbers(first) == demo_numbers(second)
    # another store on the same port: the cache's events are not this store's
    code, third, err = run(capsys, *[a if a != "25" else "35" for a in argv])
    assert code == 0, err
    assert "held another store's events" in third
    served, read = demo_numbers(third)
    assert served == read != demo_numbers(first)[0]


def test_the_demo_moves_to_a_free_port_when_its_port_is_taken(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, printed, err = run(capsys, "demo", "--users", "15", "--days", "1", "--port",
                                 str(port), "--no-progress", "--cache", str(tmp_path / "c"),
                                 "--output", str(tmp_path / "f.png"))  # fmt: skip
    assert code == 0, err
    assert f"port {port} is taken" in printed
    assert f"127.0.0.1:{port}:" not in printed
    served, read = demo_numbers(printed)
    assert served == read


# -- 9. an interrupted export with a cache says it resumes -------------------------------------


@pytest.mark.parametrize("cache", [True, False])
def test_an_interrupted_export_says_whether_it_resumes(tmp_path, cache):
    events = generate_events(users=60, days=2, seed=1)
    where = ["--cache", str(tmp_path / "cache")] if cache else ["--no-cache"]
    with Emulator(events, faults=Faults(latency_s=0.3)) as slow:
        proc = subprocess.Popen(
            [sys.executable, "-m", "croct_pandas.cli", "export", "--start", "2026-01-01",
             "--end", "2026-01-03", "--output", str(tmp_path / "x.parquet"), "--base-url",
             slow.url, *where, "--no-progress", "--page-size", "10", "--workers", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CROCT_API_KEY": slow.api_key},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(slow.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = one_line(err)
    if cache:
        assert line == "croct-pandas: interrupted; run the same command again to resume"
    else:
        assert line == "croct-pandas: interrupted"


# -- 10. a cache path that is not a folder -----------------------------------------------------


@pytest.mark.parametrize("command", [["cache", "info"], ["cache", "clear"], ["demo"], ["export"]])
def test_a_cache_that_is_a_file_is_a_usage_error(capsys, tmp_path, monkeypatch, command):
    (tmp_path / "probe-file").write_text("a file")
    argv = [*command, "--cache", str(tmp_path / "probe-file")]
    if command == ["demo"]:
        argv += ["--output", str(tmp_path / "f.png")]
    if command == ["export"]:
        monkeypatch.setenv("CROCT_API_KEY", "k")
        # nothing listens on port 9: a request would fail with exit 1, not 2
        argv += [*WINDOW, "--output", str(tmp_path / "e.csv"), "--base-url", "http://127.0.0.1:9"]
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    line = one_line(err)
    assert "--cache" in line and "probe-file" in line
    assert "Generating" not in out
    assert (tmp_path / "probe-file").read_text() == "a file"
