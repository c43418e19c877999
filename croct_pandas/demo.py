"""``croct-pandas demo``: the whole product end to end against the embedded emulator."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

__all__ = ["run_demo"]

FUNNEL = ["productViewed", "checkoutStarted", "orderPlaced"]


def run_demo(
    *,
    users: int = 3000,
    days: int = 28,
    seed: int = 7,
    cache: str = "croct-cache",
    output: str = "funnel.png",
    progress: bool = True,
    start: str = "2026-01-01",
) -> int:
    """Serve a realistic store, export it through the real client into a cache, count a funnel,
    draw it, and read the window again from the cache.

    Examples
    --------
    >>> import contextlib, io, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with contextlib.redirect_stdout(io.StringIO()) as shown:
    ...     code = run_demo(users=30, days=2, cache=os.path.join(folder, "cache"),
    ...                     output=os.path.join(folder, "funnel.png"), progress=False)
    >>> code, "with 0 requests" in shown.getvalue(), "funnel.png" in os.listdir(folder)
    (0, True, True)
    """
    import croct_pandas as cp
    from croct_pandas.emulator import Emulator, Faults

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
    with Emulator(users=users, days=days, seed=seed, start=start, faults=faults) as emu:
        print(f"Croct Export API emulator at {emu.url}: {len(emu.events):,} events", flush=True)

        def read(show_progress: bool) -> tuple[pd.DataFrame, float]:
            began = time.perf_counter()
            frame = cp.read_croct_events(
                window_start,
                window_end,
                api_key=emu.api_key,
                base_url=emu.url,
                cache=cache,
                progress=show_progress,
            )
            return frame, time.perf_counter() - began

        frame, cold = read(progress)
        cold_requests = len(emu.requests)
        injected = [f for r in emu.requests for f in r.faults if f != "latency"]
        print(
            f"\nExported {len(frame):,} events in {cold:.1f} s with {cold_requests} requests; "
            f"survived {len(injected)} injected faults ({_kinds(injected)})"
        )
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
    return 0


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
