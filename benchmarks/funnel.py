"""Funnel speed: 5,000,000 events of 500,000 users, and the ratio against the brute-force oracle.

The frame is built with numpy directly in the event-frame contract's dtypes (``type`` category
over the 25 types, ``timestamp`` datetime64[ms, UTC] over ~30 days, ``userId``/``sessionId``
string[pyarrow], sorted by timestamp), not through the emulator. The funnel is
productViewed -> checkoutStarted -> orderPlaced, ordered, within 7 days.

The ratio compares ours and the oracle of ``tests/funnel_reference.py`` (as committed) on the
same first 200,000 rows, timed alternately in this run; the median of per-round ratios is
printed. Targets: >= 2,000,000 events/s on the full frame and >= 100x the oracle.

Run: ``.venv/bin/python benchmarks/funnel.py [--rounds 5] [--events 5000000]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from funnel_reference import reference_funnel  # noqa: E402

from croct_pandas.funnel import funnel  # noqa: E402
from croct_pandas.schema import EVENT_TYPES  # noqa: E402

STEPS = ["productViewed", "checkoutStarted", "orderPlaced"]
#: The frame's categories: every known type, sorted, as the contract has them.
TYPES = sorted(EVENT_TYPES)
#: Relative frequency of each type: browsing dominates, orders are rare.
WEIGHTS = {
    "pageOpened": 30,
    "pageLoaded": 25,
    "productViewed": 12,
    "userClicked": 8,
    "userScrolled": 8,
    "tabVisibilityChanged": 4,
    "nothingChanged": 4,
    "cartViewed": 3,
    "cartModified": 3,
    "checkoutStarted": 1.5,
    "orderPlaced": 0.8,
}


def build_frame(events: int, users: int, days: int = 30, seed: int = 0) -> pd.DataFrame:
    """A synthetic event frame: sessions of ~5 events within 30 minutes, two per user."""
    rng = np.random.default_rng(seed)
    sessions = max(events // 5, 1)
    session_user = rng.permutation(np.arange(sessions) % users)  # every user has a session
    session_start = rng.integers(0, days * 86_400_000, sessions)
    session = np.r_[np.arange(sessions), rng.integers(0, sessions, events - sessions)]
    stamp = session_start[session] + rng.integers(0, 30 * 60_000, events)
    weights = np.array([WEIGHTS.get(t, 0.3) for t in TYPES])
    kind = rng.choice(len(TYPES), size=events, p=weights / weights.sum())
    order = np.argsort(stamp, kind="stable")
    stamp, kind, session = stamp[order], kind[order], session[order]
    start = pd.Timestamp("2026-01-01", tz="UTC").value // 1_000_000

    def text(prefix: str, codes: np.ndarray, count: int) -> pd.Series:
        names = pa.array([f"{prefix}{i:07d}" for i in range(count)], type=pa.string())
        return pd.Series(pd.arrays.ArrowStringArray(names.take(pa.array(codes))))

    return pd.DataFrame(
        {
            "type": pd.Categorical.from_codes(kind, categories=TYPES),
            "timestamp": pd.Series((stamp + start).astype("datetime64[ms]")).dt.tz_localize("UTC"),
            "sessionId": text("s", session, sessions),
            "userId": text("u", session_user[session], users),
        }
    )


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - began, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sample", type=int, default=200_000)
    args = parser.parse_args()

    seconds, df = timed(build_frame, args.events, args.users)
    print(f"frame: {len(df):,} events, {df['userId'].nunique():,} users, built in {seconds:.1f}s")

    runs = []
    for _ in range(args.rounds):
        seconds, result = timed(funnel, df, STEPS, within="7D")
        runs.append(seconds)
    ours = statistics.median(runs)
    print(result.table[["step", "name", "entities", "conversion", "median_time"]].to_string())
    print(
        f"ours, {len(df):,} events: median {ours:.3f}s of {args.rounds} "
        f"({', '.join(f'{s:.3f}' for s in runs)}) -> {len(df) / ours:,.0f} events/s "
        f"(target >= 2,000,000)"
    )

    sample = df.iloc[: args.sample].copy()
    ratios = []
    for round_ in range(args.rounds):
        ours_s, mine = timed(funnel, sample, STEPS, within="7D")
        ref_s, (table, ledger) = timed(reference_funnel, sample, STEPS, within="7D")
        pd.testing.assert_frame_equal(mine.table, table)
        pd.testing.assert_frame_equal(mine.ledger, ledger)
        ratios.append(ref_s / ours_s)
        print(f"round {round_ + 1}: ours {ours_s:.3f}s, reference {ref_s:.2f}s, {ratios[-1]:,.0f}x")
    print(
        f"ratio on the first {len(sample):,} rows: median {statistics.median(ratios):,.0f}x "
        f"over {args.rounds} rounds (target >= 100x); results identical"
    )


if __name__ == "__main__":
    main()
