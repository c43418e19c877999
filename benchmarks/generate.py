"""How fast ``generate_events`` builds a store, and how fast the emulator encodes it.

Usage: ``python benchmarks/generate.py [--events 1000000] [--rounds 3] [--encode]``.
Prints, per round, the events made, seconds and events/s, then the median; the target is
1,000,000 events in well under a minute (more than 50,000 events/s).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from croct_pandas.emulator import Emulator, generate_events

#: events per generated user over 7 days, measured on seed 0 (about 80); used to size the store
EVENTS_PER_USER = 80


def main() -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to aim for")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--encode", action="store_true", help="also time building an Emulator (JSON encoding)"
    )
    args = parser.parse_args()
    users = max(1, args.events // EVENTS_PER_USER)
    rates = []
    for round_ in range(1, args.rounds + 1):
        gc.collect()
        began, cpu = time.perf_counter(), time.process_time()
        events = generate_events(users=users, days=args.days, seed=round_)
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        rates.append(len(events) / seconds)
        # on a shared machine the CPU time shows what the wall clock hides
        print(
            f"round {round_}: {len(events):,} events from {users:,} users in {seconds:.1f} s "
            f"= {rates[-1]:,.0f} events/s (CPU {cpu:.1f} s = {len(events) / cpu:,.0f} events/s)",
            flush=True,
        )
        if args.encode:
            began = time.perf_counter()
            emulator = Emulator(events)
            seconds = time.perf_counter() - began
            print(f"         Emulator(events) built in {seconds:.1f} s", flush=True)
            del emulator
        del events
    print(f"median: {statistics.median(rates):,.0f} events/s (target: > 50,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
