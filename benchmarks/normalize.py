"""Bytes -> typed frame: croct-pandas against ``json.loads`` + ``pd.json_normalize``.

100 pages of 1,000 realistic events of every type (from the emulator's generator), normalised
in the same run by both, alternating, at least 3 rounds; the figure is the median of the
per-round ratios. Peak memory is measured in a child process that only normalises: its peak RSS
minus its RSS after imports and after reading the pages, against the final frame's
``memory_usage(deep=True)``.

Targets (issue 3): at least 5x faster; peak memory at most 3x the frame.

    .venv/bin/python benchmarks/normalize.py [--rounds 3] [--pages 100]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import orjson
import pandas as pd

PAGE = 1000


def make_pages(pages: int) -> list[bytes]:
    from croct_pandas.emulator import generate_events

    users = max(50, pages * 9)
    events = generate_events(users=users, days=14, seed=7)
    while len(events) < pages * PAGE:
        users *= 2
        events = generate_events(users=users, days=14, seed=7)
    events = events[: pages * PAGE]
    metadata = {
        "organizationName": "Shop",
        "organizationSlug": "shop",
        "workspaceName": "Web",
        "workspaceSlug": "web",
        "applicationName": "Store",
        "applicationSlug": "store",
    }
    return [
        orjson.dumps({"items": events[i : i + PAGE], "metadata": metadata, "nextCursor": f"c{i}"})
        for i in range(0, len(events), PAGE)
    ]


def baseline(pages: list[bytes]) -> pd.DataFrame:
    items: list[dict] = []
    for body in pages:
        items.extend(json.loads(body)["items"])
    return pd.json_normalize(items)


def ours(pages: list[bytes]) -> pd.DataFrame:
    """What read_croct_events does with the bodies it receives (cache=False)."""
    from croct_pandas.frame import build_frame
    from croct_pandas.gc_pause import paused_gc
    from croct_pandas.normalize import Batcher

    with paused_gc():
        tables = []
        batcher = Batcher()
        for body in pages:
            batch = batcher.add(orjson.loads(body)["items"])
            if batch is not None:
                tables.extend(batch.tables.items())
        last = batcher.flush()
        if last is not None:
            tables.extend(last.tables.items())
        return build_frame(tables)


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def child(path: str) -> None:
    import croct_pandas.frame
    import croct_pandas.normalize  # noqa: F401

    with open(path, "rb") as f:
        pages = orjson.loads(f.read())
    pages = [p.encode() for p in pages]
    gc.collect()
    before = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS
    frame = ours(pages)
    peak = _rss_kib("VmHWM")
    size = int(frame.memory_usage(deep=True).sum())
    print(
        json.dumps(
            {
                "peak_bytes": (peak - before) * 1024,
                "frame_bytes": size,
                "rows": len(frame),
                "columns": frame.shape[1],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    pages = make_pages(args.pages)
    size_mb = sum(map(len, pages)) / 1e6
    print(f"{len(pages)} pages, {len(pages) * PAGE:,} events, {size_mb:.1f} MB of JSON")
    ratios = []
    for round_ in range(1, args.rounds + 1):
        gc.collect()
        t = time.perf_counter()
        base = baseline(pages)
        t_base = time.perf_counter() - t
        del base
        gc.collect()
        t = time.perf_counter()
        frame = ours(pages)
        t_ours = time.perf_counter() - t
        del frame
        ratios.append(t_base / t_ours)
        print(
            f"round {round_}: json_normalize {t_base:.2f} s, croct-pandas {t_ours:.2f} s, "
            f"ratio {t_base / t_ours:.1f}x"
        )
    speed = statistics.median(ratios)
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(orjson.dumps([p.decode() for p in pages]))
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", f.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(f.name)
    mem = json.loads(out.strip().splitlines()[-1])
    mem_ratio = mem["peak_bytes"] / mem["frame_bytes"]
    print(
        f"frame: {mem['rows']:,} rows x {mem['columns']} columns, "
        f"{mem['frame_bytes'] / 1e6:.1f} MB (memory_usage deep)"
    )
    print(
        f"peak memory while normalising: {mem['peak_bytes'] / 1e6:.1f} MB = "
        f"{mem_ratio:.2f}x the frame (target <= 3x)"
    )
    print(f"speed: median {speed:.1f}x json.loads + json_normalize (target >= 5x)")


if __name__ == "__main__":
    main()
