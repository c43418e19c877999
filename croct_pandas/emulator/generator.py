"""``generate_events``: a believable, seeded e-commerce store in the 0.7.1 wire form.

Visitors come back over the days in a daily rhythm (local time, busiest in the evening), browse
with tabs, scrolls and clicks, view products, fill and empty carts, and a share of them check out
and order; carts left behind are abandoned by the server half an hour after the last activity.
Everything comes from one :class:`random.Random` seeded by ``seed``, never from the clock.

This module spreads visitors and their sessions over the period; the rest lives beside it:

- ``visitors.py``: who a visitor is (place, device, language, account) and the weighted draws;
- ``visit.py``: one session's story, on ``shopping.py`` (products, cart, checkout), itself on
  ``browsing.py`` (tab, pages, scrolls, clicks, pings: the events in time order);
- ``payloads.py``: product, cart and order payloads; ``detections.py``: location, client,
  audiences and personalized slots, as Croct's servers add them.
"""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect
from operator import itemgetter
from typing import Any

from croct_pandas.emulator.catalog import (
    CLIENTS,
    LOCATIONS,
    Catalog,
    ClientKind,
    Place,
    build_catalog,
)
from croct_pandas.emulator.visit import Visit
from croct_pandas.emulator.visitors import CLIENT_CUM, DAY_MS, HOUR_CUM, PLACE_CUM, User, pick
from croct_pandas.errors import InvalidArgumentError
from croct_pandas.process_state import paused_gc

__all__ = ["generate_events"]

_MAX_USERS = 10_000_000


def start_ms(start: str | dt.date) -> int:
    """Epoch milliseconds of midnight UTC on ``start`` (a date or an ISO ``YYYY-MM-DD``).

    Examples
    --------
    >>> start_ms("2026-01-01")
    1767225600000
    """
    if isinstance(start, dt.datetime):
        day = start.date()
    elif isinstance(start, dt.date):
        day = start
    elif isinstance(start, str):
        try:
            day = dt.date.fromisoformat(start[:10])
        except ValueError:
            raise InvalidArgumentError(
                f"start must be a date such as '2026-01-01'; got {start!r}"
            ) from None
    else:
        raise InvalidArgumentError(f"start must be a date or 'YYYY-MM-DD'; got {start!r}")
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def _check_count(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be an integer from {low} to {high}; got {value!r}")
    return value


def generate_events(
    *, users: int = 1000, days: int = 7, seed: int = 0, start: str | dt.date = "2026-01-01"
) -> list[dict[str, Any]]:
    """Generate a synthetic shop's events in the spec 0.7.1 wire form.

    Parameters
    ----------
    users : int
        Visitors (internal user ids); each has one or more sessions.
    days : int
        Length of the period, from midnight UTC of ``start``; every event falls inside it.
    seed : int
        Seed of the only source of randomness: the same seed gives the same events.
    start : str or datetime.date
        First day of the period (``YYYY-MM-DD``); a fixed date, never "now".

    Returns
    -------
    list of dict
        Wire events sorted by ``(timestamp, id)``, as ``GET /export/events`` returns them.

    Examples
    --------
    >>> events = generate_events(users=20, days=2, seed=7)
    >>> events == generate_events(users=20, days=2, seed=7)
    True
    >>> sorted(events[0])
    ['context', 'id', 'payload', 'sessionId', 'timestamp', 'userId']
    """
    _check_count("users", users, 1, _MAX_USERS)
    _check_count("days", days, 1, 3660)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidArgumentError(f"seed must be an integer; got {seed!r}")
    t0 = start_ms(start)
    catalog = build_catalog(seed)
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    window_end = t0 + days * DAY_MS
    order_seq = [0]
    with paused_gc():
        for _ in range(users):
            _visitor(rng, catalog, out, t0, window_end, days, order_seq)
        out.sort(key=itemgetter("timestamp", "id"))
    return out


def _visitor(
    rng: random.Random,
    catalog: Catalog,
    out: list[dict[str, Any]],
    t0: int,
    window_end: int,
    days: int,
    order_seq: list[int],
) -> None:
    place: Place = pick(rng, LOCATIONS, PLACE_CUM)
    client: ClientKind = pick(rng, CLIENTS, CLIENT_CUM)
    user = User(rng, place, client)
    # returning visitors: more days, more chances to come back
    p_return = min(0.6, days / (days + 4))
    n = 1
    while rng.random() < p_return and n < 2 * days + 1:
        n += 1
    offset_ms = int(place.utc_offset * 3_600_000)
    starts = []
    for _ in range(n):
        local = rng.randrange(days) * DAY_MS + bisect(HOUR_CUM, rng.random() * HOUR_CUM[-1]) * (
            3_600_000
        )
        t = t0 + local - offset_ms + rng.randrange(3_600_000)
        if t < t0:
            t += DAY_MS
        elif t >= window_end:
            t -= DAY_MS
        starts.append(t)
    starts.sort()
    previous_end: int | None = None
    for t in starts:
        if previous_end is not None:
            t = max(t, previous_end + rng.randint(300_000, 4 * 3_600_000))
        if t >= window_end:
            break
        visit = Visit(rng, catalog, user, t, order_seq, t0)
        events = visit.run()
        if visit.end >= window_end:
            # a session that would run past the period is left out whole, not cut
            continue
        out.extend(events)
        previous_end = visit.end
