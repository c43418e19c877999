"""Who a visitor is: place, device, language, currency and account state, drawn from a seed.

Also the weighted draws every part of the generator shares (places, clients, referrers, hours),
so a given seed always spends its random numbers in the same order.

Examples
--------
>>> import random
>>> user = User(random.Random(3), LOCATIONS[0], CLIENTS[0])
>>> user.currency == LOCATIONS[0].shop_currency, user.kind in ("anon", "member", "new", "bot")
(True, True)
"""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate
from typing import Any

from croct_pandas.emulator.catalog import (
    CLIENTS,
    HOUR_WEIGHTS,
    LOCATIONS,
    REFERRERS,
    ClientKind,
    Place,
    new_uuid,
)

__all__ = [
    "CLIENT_CUM",
    "DAY_MS",
    "HOUR_CUM",
    "PLACE_CUM",
    "REFERRER_CUM",
    "User",
    "pick",
]

DAY_MS = 86_400_000


def _cumulative(weights: tuple[int, ...] | list[int]) -> list[int]:
    return list(accumulate(weights))


PLACE_CUM = _cumulative([p.weight for p in LOCATIONS])
CLIENT_CUM = _cumulative([c.weight for c in CLIENTS])
REFERRER_CUM = _cumulative([r[3] for r in REFERRERS])
HOUR_CUM = _cumulative(HOUR_WEIGHTS)


def pick(rng: random.Random, items: tuple[Any, ...], cum: list[int]) -> Any:
    """One of ``items``, drawn with the weights whose running totals are ``cum``.

    Examples
    --------
    >>> pick(random.Random(0), ("rare", "common"), [1, 100])
    'common'
    """
    return items[bisect(cum, rng.random() * cum[-1])]


class User:
    """Who a visitor is: place, device, language, currency and account state."""

    __slots__ = (
        "client",
        "client_kind",
        "currency",
        "ext_id",
        "kind",
        "langs",
        "level",
        "locale",
        "meta",
        "place",
        "uid",
        "user_agent",
        "viewport",
    )

    def __init__(self, rng: random.Random, place: Place, client: ClientKind) -> None:
        self.uid = new_uuid(rng)
        self.place = place
        self.client_kind = client
        self.currency = place.shop_currency
        self.locale = place.locale
        version = rng.choice(client.versions) if client.versions else None
        os_version = rng.choice(client.os_versions)
        self.client = (client.browser, version, client.os, os_version)
        self.user_agent = client.user_agent.format(
            v=version or "", os=os_version or "", dev=client.device or ""
        )
        lang = place.locale
        base = lang.split("-")[0]
        self.langs = (
            None
            if client.category == "BOT" or rng.random() < 0.05
            else (f"{lang},{base}" if base == "en" else f"{lang},{base},en-US,en")
        )
        r = rng.random()
        self.level = "full" if r < 0.75 else ("partial" if r < 0.92 else "unknown")
        if client.category == "BOT":
            self.kind = "bot"
        else:
            r = rng.random()
            self.kind = "anon" if r < 0.55 else ("member" if r < 0.85 else "new")
        self.ext_id = (
            (
                f"cust-{rng.randrange(10**7):07d}"
                if rng.random() < 0.6
                else f"usr_{rng.getrandbits(32):08x}"
            )
            if self.kind in ("member", "new")
            else None
        )
        self.meta: dict[str, str] | None = None
        if rng.random() < 0.85:
            meta = {"sdkVersion": rng.choice(("0.17.2", "0.18.0", "0.19.1"))}
            if rng.random() < 0.6:
                meta["custom_appVersion"] = rng.choice(("6.2.1", "6.3.0"))
            if rng.random() < 0.3:
                meta["custom_checkoutFlow"] = rng.choice(("classic", "one-page"))
            self.meta = meta
        cat = client.category
        if cat == "MOBILE":
            self.viewport = (rng.randint(360, 430), rng.randint(640, 900))
        elif cat == "TABLET":
            self.viewport = (rng.randint(768, 1024), rng.randint(1000, 1300))
        else:
            self.viewport = (rng.randint(1280, 1920), rng.randint(650, 1000))
