"""How long the explorer takes to redraw after a change, on 1,000,000 generated events.

Usage: ``python benchmarks/explore.py [--rows 1000000] [--rounds 3]``.

One change of each kind the explorer offers (steps, window, people/sessions, and the URL and
device filters) is made by setting the control from Python, as a user's click does; the time is
the whole redraw: filter, funnel and chart. Remembered results are dropped before each change, so
every redraw recomputes its funnel. The baseline is what a notebook without the explorer does
for the same change: filter the full frame, ``df.croct.funnel(...)``, draw. Both run in the
same round, alternating; the figures are medians over rounds, with the median of per-round
ratios. The target is under a second per redraw.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

import croct_pandas  # noqa: F401  (registers df.croct)
from croct_pandas.emulator import generate_events
from croct_pandas.frame import build_frame
from croct_pandas.normalize import normalize_items
from croct_pandas.widgets import Explorer, _png_output
from croct_pandas.widgets_state import Query

#: events per generated user over 14 days (about 82 on seed 0); used to size the store
EVENTS_PER_USER = 80
SHOP = ["pageOpened", "productViewed", "cartModified", "checkoutStarted", "orderPlaced"]


def build(rows: int) -> pd.DataFrame:
    """``rows`` generated events as an event frame (the first ``rows`` of a larger store)."""
    items = generate_events(users=rows // EVENTS_PER_USER + 100, days=14, seed=0)
    frame = build_frame(normalize_items(items[:rows]).tables.items())
    return frame


def baseline(df: pd.DataFrame, q: Query) -> None:
    """A notebook's way: filter the whole frame, count the funnel on it, draw."""
    keep = pd.Series(True, index=df.index)
    if q.url_contains:
        url = df["context.url"].str.lower().str.contains(q.url_contains.lower(), regex=False)
        keep &= url.fillna(False).astype(bool)
    if q.devices is not None:
        keep &= df["session.device"].isin(list(q.devices)).astype(bool)
    frame = df[keep.to_numpy()]
    result = frame.croct.funnel(list(q.steps), within=q.within, by=q.by, breakdown=q.breakdown)
    _png_output(result)


def changes(explorer: Explorer) -> list[tuple[str, str, Any, Any]]:
    """(what, control, value, value back): each change and the one that undoes it."""
    everything = explorer.controls["device"].value
    return [
        ("steps", "steps", SHOP[1:], SHOP),
        ("window", "within", "1 day", "7 days"),
        ("by", "by", "sessions", "people"),
        ("URL filter", "url", "utm_source=google", ""),
        ("device filter", "device", ("mobile",), everything),
    ]


def main() -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    began = time.perf_counter()
    df = build(args.rows)
    print(
        f"{len(df):,} events, {df.shape[1]} columns, built in {time.perf_counter() - began:.0f} s"
    )
    began = time.perf_counter()
    explorer = Explorer(df)
    print(f"explorer ready in {time.perf_counter() - began:.1f} s (sessions, options, first draw)")
    full = df.croct.with_sessions(columns=("device",))

    ours: dict[str, list[float]] = {}
    compute: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        for what, name, value, back in changes(explorer):
            for step, target in enumerate((value, back)):
                key = f"{what} {'on' if step == 0 else 'off'}"
                gc.collect()
                explorer.state.forget_results()
                t0 = time.perf_counter()
                explorer.controls[name].value = target
                mine = time.perf_counter() - t0
                q = explorer.query()
                explorer.state.forget_results()
                t0 = time.perf_counter()
                explorer.state.run(q)
                compute.setdefault(key, []).append(time.perf_counter() - t0)
                gc.collect()
                t0 = time.perf_counter()
                baseline(full, q)
                base = time.perf_counter() - t0
                ours.setdefault(key, []).append(mine)
                theirs.setdefault(key, []).append(base)
                ratios.setdefault(key, []).append(base / mine)
        print(f"round {round_} done", flush=True)

    print(f"\nredraw after a change, {len(df):,} events, median of {args.rounds} rounds (s)")
    print(f"{'change':<20}{'explorer':>10}{'of which funnel':>17}{'baseline':>10}{'speed-up':>10}")
    for key in ours:
        print(
            f"{key:<20}{statistics.median(ours[key]):>10.3f}"
            f"{statistics.median(compute[key]):>17.3f}{statistics.median(theirs[key]):>10.3f}"
            f"{statistics.median(ratios[key]):>9.1f}x"
        )
    worst = max(statistics.median(v) for v in ours.values())
    print(f"slowest median redraw: {worst:.3f} s (target: under 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
