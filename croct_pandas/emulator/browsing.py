"""One tab's worth of browsing: pages opened and loaded, scrolls, clicks, pings, custom events.

:class:`Browsing` holds a session's clock and its web context (tab, URL, scroll position) and
turns each thing a visitor does into wire events in time order. It knows nothing of carts or
orders: :class:`~croct_pandas.emulator.shopping.Shopping` builds on it.

Examples
--------
>>> import random
>>> from croct_pandas.emulator.catalog import CLIENTS, LOCATIONS, build_catalog
>>> rng = random.Random(4)
>>> user = User(rng, LOCATIONS[0], CLIENTS[0])
>>> tab = Browsing(rng, build_catalog(4), user, 1_000_000, 0)
>>> tab.goto(tab.home_page())
>>> types = [event["payload"]["@type"] for event in tab.events]
>>> [name for name in types if name.startswith("page")]
['pageOpened', 'pageLoaded']
"""

from __future__ import annotations

import random
import zlib
from typing import Any

from croct_pandas.emulator.catalog import (
    CONTENT_PAGES,
    SHOP,
    UUID_CLEAR,
    UUID_SET,
    Catalog,
    new_uuid,
)
from croct_pandas.emulator.detections import slot_personalized
from croct_pandas.emulator.visitors import DAY_MS, User

__all__ = ["PINGS", "SESSION_TIMEOUT", "Browsing", "Page"]

#: nothingChanged pings: 30 s, 30 s, 2 min, 2 min, 5 min, 5 min and 15 min of no activity
PINGS = (30_000, 60_000, 180_000, 300_000, 600_000, 900_000, 1_800_000)
SESSION_TIMEOUT = 1_800_000

#: a page: (url, title, height in px, slot index or -1, static)
Page = tuple[str, str, int, int, bool]


