"""A whole export: croct-pandas (workers=8) against the loop a user writes from Croct's docs.

The emulator runs in a child process (so it does not share our GIL) with 50 ms of latency per
page and about 200,000 events. The baseline is the documented loop with the same page size
(1000): one ``requests.Session``, ``json.loads`` per page, one ``pd.json_normalize`` at the end.
Ours is ``read_croct_events(workers=8, cache=False, progress=False)``. Alternating, at least 3
rounds, median of the per-round ratios.

Target (issue 3): at least 5x faster.

    .venv/bin/python benchmarks/export.py [--rounds 3] [--latency 0.05] [--users N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import pandas as pd
import requests

KEY = "benchmark-key"


def start_emulator(users: int, days: int, latency: float) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable, "-m", "croct_pandas.cli", "emulator", "--port", "0", "--api-key", KEY,
        "--users", str(users), "--days", str(days), "--seed", "3", "--latency", str(latency),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the emulator did not start: {url!r}")
    return proc, url


def baseline(url: str, start: int, end: int) -> pd.DataFrame:
    """The loop of Croct's docs: follow the cursor until a page comes back empty."""
    session = requests.Session()
    items: list[dict] = []
    cursor = None
    while True:
        params: dict = {"start": start, "end": end, "pageSize": 1000}
        if cursor:
            params["cursor"] = cursor
        response = session.get(f"{url}/export/events", params=params, headers={"X-Api-Key": KEY})
        response.raise_for_status()
        page = json.loads(response.content)
        if not page["items"]:
            break
        items.extend(page["items"])
        cursor = page["nextCursor"]
        if not cursor:
            break
    return pd.json_normalize(items)


def ours(url: str, start: int, end: int) -> pd.DataFrame:
    import croct_pandas as cp

    return cp.read_croct_events(start, end, api_key=KEY, base_url=url, workers=8,
                                cache=False, progress=False)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--users", type=int, default=2500)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    start = int(pd.Timestamp("2026-01-01", tz="UTC").timestamp() * 1000)
    end = start + args.days * 86_400_000
    proc, url = start_emulator(args.users, args.days, args.latency)
    try:
        ratios = []
        for round_ in range(1, args.rounds + 1):
            t = time.perf_counter()
            base = baseline(url, start, end)
            t_base = time.perf_counter() - t
            t = time.perf_counter()
            frame = ours(url, start, end)
            t_ours = time.perf_counter() - t
            assert len(frame) == len(base), (len(frame), len(base))
            ratios.append(t_base / t_ours)
            print(
                f"round {round_}: {len(frame):,} events; docs loop {t_base:.2f} s, "
                f"croct-pandas {t_ours:.2f} s, ratio {t_base / t_ours:.1f}x",
                flush=True,
            )
        print(
            f"export: median {statistics.median(ratios):.1f}x the docs' loop "
            f"(latency {args.latency * 1000:.0f} ms per page; target >= 5x)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
