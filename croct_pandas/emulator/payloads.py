"""Product, cart and order payloads, as one session's tracking code writes them.

Shops differ in what their tracking code sends: some fill every nullable cart field, some only the
items and the total; some send a product's currency, a few send it as null. A
:class:`PayloadStyle` draws those choices once per session and then builds every payload the same
way.

Examples
--------
>>> import random
>>> style = PayloadStyle(random.Random(2), "USD")
>>> style.cart([], None, 0)["total"]
0.0
"""

from __future__ import annotations

import random
from typing import Any

from croct_pandas.emulator.catalog import CURRENCIES, PAYMENT_METHODS

__all__ = ["PayloadStyle"]

_TAX = {"USD": ("salesTax", 0.08), "CAD": ("salesTax", 0.13), "BRL": ("icms", 0.18)}
_ADDS_TAX = frozenset({"USD", "CAD"})
_STATUSES = ("PLACED", "PLACED", "PLACED", "PAID", "PAID", "COMPLETED", None, None)


class PayloadStyle:
    """How one session writes products, carts and orders in ``currency``.

    A cart is a list of ``[priced product, quantity, discount rate, coupon]`` items.
    """

    __slots__ = ("costs", "currency", "product_currency", "rate", "rich", "send_currency")

    def __init__(self, rng: random.Random, currency: str) -> None:
        # how much the shop's tracking code sends with carts (nullable fields stay null otherwise)
        self.rich = rng.random() < 0.6
        self.costs = rng.random() < 0.5
        # ProductDetails.currency is optional (0.7.0): some pages send it, a few send null
        r = rng.random()
        self.send_currency = r < 0.55
        self.product_currency = currency if r < 0.45 else None
        self.currency = currency
        self.rate = CURRENCIES[currency][0]

    def product(self, product: dict[str, Any]) -> dict[str, Any]:
        """The ``ProductDetails`` of a priced catalog product.

        Examples
        --------
        >>> style = PayloadStyle(random.Random(2), "EUR")
        >>> style.product({"productId": "p1"})["productId"]
        'p1'
        """
        details = dict(product)
        if self.send_currency:
            details["currency"] = self.product_currency
        return details

    def cart(self, cart: list[list[Any]], coupon: str | None, updated: int) -> dict[str, Any]:
        """The ``Cart`` payload of ``cart`` and its ``coupon``, last changed at ``updated``.

        Examples
        --------
        >>> style = PayloadStyle(random.Random(2), "USD")
        >>> product = {"productId": "p1", "displayPrice": 10.0}
        >>> payload = style.cart([[product, 2, 0, None]], None, 1)
        >>> payload["items"][0]["total"], payload["lastUpdateTime"]
        (20.0, 1)
        """
        currency, rate = self.currency, self.rate
        items = []
        subtotal = 0.0
        for index, (product, quantity, discount_rate, item_coupon) in enumerate(cart):
            gross = product["displayPrice"] * quantity
            discount = round(gross * discount_rate, 2) if discount_rate else None
            total = round(gross - (discount or 0.0), 2)
            subtotal += total
            items.append(
                {
                    "index": index,
                    "product": self.product(product),
                    "quantity": quantity,
                    "total": total,
                    "discount": discount,
                    "coupon": item_coupon,
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
                "lastUpdateTime": updated,
            }
        shipping = 0.0 if subtotal >= 100 * rate or not items else round(9.9 * rate, 2)
        name, tax_rate = _TAX.get(currency, ("vat", 0.2))
        tax = round(subtotal * tax_rate, 2)
        discount = round(subtotal * 0.1, 2) if coupon else None
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
            "coupon": coupon,
            "lastUpdateTime": updated,
        }

    def order(self, rng: random.Random, cart: dict[str, Any], order_id: str) -> dict[str, Any]:
        """The ``Order`` placed from a ``Cart`` payload, with payment method and status.

        Examples
        --------
        >>> style = PayloadStyle(random.Random(2), "BRL")
        >>> order = style.order(random.Random(1), style.cart([], None, 0), "ACME-100001")
        >>> order["orderId"], order["currency"]
        ('ACME-100001', 'BRL')
        """
        method = rng.choice(PAYMENT_METHODS[:4] + (("Pix",) if self.currency == "BRL" else ()))
        installments = None
        if self.currency == "BRL" and method == "Credit Card":
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
