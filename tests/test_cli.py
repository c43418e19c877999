"""The croct-pandas command, run as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import requests

from croct_pandas.cli import main
from croct_pandas.emulator import Emulator, generate_events
from croct_pandas.frame import read_parquet_frame

T0 = 1767225600000
DAY = 86_400_000


def cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 240):
    full_env = {k: v for k, v in os.environ.items() if k != "CROCT_API_KEY"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "croct_pandas.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def store() -> list[dict]:
    return generate_events(users=80, days=2, seed=4)


@pytest.fixture
def emu(store):
    with Emulator(store) as emulator:
        yield emulator


def one_line_error(result, code: int) -> str:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def in_process(capsys, *argv: str) -> tuple[int, str, str]:
    """``main`` in this process: what the console script runs, without a second of imports."""
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse exits by itself for --help and usage mistakes
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "command",
    [[], ["demo"], ["export"], ["funnel"], ["cache"], ["cache", "info"], ["cache", "clear"],
     ["emulator"]],
)  # fmt: skip
def test_every_command_has_help(capsys, command):
    code, out, _ = in_process(capsys, *command, "--help")
    assert code == 0
    assert "usage: croct-pandas" in out


def test_no_command_is_a_usage_error():
    result = cli()  # through a real process: the exit code is what the shell sees
    assert result.returncode == 2
    assert "usage: croct-pandas" in result.stdout  # the help, then one line on stderr
    assert result.stderr.strip() == "croct-pandas: error: a command is needed (see above)"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("export", "--start", "2026-01-01", "--end", "2026-01-02", "--output", "x.parquet",
          "--page-size", "abc"), "--page-size"),
        (("export", "--start", "2026-01-01"), "--end, --output"),
        (("funnel", "f.parquet", "--steps", "a,b", "--order", "sideways"), "--order"),
        (("emulator", "--port", "abc"), "--port"),
    ],
)  # fmt: skip
def test_a_command_line_mistake_is_one_line_naming_the_option(capsys, argv, named):
    code, out, err = in_process(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and f"{argv[0]} --help" in lines[0]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_export_writes_each_format(emu, store, tmp_path, suffix):
    out = tmp_path / f"events{suffix}"
    result = cli(
        "export", "--start", "2026-01-01", "--end", "2026-01-02", "--output", str(out),
        "--base-url", emu.url, "--no-cache", "--no-progress",
        env={"CROCT_API_KEY": emu.api_key},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = sum(1 for e in store if T0 <= e["timestamp"] < T0 + DAY)
    assert f"{expected:,} events" in result.stdout
    if suffix == ".parquet":
        assert len(read_parquet_frame(str(out))) == expected
    elif suffix == ".jsonl":
        lines = out.read_bytes().splitlines()
        assert len(lines) == expected
        assert {orjson.loads(line)["id"] for line in lines} == {
            e["id"] for e in store if T0 <= e["timestamp"] < T0 + DAY
        }
    else:
        assert len(out.read_text().splitlines()) == expected + 1


def test_export_errors_are_one_line_with_the_right_code(emu, tmp_path):
    key = {"CROCT_API_KEY": emu.api_key}
    base = ["--base-url", emu.url, "--no-cache", "--no-progress"]
    bad_suffix = cli("export", "--start", "2026-01-01", "--end", "2026-01-02",
                     "--output", str(tmp_path / "x.xlsx"), *base, env=key)  # fmt: skip
    assert ".parquet" in one_line_error(bad_suffix, 2)
    bad_date = cli("export", "--start", "someday", "--end", "2026-01-02",
                   "--output", str(tmp_path / "x.parquet"), *base, env=key)  # fmt: skip
    assert "start" in one_line_error(bad_date, 2)
    bad_type = cli("export", "--start", "2026-01-01", "--end", "2026-01-02", "--events",
                   "orderplaced", "--output", str(tmp_path / "x.parquet"), *base,
                   env=key)  # fmt: skip
    assert "orderPlaced" in one_line_error(bad_type, 2)
    no_key = cli("export", "--start", "2026-01-01", "--end", "2026-01-02",
                 "--output", str(tmp_path / "x.parquet"), *base, env={})  # fmt: skip
    assert "CROCT_API_KEY" in one_line_error(no_key, 2)
    wrong_key = cli("export", "--start", "2026-01-01", "--end", "2026-01-02",
                    "--output", str(tmp_path / "x.parquet"), *base,
                    env={"CROCT_API_KEY": "not-the-key"})  # fmt: skip
    message = one_line_error(wrong_key, 1)
    assert "not-the-key" not in message and "401" in message
    assert not (tmp_path / "x.parquet").exists()


def test_funnel_reads_both_formats_and_prints_the_table(capsys, emu, tmp_path):
    # the exports run as a user runs them; the funnels in this process, to keep the test quick
    key = {"CROCT_API_KEY": emu.api_key}
    tables = []
    for name in ("events.parquet", "events.jsonl"):
        path = tmp_path / name
        assert cli("export", "--start", "2026-01-01", "--end", "2026-01-03", "--output",
                   str(path), "--base-url", emu.url, "--no-cache", "--no-progress",
                   env=key).returncode == 0  # fmt: skip
        code, out, err = in_process(
            capsys, "funnel", "--steps", "productViewed,checkoutStarted,orderPlaced", str(path)
        )
        assert code == 0, err
        assert "productViewed" in out and "orderPlaced" in out
        tables.append(out)
    assert tables[0] == tables[1]
    parquet = str(tmp_path / "events.parquet")
    code, _, err = in_process(capsys, "funnel", "--steps", "productViewed,orderPlaced", "--by",
                              "sessionId", "--within", "30min", parquet)  # fmt: skip
    assert code == 0, err
    for argv, says in [
        (["--steps", "productViewd,orderPlaced", parquet], "--steps: unknown event type"),
        (["--steps", "productViewd,orderPlaced", parquet], "did you mean 'productViewed'"),
        (["--steps", "orderPlaced", parquet], "two or more"),
        (["--steps", "a,b", str(tmp_path / "missing.parquet")], "no such file"),
        (["--steps", "productViewed,orderPlaced", "--by", "nope", parquet], "--by: "),
        (["--steps", "productViewed,orderPlaced", "--within", "soon", parquet], "--within must"),
        (["--steps", "productViewed,orderPlaced", "--within", "3", parquet], "give a unit"),
    ]:
        code, out, err = in_process(capsys, "funnel", *argv)
        assert code == 2 and out == "", argv
        line = err.strip()
        assert "\n" not in line and says in line, (argv, err)


def test_cache_info_and_clear(capsys, emu, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CROCT_API_KEY", emu.api_key)
    code, _, err = in_process(capsys, "export", "--start", "2026-01-01", "--end", "2026-01-02",
                              "--output", str(tmp_path / "e.parquet"), "--base-url", emu.url,
                              "--cache", str(cache), "--no-progress")  # fmt: skip
    assert code == 0, err
    code, out, err = in_process(capsys, "cache", "info", "--cache", str(cache))
    assert code == 0, err
    assert "pageOpened" in out
    assert in_process(capsys, "cache", "clear", "--cache", str(cache))[:2] == (0, "cleared\n")
    assert in_process(capsys, "cache", "info", "--cache", str(cache))[1] == "the cache is empty\n"
    assert in_process(capsys, "cache")[0] == 2


def test_the_emulator_command_serves_until_stopped():
    proc = subprocess.Popen(
        [sys.executable, "-m", "croct_pandas.cli", "emulator", "--port", "0", "--api-key",
         "k-123", "--users", "20", "--days", "1", "--seed", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        page = requests.get(f"{url}/export/events", headers={"X-Api-Key": "k-123"}, timeout=10)
        assert page.status_code == 200 and page.json()["items"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode in (0, 130)


def test_demo_runs_end_to_end(tmp_path):
    result = cli("demo", "--users", "300", "--days", "7", "--no-progress", cwd=tmp_path,
                 timeout=400)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Croct Export API emulator at http://127.0.0.1:" in out
    assert "injected faults" in out
    assert "Application:" in out and "Events by type:" in out
    assert "productViewed" in out and "orderPlaced" in out
    assert "with 0 requests" in out
    png = tmp_path / "funnel.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "croct-cache").is_dir()
