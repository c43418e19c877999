"""The explorer where users see it: Voilà serves it, headless Chromium changes a filter.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it); without it
the test skips and says why. Playwright drives that browser: it never downloads one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explorer.ipynb"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHART = ".widget-output img[src^='data:image/png']"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"Voilà exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"Voilà did not answer on {url} within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def voila(tmp_path: Path) -> Iterator[str]:
    """Voilà serving the explorer notebook on a free loopback port; stopped after the test."""
    port = _free_port()
    log = tmp_path / "voila.log"
    env = dict(
        os.environ,
        TMPDIR=str(tmp_path),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        CROCT_PANDAS_CACHE=str(tmp_path / "cache"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    command = [
        sys.executable,
        "-m",
        "voila",
        str(NOTEBOOK),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--VoilaConfiguration.show_tracebacks=True",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until_serving(url, server, log)
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # Voilà and the kernel it started
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@pytest.fixture
def chromium() -> str:
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed (/usr/bin/chromium); "
            "apt-get install chromium to run the browser test"
        )
    return str(CHROMIUM)


def test_changing_a_filter_redraws_the_chart_in_the_browser(chromium, voila, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1400})
            page.goto(voila, wait_until="domcontentloaded", timeout=60_000)
            chart = page.locator(CHART)
            chart.wait_for(timeout=90_000)  # the kernel runs the notebook, then the first draw
            before = chart.get_attribute("src")
            status = page.locator(".widget-html", has_text="events kept")
            everyone = status.inner_text()
            assert "people entered the funnel" in everyone

            device = page.locator(".widget-select-multiple", has_text="Device").locator("select")
            device.select_option(["mobile"])
            page.wait_for_function(
                "([selector, before]) => {"
                "  const img = document.querySelector(selector);"
                "  return img !== null && img.getAttribute('src') !== before; }",
                arg=[CHART, before],
                timeout=30_000,
            )
            after = chart.get_attribute("src")
            expect(status).not_to_have_text(everyone, timeout=10_000)  # only mobile sessions
            screenshot = tmp_path / "explorer.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert before and after and after != before
    assert after.startswith("data:image/png;base64,")
    assert screenshot.stat().st_size > 10_000
