"""One session of one visitor, played out from landing to leaving as wire events in time order.

The visit decides the story (where the visitor lands, whether they bounce, browse, sign in, fill
a cart, check out and order) and how it ends: a hidden tab that keeps pinging, and a cart left
behind that the server abandons half an hour after the last activity.

Examples
--------
>>> import random
>>> from croct_pandas.emulator.catalog import CLIENTS, LOCATIONS, build_catalog
>>> rng = random.Random(4)
>>> user = User(rng, LOCATIONS[0], CLIENTS[0])
>>> events = Visit(rng, build_catalog(4), user, 1_000_000, [0], 0).run()
>>> events[0]["payload"]["@type"], len({event["sessionId"] for event in events})
('tabOpened', 1)
"""

from __future__ import annotations

import random
from typing import Any

from croct_pandas.emulator.browsing import PINGS, SESSION_TIMEOUT
from croct_pandas.emulator.catalog import CONTENT_PAGES, REFERRERS, SEARCH_TERMS, Catalog, new_uuid
from croct_pandas.emulator.detections import audience_matched, client, location
from croct_pandas.emulator.shopping import Shopping
from croct_pandas.emulator.visitors import REFERRER_CUM, User, pick

__all__ = ["Visit"]


class Visit(Shopping):
    """One session of one visitor, played out as wire events in time order."""

    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        user: User,
        t: int,
        order_seq: list[int],
        origin: int,
    ) -> None:
        super().__init__(rng, catalog, user, t, origin, order_seq)
        self.signed_in = False

    def run(self) -> list[dict[str, Any]]:
        """Play the whole session; ``end`` is then the time of its last event."""
        rng, user = self.rng, self.user
        ref, kind, utm, _ = (
            (None, "home", "", 0) if self.bot else pick(rng, REFERRERS, REFERRER_CUM)
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
        self.emit({"@type": "locationDetected", "location": location(rng, user)}, web=False)
        self.tick(1, 40)
        self.emit({"@type": "clientDetected", "client": client(user)}, web=False)
        if rng.random() < 0.35:
            self.tick(5, 200)
            self.emit(audience_matched(rng, self.cat), web=False)
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
                self.pings_until(self.last + PINGS[pings - 1] + 1)
        if self.cart and not self.ordered:
            self.t = max(self.t, self.last + SESSION_TIMEOUT) + rng.randint(1000, 300_000)
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

    # -- what visitors do besides shopping ---------------------------------------------------

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
            payload["value"] = f"{rng.choice((5, 10, 25, 150)) * self.style.rate:.2f}"
        elif rng.random() < 0.3:
            payload["value"] = "0"
        self.emit(payload)
        self.goal("newsletter-signup" if source == "newsletter" else "contact:form-submitted")
