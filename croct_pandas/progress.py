"""The export's progress bar: the time window done, events fetched, and any wait."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from croct_pandas.slices import Slice

__all__ = ["Progress"]


class Progress:
    """A ``tqdm.auto`` bar over ``[start, end)`` in milliseconds of event time (no-op when
    disabled); counted in whole milliseconds so the parts always add up to the total.

    Thread-safe: every worker reports its own slice.

    Examples
    --------
    >>> bar = Progress(0, 60_000, enabled=False)
    >>> bar.advance(Slice(0, 60_000), 0, 30_000, 10)
    >>> bar.events
    10
    """

    def __init__(self, start: int | None, end: int, *, enabled: bool) -> None:
        self.events = 0
        self._lock = threading.Lock()
        self._start = start
        self._bar: Any = None
        self._waiting = ""
        self._cached = ""
        if enabled:
            import sys

            from tqdm.auto import tqdm

            total = None if start is None else end - start
            # a log or a pipe keeps every frame: a few a minute there, not ten a second
            quiet = not getattr(sys.stderr, "isatty", lambda: False)()
            self._bar = tqdm(
                mininterval=5.0 if quiet else 0.1,
                total=total,
                desc="Croct export",
                unit="ms",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}"
                if total
                else "{desc}: {elapsed} {postfix}",
                leave=True,
            )
            self._refresh()

    def skip_covered(self, tasks: Iterable[Slice]) -> None:
        """Count the parts of the window that need no request (the cache holds them) as done."""
        if self._bar is None or self._start is None or not self._bar.total:
            return
        todo = sum((t.end - t.start) for t in tasks if t.start is not None)
        with self._lock:
            covered = max(0, self._bar.total - todo)
            if covered:
                # the events counted are those fetched: say where the rest of the window is
                self._cached = " fetched, the rest from the cache" if todo else " from the cache"
                self._bar.update(covered)
                self._refresh()

    def advance(self, task: Slice, position: int | None, last: int | None, events: int) -> None:
        with self._lock:
            self.events += events
            self._waiting = ""
            if self._bar is not None:
                if position is not None and last is not None and last > position:
                    self._bar.update(min(last, task.end) - position)
                self._refresh()

    def finish(self, task: Slice, position: int | None) -> None:
        with self._lock:
            if self._bar is not None and position is not None and task.end > position:
                self._bar.update(task.end - position)
                self._refresh()

    def on_wait(self, seconds: float, reason: str) -> None:
        if seconds < 0.05:  # too short to read; shown, it only flickers
            return
        with self._lock:
            self._waiting = f" · waiting {seconds:.1f} s ({reason})"
            self._refresh()

    def note(self, text: str) -> None:
        """Show what happens after the last page (``"building the frame"``) until :meth:`close`."""
        with self._lock:
            self._waiting = f" · {text}"
            self._refresh(now=True)

    def _refresh(self, now: bool = False, rows: int | None = None) -> None:
        if self._bar is not None:
            # tqdm redraws at its own pace (mininterval); forcing it on every page floods logs
            text = f"{self.events:,} events{self._cached}{self._waiting}"
            if self._cached == " from the cache":
                text = f"read from the cache{self._waiting}"
            if rows is not None:
                # the frame's count: an event the API sent twice was fetched twice, kept once
                text = f"{rows:,} events"
                if self._cached == " from the cache":
                    text += " read from the cache"
                elif self._cached:
                    text += f" ({self.events:,}{self._cached})"
            self._bar.set_postfix_str(text, refresh=now)

    def close(self, rows: int | None = None) -> None:
        """End the bar; ``rows``, the frame's row count, is the final figure when given (a
        failed or interrupted export ends on the events fetched)."""
        with self._lock:
            if self._bar is not None:
                self._waiting = ""
                self._refresh(rows=rows)
                self._bar.close()  # draws the final state once
