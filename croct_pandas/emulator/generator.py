"""``generate_events``: a believable, seeded e-commerce store in the 0.7.1 wire form.

Visitors come back over the days in a daily rhythm (local time, busiest in the evening), browse
with tabs, scrolls and clicks, view products, fill and empty carts, and a share of them check out
and order; carts left behind are abandoned by the server half an hour after the last activity.
Everything comes from one :class:`random.Random` seeded by ``seed``, never from the clock.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
import zlib
from bisect import bisect
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate
from operator import itemgetter
from typing import Any

from croct_pandas.emulator.catalog import (
    CLIENTS,
    CONTENT_PAGES,
    COUPONS,
    CURRENCIES,
    HOUR_WEIGHTS,
    LOCATIONS,
    PAYMENT_METHODS,
    REFERRERS,
    SEARCH_TERMS,
    SHOP,
    UUID_CLEAR,
    UUID_SET,
    Catalog,
    ClientKind,
    Place,
    build_catalog,
    new_uuid,
)
from croct_pandas.errors import InvalidArgumentError

__all__ = ["generate_events"]

DAY_MS = 86_400_000
_MAX_USERS = 10_000_000


def _cumulative(weights: tuple[int, ...] | list[int]) -> list[int]:
    return list(accumulate(weights))


_PLACE_CUM = _cumulative([p.weight for p in LOCATIONS])
_CLIENT_CUM = _cumulative([c.weight for c in CLIENTS])
_REFERRER_CUM = _cumulative([r[3] for r in REFERRERS])
_HOUR_CUM = _cumulative(HOUR_WEIGHTS)


def _pick(rng: random.Random, items: tuple[Any, ...], cum: list[int]) -> Any:
    return items[bisect(cum, rng.random() * cum[-1])]


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


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic dicts.

    Each collection would rescan every container made so far, which costs more than the work
    itself on large stores; reference counting still frees everything as usual.

    Examples
    --------
    >>> with paused_gc():
    ...     rows = [{"n": i} for i in range(3)]
    >>> gc.isenabled()
    True
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    place: Place = _pick(rng, LOCATIONS, _PLACE_CUM)
    client: ClientKind = _pick(rng, CLIENTS, _CLIENT_CUM)
    user = _User(rng, place, client)
    # returning visitors: more days, more chances to come back
    p_return = min(0.6, days / (days + 4))
    n = 1
    while rng.random() < p_return and n < 2 * days + 1:
        n += 1
    offset_ms = int(place.utc_offset * 3_600_000)
    starts = []
    for _ in range(n):
        local = rng.randrange(days) * DAY_MS + bisect(_HOUR_CUM, rng.random() * _HOUR_CUM[-1]) * (
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
        visit = _Visit(rng, catalog, user, t, order_seq, t0)
        events = visit.run()
        if visit.end >= window_end:
            # a session that would run past the period is left out whole, not cut
            continue
        out.extend(events)
        previous_end = visit.end


class _User:
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


#: nothingChanged pings: 30 s, 30 s, 2 min, 2 min, 5 min, 5 min and 15 min of no activity
_PINGS = (30_000, 60_000, 180_000, 300_000, 600_000, 900_000, 1_800_000)
_SESSION_TIMEOUT = 1_800_000
_TAX = {"USD": ("salesTax", 0.08), "CAD": ("salesTax", 0.13), "BRL": ("icms", 0.18)}
_ADDS_TAX = frozenset({"USD", "CAD"})
_STATUSES = ("PLACED", "PLACED", "PLACED", "PAID", "PAID", "COMPLETED", None, None)
_SOURCES = ("IP",) * 16 + ("BROWSER", "BROWSER", "GPS", "INPUT")

#: a page: (url, title, height in px, slot index or -1, static)
Page = tuple[str, str, int, int, bool]


class _Visit:
    """One session of one visitor, played out as wire events in time order."""

    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        user: _User,
        t: int,
        order_seq: list[int],
        origin: int,
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
        # [priced product, quantity, discount rate, coupon]
        self.cart: list[list[Any]] = []
        self.cart_time = t
        self.cart_coupon: str | None = None
        self.signed_in = False
        self.ordered = False
        self.order_seq = order_seq
        # how much the shop's tracking code sends with carts (nullable fields stay null otherwise)
        self.rich = rng.random() < 0.6
        self.costs = rng.random() < 0.5
        # ProductDetails.currency is optional (0.7.0): some pages send it, a few send null
        r = rng.random()
        self.send_currency = r < 0.55
        self.product_currency = user.currency if r < 0.45 else None
        self.prices = catalog.prices[user.currency]
        self.rate = CURRENCIES[user.currency][0]
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
        for offset in _PINGS:
            at = since + offset
            if at >= until:
                break
            if at > self.t:
                self.t = at
                self.emit({"@type": "nothingChanged", "sinceTime": since})

    # -- the session ------------------------------------------------------------------------

    def run(self) -> list[dict[str, Any]]:
        rng, user = self.rng, self.user
        ref, kind, utm, _ = (
            (None, "home", "", 0) if self.bot else _pick(rng, REFERRERS, _REFERRER_CUM)
        )
        interest = rng.choice(self.cat.categories)[0]
        product: dict[str, Any] | None = None
        if kind == "home":
            page = self.home_page()
        elif kind == "category" or (kind == "search" and rng.random() < 0.5):
            page = self.category_page(interest)
        else:
            product = self.pick_product(interest)
            page = self.product_page(product)
        if utm:
            page = (page[0] + utm, *page[1:])
        if "newsletter" in utm or rng.random() < 0.05:
            self.cart_coupon = "WELCOME10"  # a promotion link applies its code to the cart
        self.tab = new_uuid(rng)
        self.url = page[0]
        self.emit({"@type": "tabOpened", "tabId": self.tab})
        self.tick(3, 40)
        self.page_opened(page, ref)
        self.tick(20, 300)
        self.emit({"@type": "locationDetected", "location": self.location()}, web=False)
        self.tick(1, 40)
        self.emit({"@type": "clientDetected", "client": self.client()}, web=False)
        if rng.random() < 0.35:
            self.tick(5, 200)
            self.emit(self.audience_matched(), web=False)
        self.page_loaded(page)
        if product is not None:
            self.view_product(product)
        if self.bot:
            for _ in range(rng.randint(2, 12)):
                self.goto(self.random_page(interest))
            return self.finish()
        views = product is not None or rng.random() < 0.6
        will_cart = views and rng.random() < 0.30
        will_checkout = will_cart and rng.random() < 0.40
        will_order = will_checkout and rng.random() < 0.60
        if user.kind == "member" and rng.random() < 0.5:
            self.signed_in = True  # still signed in from an earlier visit: no event
        if not will_cart and rng.random() < 0.35:
            return self.finish()  # a bounce
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            self.browse(interest)
        if user.kind == "member" and not self.signed_in and rng.random() < 0.25:
            self.sign_in()
        if user.kind == "new" and rng.random() < 0.2:
            self.sign_up()
        if views:
            self.shop(interest, will_cart, will_checkout)
        if will_checkout:
            if user.kind == "member" and not self.signed_in and rng.random() < 0.6:
                self.sign_in()
            elif user.kind == "new" and rng.random() < 0.5:
                self.sign_up()
            self.checkout(will_order)
        if rng.random() < 0.2:
            self.browse(interest)
        if rng.random() < 0.06:
            self.lead("newsletter")
        return self.finish()

    def finish(self) -> list[dict[str, Any]]:
        rng = self.rng
        if self.signed_in and rng.random() < 0.12:
            self.goto(self.static_page("/account", "Your account", 1600))
            self.tick(500, 4000)
            self.emit({"@type": "userSignedOut", "externalUserId": self.user.ext_id})
            self.signed_in = False
        self.dwell()
        if not self.bot:
            if rng.random() < 0.5:
                self.tick(1, 2000)
                self.emit(
                    {"@type": "tabVisibilityChanged", "tabId": self.tab, "visibility": "HIDDEN"}
                )
            # a tab left open keeps pinging until it is closed
            pings = rng.choice((0, 0, 1, 1, 2, 3, 4, 5, 6, 7))
            if pings:
                self.pings_until(self.last + _PINGS[pings - 1] + 1)
        if self.cart and not self.ordered:
            self.t = max(self.t, self.last + _SESSION_TIMEOUT) + rng.randint(1000, 300_000)
            self.emit({"@type": "cartAbandoned", "cart": self.cart_payload()}, web=False)
            for i in range(len(self.cart)):
                self.t += 1
                cart = self.cart_payload()
                self.emit(
                    {"@type": "productAbandoned", "cartItem": cart["items"][i], "cart": cart},
                    web=False,
                )
        self.end = self.t
        return self.events

    # -- pages and interactions --------------------------------------------------------------

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

    def random_page(self, interest: str) -> Page:
        r = self.rng.random()
        if r < 0.4:
            return self.product_page(self.pick_product(interest))
        if r < 0.7:
            return self.category_page(self.rng.choice(self.cat.categories)[0])
        path, title, height = self.rng.choice(CONTENT_PAGES)
        return self.static_page(path, title, height)

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
            self.emit(self.slot(page[3]))
        if page[3] == 0 and rng.random() < 0.3:
            self.tick(1, 50)
            self.emit(self.slot(2))

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

    # -- what visitors do -------------------------------------------------------------------

    def browse(self, interest: str) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            self.goto(self.category_page(interest))
            if rng.random() < 0.4:
                brand = self.prices[rng.choice(self.cat.by_category[interest])]["brand"]
                filtered = (f"{self.url}?brand={brand}", "", self.height, -1, False)
                self.goto(filtered, spa=True)
                self.occurred("filterApplied", {"filter": "brand", "value": brand})
        elif r < 0.6:
            term = rng.choice(SEARCH_TERMS)
            query = term.replace(" ", "+")
            self.goto(self.static_page(f"/search?q={query}", f"Search results for {term}", 5000))
            self.occurred("searchPerformed", {"query": term, "results": rng.randint(0, 48)})
        elif r < 0.75:
            self.goto(self.home_page())
        else:
            path, title, height = rng.choice(CONTENT_PAGES)
            self.goto(self.static_page(path, title, height))
            if path == "/help/contact" and rng.random() < 0.5:
                self.lead("contact")
            elif rng.random() < 0.15:
                self.occurred("chatOpened", {})

    def shop(self, interest: str, will_cart: bool, will_checkout: bool) -> None:
        rng = self.rng
        count = 1
        while rng.random() < 0.55 and count < 12:
            count += 1
        add_at = rng.randrange(count) if will_cart else -1
        for i in range(count):
            product = self.pick_product(interest)
            self.goto(self.product_page(product))
            self.view_product(product)
            if i == add_at or (0 <= add_at < i and rng.random() < 0.4):
                self.add_to_cart(product)
            r = rng.random()
            if r < 0.05:
                self.occurred(
                    "wishlistItemAdded",
                    {"productId": product["productId"], "source": "product-page", "inStock": True},
                )
            elif r < 0.08:
                video = f"v-{product['productId']}"
                self.occurred("videoPlayed", {"videoId": video, "autoplay": False, "chapter": None})
                if rng.random() < 0.5:
                    self.goal("video-50-percent")
            elif r < 0.1:
                self.occurred(
                    "pollAnswered", {"pollId": "fit-survey", "answer": "true to size", "score": 4}
                )
        if not will_cart:
            return
        self.goto(self.static_page("/cart", "Your cart", 1400, 3))
        self.tick(200, 2000)
        self.emit({"@type": "cartViewed", "cart": self.cart_payload()})
        if rng.random() < 0.2:
            self.add_to_cart(self.prices[rng.choice(self.cat.by_category["gift-cards"])])
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            self.change_cart(keep=will_checkout)
        if rng.random() < 0.15:
            self.apply_coupon()
            self.tick(300, 3000)
            self.cart_time = self.t
            self.emit({"@type": "cartModified", "cart": self.cart_payload()})
        if rng.random() < 0.3:
            self.tick(1000, 30_000)
            self.emit({"@type": "cartViewed", "cart": self.cart_payload()})

    def checkout(self, will_order: bool) -> None:
        rng = self.rng
        if self.cart_coupon is None and rng.random() < 0.2:
            self.apply_coupon()
        self.goto(self.static_page("/checkout", "Checkout", 1800))
        self.order_seq[0] += 1
        order_id = f"ACME-{100000 + self.order_seq[0]}"
        self.tick(200, 3000)
        self.emit(
            {
                "@type": "checkoutStarted",
                "cart": self.cart_payload(),
                "orderId": None if rng.random() < 0.5 else order_id,
            }
        )
        self.goto(self.static_page("/checkout/shipping", "Shipping", 1800), spa=True)
        self.goto(self.static_page("/checkout/payment", "Payment", 1800), spa=True)
        if not will_order:
            return
        self.dwell(40.0)
        order = self.order_payload(order_id)
        self.emit({"@type": "orderPlaced", "order": order})
        self.ordered = True
        self.cart = []
        page = self.static_page(f"/checkout/confirmation?order={order_id}", "Thank you", 1500)
        self.goto(page)
        self.goal("purchase", order["total"])
        if rng.random() < 0.5:
            self.tick(5, 200)
            self.emit(self.audience_matched(), web=False)

    def apply_coupon(self) -> None:
        code = self.rng.choice(COUPONS)
        self.cart_coupon = code
        self.occurred("couponApplied", {"code": code, "valid": True})

    def sign_in(self) -> None:
        self.goto(self.static_page("/login", "Sign in", 1200))
        self.dwell(15.0)
        self.emit({"@type": "userSignedIn", "externalUserId": self.user.ext_id})
        self.signed_in = True

    def sign_up(self) -> None:
        self.goto(self.static_page("/signup", "Create an account", 1400))
        self.dwell(40.0)
        self.emit({"@type": "userSignedUp", "externalUserId": self.user.ext_id})
        self.tick(100, 1500)
        self.emit({"@type": "userSignedIn", "externalUserId": self.user.ext_id})
        self.goal("account-created")
        self.user.kind = "member"
        self.signed_in = True

    def lead(self, source: str) -> None:
        rng = self.rng
        self.dwell(20.0)
        payload: dict[str, Any] = {"@type": "leadGenerated"}
        if rng.random() < 0.7:
            payload["leadId"] = f"lead-{rng.getrandbits(40):010x}"
        if rng.random() < 0.5:
            payload["currency"] = self.user.currency
            payload["value"] = f"{rng.choice((5, 10, 25, 150)) * self.rate:.2f}"
        elif rng.random() < 0.3:
            payload["value"] = "0"
        self.emit(payload)
        self.goal("newsletter-signup" if source == "newsletter" else "contact:form-submitted")

    # -- products, carts and orders ---------------------------------------------------------

    def pick_product(self, interest: str) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.7:
            return self.prices[rng.choice(self.cat.by_category[interest])]
        return rng.choice(self.prices)

    def product_details(self, product: dict[str, Any]) -> dict[str, Any]:
        details = dict(product)
        if self.send_currency:
            details["currency"] = self.product_currency
        return details

    def view_product(self, product: dict[str, Any]) -> None:
        self.tick(20, 600)
        self.emit({"@type": "productViewed", "product": self.product_details(product)})

    def add_to_cart(self, product: dict[str, Any]) -> None:
        rng = self.rng
        for item in self.cart:
            if item[0] is product:
                item[1] += 1
                break
        else:
            r = rng.random()
            rate, coupon = (
                (0.1, "BUNDLE2") if r < 0.12 else ((0.05, None) if r < 0.2 else (0, None))
            )
            self.cart.append([product, 2 if rng.random() < 0.15 else 1, rate, coupon])
        self.tick(300, 5000)
        self.cart_time = self.t
        self.emit({"@type": "cartModified", "cart": self.cart_payload()})

    def change_cart(self, keep: bool) -> None:
        rng = self.rng
        cart = self.cart
        if not cart:
            return
        item = rng.choice(cart)
        if rng.random() < 0.5:
            item[1] += 1
        elif item[1] > 1:
            item[1] -= 1
        elif len(cart) > 1 or not keep:
            cart.remove(item)
        else:
            item[1] += 1
        self.tick(1000, 20_000)
        self.cart_time = self.t
        self.emit({"@type": "cartModified", "cart": self.cart_payload()})

    def cart_payload(self) -> dict[str, Any]:
        currency, rate = self.user.currency, self.rate
        items = []
        subtotal = 0.0
        for index, (product, quantity, discount_rate, coupon) in enumerate(self.cart):
            gross = product["displayPrice"] * quantity
            discount = round(gross * discount_rate, 2) if discount_rate else None
            total = round(gross - (discount or 0.0), 2)
            subtotal += total
            items.append(
                {
                    "index": index,
                    "product": self.product_details(product),
                    "quantity": quantity,
                    "total": total,
                    "discount": discount,
                    "coupon": coupon,
                }
            )
        subtotal = round(subtotal, 2)
        if not self.rich:
            return {
                "currency": currency,
                "items": items,
                "subtotal": None,
                "shippingPrice": None,
                "taxes": None,
                "costs": None,
                "discount": None,
                "total": subtotal,
                "coupon": None,
                "lastUpdateTime": self.cart_time,
            }
        shipping = 0.0 if subtotal >= 100 * rate or not items else round(9.9 * rate, 2)
        name, tax_rate = _TAX.get(currency, ("vat", 0.2))
        tax = round(subtotal * tax_rate, 2)
        discount = round(subtotal * 0.1, 2) if self.cart_coupon else None
        total = subtotal + shipping - (discount or 0.0)
        if currency in _ADDS_TAX:
            total += tax  # VAT-style taxes are already in the prices
        return {
            "currency": currency,
            "items": items,
            "subtotal": subtotal,
            "shippingPrice": shipping,
            "taxes": {name: tax},
            "costs": {
                "fulfillment": round(2.5 * rate * len(items), 2),
                "paymentFee": round(subtotal * 0.029, 2),
            }
            if self.costs
            else None,
            "discount": discount,
            "total": round(max(total, 0.0), 2),
            "coupon": self.cart_coupon,
            "lastUpdateTime": self.cart_time,
        }

    def order_payload(self, order_id: str) -> dict[str, Any]:
        rng = self.rng
        cart = self.cart_payload()
        method = rng.choice(PAYMENT_METHODS[:4] + (("Pix",) if self.user.currency == "BRL" else ()))
        installments = None
        if self.user.currency == "BRL" and method == "Credit Card":
            installments = rng.randint(1, 10)
        elif rng.random() < 0.4:
            installments = 1
        return {
            "orderId": order_id,
            "currency": cart["currency"],
            "items": cart["items"],
            "subtotal": cart["subtotal"],
            "shippingPrice": cart["shippingPrice"],
            "taxes": cart["taxes"],
            "costs": cart["costs"],
            "discount": cart["discount"],
            "total": cart["total"],
            "coupon": cart["coupon"],
            "paymentMethod": None if rng.random() < 0.25 else method,
            "installments": installments,
            "status": rng.choice(_STATUSES),
        }

    # -- server-side detections ---------------------------------------------------------------

    def location(self) -> dict[str, Any]:
        rng = self.rng
        place, level = self.user.place, self.user.level
        if level == "unknown":
            return {
                "continent": None,
                "country": None,
                "region": {"name": None, "code": None},
                "city": None,
                "district": None,
                "timezone": None,
                "coordinates": None,
                "source": rng.choice(("UNKNOWN", None)),
            }
        full = level == "full"
        location: dict[str, Any] = {
            "continent": place.continent,
            "country": place.country,
            "region": {"name": place.region, "code": place.region_code if full else None},
            "city": place.city if full else None,
            "district": rng.choice(place.districts) if full and place.districts else None,
            "timezone": place.timezone,
            "coordinates": {
                "latitude": round(place.lat + rng.uniform(-0.05, 0.05), 4),
                "longitude": round(place.lon + rng.uniform(-0.05, 0.05), 4),
            }
            if full
            else None,
            "currency": {"name": place.currency[1], "code": place.currency[0]}
            if full or rng.random() < 0.5
            else None,
            "phoneCode": place.phone_code,
            "population": str(place.population) if full else None,
            "postalCode": place.postal_code if full else None,
            "languages": list(place.languages),
        }
        if full and place.tags:
            location["tags"] = list(place.tags)
        location["source"] = rng.choice(_SOURCES) if full else "IP"
        return location

    def client(self) -> dict[str, Any]:
        browser, version, os_name, os_version = self.user.client
        kind = self.user.client_kind
        return {
            "browser": {"name": browser, "version": version, "type": kind.browser_type},
            "device": {
                "name": kind.device,
                "vendor": kind.vendor,
                "category": kind.category,
                "operatingSystem": {"name": os_name, "version": os_version},
            },
        }

    def audience_matched(self) -> dict[str, Any]:
        rng = self.rng
        payload: dict[str, Any] = {"@type": "audienceMatched"}
        if rng.random() < 0.9:
            picked = rng.sample(self.cat.audiences, rng.randint(1, 3))
            payload["audienceIds"] = [dict(a) for a in picked]
        return payload

    def slot(self, index: int) -> dict[str, Any]:
        rng = self.rng
        slot = self.cat.slots[index]
        experience = rng.choice(slot.experiences)
        audience = rng.choice(self.cat.audiences)
        experiment = experience["experiment"]
        variant = rng.randrange(2) if experiment is not None else None
        personalization: dict[str, Any] = {
            "audienceId": audience["id"],
            "slotId": slot.slot_id,
        }
        r = rng.random()
        if r < 0.7:
            personalization["slotVersion"] = {
                "majorVersion": str(slot.major),
                "minorVersion": str(slot.minor),
            }
        elif r < 0.8:
            personalization["slotVersion"] = {"majorVersion": str(slot.major)}
        elif r < 0.9:
            personalization["slotVersion"] = None
        personalization["experienceId"] = experience["id"]
        personalization["contentId"] = experience["contents"][variant or 0]
        personalization["assignedVariant"] = (
            None
            if experiment is None
            else {"experimentId": experiment["id"], "variantId": experiment["variants"][variant][0]}
        )
        r = rng.random()
        if r < 0.6:
            personalization["locale"] = self.user.locale.lower()
        elif r < 0.8:
            personalization["locale"] = None
        # metadata of since-renamed or deleted slots and experiences comes back null
        stale = rng.random() < 0.05
        return {
            "@type": "slotPersonalized",
            "personalization": personalization,
            "metadata": {
                "audienceName": audience["name"],
                "audienceCustomId": audience["customId"],
                "slotName": None if stale else slot.name,
                "slotCustomId": slot.custom_id,
                "experienceName": None if stale else experience["name"],
                "experimentName": None if experiment is None else experiment["name"],
                "variantName": None if variant is None else experiment["variants"][variant][1],
            },
        }