class Browsing:
    """A session's clock and web context, and the browsing events a visitor makes."""

    def __init__(
        self, rng: random.Random, catalog: Catalog, user: User, t: int, origin: int
    ) -> None:
        self.rng = rng
        self.cat = catalog
        self.user = user
        self.t = t
        self.last = t
        self.end = t
        self.origin = origin
        self.sid = new_uuid(rng)
        self.events: list[dict[str, Any]] = []
        self.tab = ""
        self.url = ""
        self.height = 3000
        self.scroll = 0
        self.bot = user.kind == "bot"
        self.prices = catalog.prices[user.currency]
        self.meta = user.meta
        self.uid = user.uid
        self.bits = rng.getrandbits

    # -- emitting ---------------------------------------------------------------------------

    def emit(self, payload: dict[str, Any], web: bool = True) -> None:
        # the hot path of the generator: one call per event, so new_uuid is inlined
        t = self.t
        ctx: dict[str, Any] | None = None
        if web:
            meta = self.meta
            ctx = (
                {"type": "web", "tabId": self.tab, "url": self.url}
                if meta is None
                else {"type": "web", "tabId": self.tab, "url": self.url, "metadata": meta.copy()}
            )
            if payload["@type"] != "nothingChanged":
                self.last = t
        h = "%032x" % ((self.bits(128) & UUID_CLEAR) | UUID_SET)
        self.events.append(
            {
                "id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
                "sessionId": self.sid,
                "userId": self.uid,
                "timestamp": t,
                "context": ctx,
                "payload": payload,
            }
        )

    def tick(self, low: int, high: int) -> None:
        self.t += low + int(self.rng.random() * (high - low + 1))

    def pings_until(self, until: int) -> None:
        if self.bot:
            return
        since = self.last
        for offset in PINGS:
            at = since + offset
            if at >= until:
                break
            if at > self.t:
                self.t = at
                self.emit({"@type": "nothingChanged", "sinceTime": since})

    # -- pages ------------------------------------------------------------------------------

    def home_page(self) -> Page:
        return (SHOP + "/", "Acme Shop: shoes, outdoor gear and more", 4200, 0, False)

    def category_page(self, slug: str) -> Page:
        name = dict(self.cat.categories).get(slug, "Gift cards")
        return (f"{SHOP}/c/{slug}", f"{name} | Acme Shop", 6000, -1, False)

    def product_page(self, product: dict[str, Any]) -> Page:
        url = product["url"] or f"{SHOP}/p/{product['productId']}"
        return (url, f"{product['name']} | Acme Shop", 3800, 1, False)

    def static_page(self, path: str, title: str, height: int, slot: int = -1) -> Page:
        return (
            SHOP + path,
            f"{title} | Acme Shop",
            height,
            slot,
            path.startswith(("/blog", "/help")),
        )

    def pick_product(self, interest: str) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.7:
            return self.prices[rng.choice(self.cat.by_category[interest])]
        return rng.choice(self.prices)

    def random_page(self, interest: str) -> Page:
        r = self.rng.random()
        if r < 0.4:
            return self.product_page(self.pick_product(interest))
        if r < 0.7:
            return self.category_page(self.rng.choice(self.cat.categories)[0])
        path, title, height = self.rng.choice(CONTENT_PAGES)
        return self.static_page(path, title, height)

    # -- interactions -----------------------------------------------------------------------

    def page_opened(self, page: Page, referrer: str | None) -> None:
        self.url = page[0]
        self.height = page[2] * (2 if self.user.viewport[0] < 700 else 1)
        self.scroll = 0
        agent = None if self.rng.random() < 0.03 else self.user.user_agent
        self.emit(
            {
                "@type": "pageOpened",
                "url": self.url,
                "userAgent": agent,
                "preferredLanguages": self.user.langs,
                "referrer": referrer,
            }
        )

    def page_loaded(self, page: Page) -> None:
        rng = self.rng
        self.tick(250, 2500)
        if page[4]:
            # static pages carry the date they were last published
            modified = self.origin - (zlib.crc32(page[0].encode()) % (90 * DAY_MS)) - DAY_MS
        else:
            modified = self.t
        self.emit(
            {
                "@type": "pageLoaded",
                "url": page[0],
                "title": page[1],
                "lastModifiedTime": modified // 1000 * 1000,
            }
        )
        if page[3] >= 0 and rng.random() < 0.6:
            self.tick(5, 150)
            self.emit(slot_personalized(rng, self.cat, self.user.locale, page[3]))
        if page[3] == 0 and rng.random() < 0.3:
            self.tick(1, 50)
            self.emit(slot_personalized(rng, self.cat, self.user.locale, 2))

    def goto(self, page: Page, spa: bool = False) -> None:
        self.dwell()
        self.tick(50, 1500)
        if spa:
            self.url = page[0]
            self.scroll = 0
            self.emit({"@type": "tabUrlChanged", "tabId": self.tab, "url": self.url})
            return
        referrer = self.url
        if self.rng.random() < 0.06:
            # opened in a new tab, which the visitor then carries on in
            self.tab = new_uuid(self.rng)
            self.url = page[0]
            self.emit({"@type": "tabOpened", "tabId": self.tab})
            self.tick(3, 40)
        self.page_opened(page, referrer)
        self.page_loaded(page)

    def dwell(self, mean_s: float = 25.0) -> None:
        rng = self.rng
        total = min(900_000, int(rng.expovariate(1.0 / mean_s) * 1000) + 1500)
        end = self.t + total
        if not self.bot:
            count = min(8, int(rng.random() * 3) + total // 15_000)
            span = end - self.t - 1
            for at in sorted(self.t + 1 + int(rng.random() * span) for _ in range(count)):
                self.pings_until(at)
                self.t = max(at, self.t + 1)
                r = rng.random()
                if r < 0.6:
                    self.scrolled()
                elif r < 0.94:
                    self.clicked()
                else:
                    self.away()
        self.pings_until(end)
        self.t = max(end, self.t + 1)

    def away(self) -> None:
        self.emit({"@type": "tabVisibilityChanged", "tabId": self.tab, "visibility": "HIDDEN"})
        back = self.t + 4000 + int(self.rng.random() * 896_000)
        self.pings_until(back)
        self.t = max(back, self.t + 1)
        self.emit({"@type": "tabVisibilityChanged", "tabId": self.tab, "visibility": "VISIBLE"})

    def scrolled(self) -> None:
        rng = self.rng
        width, height = self.user.viewport
        top = max(0, self.height - height)
        start = self.scroll
        if start < top and rng.random() < 0.75:
            end = min(top, start + 200 + int(rng.random() * 1600))
        else:
            end = max(0, start - 100 - int(rng.random() * 1100))
        self.scroll = end
        payload: dict[str, Any] = {"@type": "userScrolled"}
        if rng.random() < 0.85:
            payload["start"] = {"x": 0, "y": start}
        payload["end"] = {"x": 0, "y": end}
        if rng.random() < 0.85:
            payload["surfaceSize"] = {"width": width, "height": self.height}
        if rng.random() < 0.85:
            payload["viewportSize"] = {"width": width, "height": height}
        self.emit(payload)

    def clicked(self) -> None:
        rng = self.rng
        width, height = self.user.viewport
        y = min(self.height, self.scroll + int(rng.random() * height))
        payload: dict[str, Any] = {
            "@type": "userClicked",
            "point": {"x": int(rng.random() * width), "y": y},
        }
        if rng.random() < 0.85:
            payload["surfaceSize"] = {"width": width, "height": self.height}
        self.emit(payload)

    def occurred(self, name: str, details: dict[str, Any]) -> None:
        self.tick(100, 4000)
        self.emit({"@type": "eventOccurred", "name": name, "details": details})

    def goal(self, goal_id: str, value: float | None = None) -> None:
        self.tick(5, 500)
        self.emit(
            {
                "@type": "goalCompleted",
                "goalId": goal_id,
                "value": None if value is None else f"{value:.2f}",
                "currency": None if value is None else self.user.currency,
            }
        )
