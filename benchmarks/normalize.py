"""Bytes -> typed frame: croct-pandas against ``json.loads`` + ``pd.json_normalize``.

100 pages of 1,000 realistic events of every type (from the emulator's generator), normalised
in the same run by both, alternating, at least 3 rounds; the figure is the median of the
per-round ratios. "Ours" is what ``read_croct_events`` does with the bodies (the client's check
of each body, the memory sink's batches, in this process or the normalising workers; the
workers start in round 1 and stay, as in a session). Peak memory is measured in a child process
that only normalises (its workers started on a few pages first): the highest summed RSS of it
and its workers, sampled every millisecond, minus their RSS after imports and after reading the
pages, against the final frame's ``memory_usage(deep=True)``; the sum of each process's own peak
is printed beside it as an upper bound.

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
    """What read_croct_events does with the bodies it receives (cache=False): the client checks
    each body into a Page, the memory sink normalises the slice's pages in batches (here or in
    the worker process), and the frame is built from the tables."""
    from croct_pandas.client import Page
    from croct_pandas.export import MemorySink
    from croct_pandas.frame import build_frame
    from croct_pandas.process_state import paused_gc, system_arrow_pool
    from croct_pandas.slices import Slice

    with paused_gc(), system_arrow_pool():
        task = Slice(None, 1)
        sink = MemorySink((None, 1), workers=1)
        for body in pages:
            sink.on_page(task, Page.from_body(body))  # the client's check of each body
        sink.on_slice_done(task)
        return build_frame(sink.tables(), attrs=sink.attrs())


def _children() -> list[int]:
    """Process ids whose parent is this process (the normalising worker, when it runs)."""
    me, found = os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _rss_kib(field: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak(pid: int | str = "self") -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS


class _Sampler:
    """The summed RSS of some processes, read every millisecond in a thread; ``peak_kib`` is its
    highest value (at least the processes' RSS when it stopped)."""

    def __init__(self, pids: list[int | str]) -> None:
        import threading

        self.pids = pids
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _total(self) -> int:
        return sum(_rss_kib("VmRSS", pid) for pid in self.pids)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak_kib = max(self.peak_kib, self._total())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, self._total())


def child(path: str) -> None:
    import croct_pandas.frame
    import croct_pandas.normalize  # noqa: F401

    with open(path, "rb") as f:
        pages = orjson.loads(f.read())
    pages = [p.encode() for p in pages]
    # start the worker process on a few pages, as an earlier read in the session would: its
    # imports are not memory the normalisation uses
    ours(pages[:5])
    workers = _children()
    gc.collect()
    before = {pid: _rss_kib("VmRSS", pid) for pid in ["self", *workers]}
    for pid in before:
        _reset_peak(pid)
    sampler = _Sampler(list(before))
    frame = ours(pages)
    sampler.stop()
    # the sum of each process's own peak is an upper bound (they peak at different moments);
    # the sampled peak of the sum is what the machine needed at its worst moment
    each = [(_rss_kib("VmHWM", pid) - rss) * 1024 for pid, rss in before.items()]
    grown = sampler.peak_kib - sum(before.values())
    size = int(frame.memory_usage(deep=True).sum())
    print(
        json.dumps(
            {
                "peak_bytes": grown * 1024,
                "frame_bytes": size,
                "rows": len(frame),
                "columns": frame.shape[1],
                "processes": len(before),
                "each": each,
                "sum_of_peaks": sum(each),
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
        f"{mem_ratio:.2f}x the frame (target <= 3x), the highest total RSS of "
        f"{mem['processes']} processes (this one and its normalising workers), sampled every "
        f"millisecond; upper bound, the sum of each one's own peak: "
        f"{mem['sum_of_peaks'] / 1e6:.1f} MB = {mem['sum_of_peaks'] / mem['frame_bytes']:.2f}x ("
        + " + ".join(f"{b / 1e6:.0f}" for b in mem["each"])
        + " MB)"
    )
    print(f"speed: median {speed:.1f}x json.loads + json_normalize (target >= 5x)")


if __name__ == "__main__":
    main()
