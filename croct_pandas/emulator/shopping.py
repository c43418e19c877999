"""Shopping on top of browsing: product views, a cart filled and changed, checkout and orders.

Examples
--------
>>> import random
>>> from croct_pandas.emulator.catalog import CLIENTS, LOCATIONS, build_catalog
>>> rng = random.Random(4)
>>> user = User(rng, LOCATIONS[0], CLIENTS[0])
>>> session = Shopping(rng, build_catalog(4), user, 1_000_000, 0, [0])
>>> session.add_to_cart(session.pick_product("shoes"))
>>> session.events[-1]["payload"]["@type"], len(session.cart)
('cartModified', 1)
"""

from __future__ import annotations

import random
from typing import Any

from croct_pandas.emulator.browsing import Browsing
from croct_pandas.emulator.catalog import COUPONS, Catalog
from croct_pandas.emulator.detections import audience_matched
from croct_pandas.emulator.payloads import PayloadStyle
from croct_pandas.emulator.visitors import User

__all__ = ["Shopping"]


class Shopping(Browsing):
    """A session that can view products, keep a cart, check out and place an order.

    ``order_seq`` is a one-item list shared by every session of a store, so order ids count up
    across visitors.
    """

    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        user: User,
        t: int,
        origin: int,
        order_seq: list[int],
    ) -> None:
        super().__init__(rng, catalog, user, t, origin)
        # [priced product, quantity, discount rate, coupon]
        self.cart: list[list[Any]] = []
        self.cart_time = t
        self.cart_coupon: str | None = None
        self.ordered = False
        self.order_seq = order_seq
        self.style = PayloadStyle(rng, user.currency)

    def cart_payload(self) -> dict[str, Any]:
        return self.style.cart(self.cart, self.cart_coupon, self.cart_time)

    def view_product(self, product: dict[str, Any]) -> None:
        self.tick(20, 600)
        self.emit({"@type": "productViewed", "product": self.style.product(product)})

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

    def apply_coupon(self) -> None:
        code = self.rng.choice(COUPONS)
        self.cart_coupon = code
        self.occurred("couponApplied", {"code": code, "valid": True})

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
        order = self.style.order(rng, self.cart_payload(), order_id)
        self.emit({"@type": "orderPlaced", "order": order})
        self.ordered = True
        self.cart = []
        page = self.static_page(f"/checkout/confirmation?order={order_id}", "Thank you", 1500)
        self.goto(page)
        self.goal("purchase", order["total"])
        if rng.random() < 0.5:
            self.tick(5, 200)
            self.emit(audience_matched(rng, self.cat), web=False)
