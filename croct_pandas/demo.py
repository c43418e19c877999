"""``croct-pandas demo``: the whole product end to end against the embedded emulator."""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

import pandas as pd

__all__ = ["DEMO_PORT", "chart_suffixes", "run_demo"]

FUNNEL = ["productViewed", "checkoutStarted", "orderPlaced"]
#: Not the emulator command's 8765, so a `croct-pandas emulator` left running does not push the
#: demo off its port (nor share a cache namespace with it).
DEMO_PORT = 8766
# The cache names its folder after the base URL and learns a new key's application with one
# request: a fixed port and a fixed key let a rerun find the first run's data with no request.
# The store is synthetic and served on loopback only, so a well-known key gives nothing away.
_DEMO_KEY = "croct-pandas-demo"


def run_demo(
    *,
    users: int = 3000,
    days: int = 28,
    seed: int = 7,
    cache: str = "croct-cache",
    output: str = "funnel.png",
    progress: bool = True,
    start: str = "2026-01-01",
    port: int = DEMO_PORT,
) -> int:
    """Serve a realistic store, export it through the real client into a cache, count a funnel,
    draw it, and read the window again from the cache.

    The emulator listens on ``port`` (any free port when it is taken), so a rerun with the same
    cache reads the first run's data from it without a request. When the cache holds another
    store's events (another ``users``, ``days`` or ``seed``), they are fetched again.

    Examples
    --------
    >>> import contextlib, io, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with contextlib.redirect_stdout(io.StringIO()) as shown:
    ...     code = run_demo(users=30, days=2, cache=os.path.join(folder, "cache"),
    ...                     output=os.path.join(folder, "funnel.png"), progress=False, port=0)
    >>> code, "with 0 requests" in shown.getvalue(), "funnel.png" in os.listdir(folder)
    (0, True, True)
    """
    import croct_pandas as cp
    from croct_pandas.emulator import Faults
    from croct_pandas.emulator.cli import day_range

    # a little of every fault, so the retries and the waits show in the progress bar
    faults = Faults(
        seed=seed,
        latency_s=0.02,
        error_rate=0.03,
        reset_rate=0.01,
        truncate_rate=0.01,
        slow_rate=0.01,
        slow_s=0.2,
        repeat_rate=0.05,
        rate_limit=60,
    )
    window_start = pd.Timestamp(start, tz="UTC")
    window_end = window_start + pd.Timedelta(days=days)
    print(f"Generating a store of {users:,} users over {days} days ...", flush=True)
    emu = _start_emulator(port, users=users, days=days, seed=seed, start=start, faults=faults)
    try:
        print(
            f"Croct Export API emulator at {emu.url}: {len(emu.events):,} events "
            f"({day_range(emu.events)})",
            flush=True,
        )
        if port and not emu.url.endswith(f":{port}"):
            print(f"(port {port} is taken: this run cannot reuse the cache of earlier runs)")

        def read(show_progress: bool, refresh: bool = False) -> tuple[pd.DataFrame, float]:
            began = time.perf_counter()
            frame = cp.read_croct_events(
                window_start,
                window_end,
                api_key=emu.api_key,
                base_url=emu.url,
                cache=cache,
                progress=show_progress,
                refresh=refresh,
            )
            return frame, time.perf_counter() - began

        frame, cold = read(progress)
        if not _same_store(frame, emu.events):
            print(
                f"\nThe cache in {cache} held another store's events (from other --users, "
                "--days or --seed): fetching this store again",
                flush=True,
            )
            emu.reset_log()
            frame, cold = read(progress, refresh=True)
        _print_read(frame, cold, emu.requests, cache)
        _print_metadata(frame.attrs["croct"].get("metadata") or {})
        print(f"\nFrame: {frame.shape[0]:,} rows x {frame.shape[1]} columns")
        counts = frame["type"].value_counts()
        print("\nEvents by type:")
        print(counts[counts > 0].to_string())

        result = frame.croct.funnel(FUNNEL, within="7D")
        print("\nFunnel productViewed -> checkoutStarted -> orderPlaced (people, 7-day window):")
        print(_funnel_text(result.table))
        _save_chart(result, output)
        print(f"\nChart saved to {output}")

        emu.reset_log()
        again, warm = read(False)
        print(
            f"\nSame window again: {len(again):,} events in {warm:.2f} s with "
            f"{len(emu.requests)} requests (served from the cache in {cache!s})"
        )
    finally:
        emu.stop()
    return 0


def chart_suffixes() -> frozenset[str]:
    """The file suffixes matplotlib can save the chart as, found without importing pyplot.

    Examples
    --------
    >>> ".png" in chart_suffixes(), ".svg" in chart_suffixes(), ".txt" in chart_suffixes()
    (True, True, False)
    """
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    # pgf needs a TeX installation, which a demo cannot count on
    return frozenset(f".{name}" for name in formats if name != "pgf")


def _start_emulator(port: int, **options: Any) -> Any:
    from croct_pandas.emulator import Emulator

    wanted = port if port and _is_free(port) else 0
    emu = Emulator(port=wanted, api_key=_DEMO_KEY, **options)
    try:
        return emu.start()
    except OSError as exc:
        if wanted == 0 or exc.errno != errno.EADDRINUSE:
            raise
    # taken between the check and the bind: rare enough to pay for a second store
    return Emulator(port=0, api_key=_DEMO_KEY, **options).start()


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the server binds: a port whose last connections linger in TIME_WAIT is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _same_store(frame: pd.DataFrame, events: list[dict[str, Any]]) -> bool:
    # the cache knows the application, not the store behind it: another store served on the
    # same port left its events there, and they are not this store's
    if len(frame) != len(events):
        return False
    from croct_pandas.emulator.dialect import event_id

    return set(frame["id"].astype(str)) == {event_id(e) for e in events}


def _print_read(frame: pd.DataFrame, seconds: float, requests: list[Any], cache: str) -> None:
    if not requests:
        print(
            f"\nRead {len(frame):,} events from the cache in {cache} in {seconds:.1f} s with 0 "
            f"requests: an earlier run stored them (`croct-pandas cache clear --cache {cache}` "
            "to fetch them again)"
        )
        return
    injected = [f for r in requests for f in r.faults if f != "latency"]
    print(
        f"\nExported {len(frame):,} events in {seconds:.1f} s with {len(requests)} requests; "
        f"survived {len(injected)} injected faults ({_kinds(injected)})"
    )


def _kinds(faults: list[str]) -> str:
    counts: dict[str, int] = {}
    for fault in faults:
        kind = fault.split(":")[0].replace("_", " ")
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


def _print_metadata(metadata: dict[str, Any]) -> None:
    if not metadata:
        return
    print(
        f"Application: {metadata.get('applicationName')} ({metadata.get('applicationSlug')}), "
        f"workspace {metadata.get('workspaceName')} ({metadata.get('workspaceSlug')}), "
        f"organization {metadata.get('organizationName')} ({metadata.get('organizationSlug')})"
    )


def _funnel_text(table: pd.DataFrame) -> str:
    shown = table[["step", "name", "entities", "conversion", "step_conversion", "drop_off"]].copy()
    for name in ("conversion", "step_conversion"):
        shown[name] = shown[name].map(lambda v: f"{v:.1%}")
    if "median_time" in table:
        shown["median_time"] = table["median_time"].map(lambda v: "" if pd.isna(v) else str(v))
    return shown.to_string(index=False)


def _save_chart(result: Any, output: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = result.plot()
    ax.figure.savefig(output, dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
