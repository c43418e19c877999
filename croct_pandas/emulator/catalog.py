"""The synthetic shop's fixed data: the application, places, browsers, pages and products.

Everything here is either a constant or built from a seed by :func:`build_catalog`, so a store
generated twice from one seed is the same on any machine and any day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APP_METADATA",
    "CLIENTS",
    "CURRENCIES",
    "LOCATIONS",
    "SHOP",
    "Catalog",
    "build_catalog",
    "new_uuid",
]

#: The six names and slugs every response carries (one organization, workspace and application).
APP_METADATA: dict[str, str] = {
    "organizationName": "Acme Retail Group",
    "organizationSlug": "acme-retail",
    "workspaceName": "Storefront",
    "workspaceSlug": "storefront",
    "applicationName": "Acme Shop (web)",
    "applicationSlug": "acme-shop-web",
}

SHOP = "https://www.acme-shop.com"
CDN = "https://cdn.acme-shop.com"

#: masks that make 128 random bits a version-4, RFC 4122 variant UUID
UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))
UUID_SET = (0x4 << 76) | (0x2 << 62)


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (reproducible, unlike :func:`uuid.uuid4`).

    Examples
    --------
    >>> new_uuid(random.Random(1))[14], len(new_uuid(random.Random(1)))
    ('4', 36)
    """
    h = "%032x" % ((rng.getrandbits(128) & UUID_CLEAR) | UUID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: code -> (US dollars per unit is 1/rate: price in code = usd * rate, name)
CURRENCIES: dict[str, tuple[float, str]] = {
    "USD": (1.0, "US Dollar"),
    "EUR": (0.92, "Euro"),
    "GBP": (0.79, "Pound Sterling"),
    "BRL": (5.0, "Brazilian Real"),
    "CAD": (1.35, "Canadian Dollar"),
    "AUD": (1.5, "Australian Dollar"),
}


@dataclass(frozen=True)
class Place:
    """A city users live in; ``shop_currency`` is the currency the shop charges them in."""

    continent: str
    country: str
    region: str
    region_code: str
    city: str
    districts: tuple[str, ...]
    timezone: str
    utc_offset: float
    lat: float
    lon: float
    currency: tuple[str, str]
    phone_code: str
    population: int
    postal_code: str
    languages: tuple[str, ...]
    tags: tuple[str, ...]
    weight: int
    shop_currency: str
    locale: str


def _p(*a: Any) -> Place:
    return Place(*a)


# fmt: off
_USD, _EUR = ("USD", "US Dollar"), ("EUR", "Euro")
LOCATIONS: tuple[Place, ...] = (
    _p("NA", "US", "New York", "NY", "New York", ("Manhattan", "Brooklyn", "Queens"),
       "America/New_York", -5, 40.7128, -74.006, _USD, "+1", 8336817, "10001",
       ("en-us", "es-us"), ("urban",), 14, "USD", "en-US"),
    _p("NA", "US", "California", "CA", "Los Angeles", ("Hollywood", "Venice"),
       "America/Los_Angeles", -8, 34.0522, -118.2437, _USD, "+1", 3898747, "90012",
       ("en-us", "es-us"), ("beach", "urban"), 10, "USD", "en-US"),
    _p("NA", "US", "Illinois", "IL", "Chicago", ("The Loop",), "America/Chicago", -6,
       41.8781, -87.6298, _USD, "+1", 2746388, "60601", ("en-us",), ("urban", "lake"), 6,
       "USD", "en-US"),
    _p("NA", "US", "Texas", "TX", "Austin", (), "America/Chicago", -6, 30.2672, -97.7431,
       _USD, "+1", 961855, "73301", ("en-us", "es-us"), (), 5, "USD", "en-US"),
    _p("NA", "CA", "Ontario", "ON", "Toronto", ("Yorkville",), "America/Toronto", -5,
       43.6532, -79.3832, ("CAD", "Canadian Dollar"), "+1", 2794356, "M5H 2N2",
       ("en-ca", "fr-ca"), ("urban", "lake"), 5, "CAD", "en-CA"),
    _p("NA", "CA", "Quebec", "QC", "Montreal", ("Le Plateau",), "America/Toronto", -5,
       45.5019, -73.5674, ("CAD", "Canadian Dollar"), "+1", 1762949, "H2Y 1C6",
       ("fr-ca", "en-ca"), ("urban", "island"), 3, "CAD", "fr-CA"),
    _p("SA", "BR", "São Paulo", "SP", "São Paulo", ("Pinheiros", "Moema", "Vila Mariana"),
       "America/Sao_Paulo", -3, -23.5505, -46.6333, ("BRL", "Brazilian Real"), "+55",
       12325232, "01310-100", ("pt-br",), ("urban",), 12, "BRL", "pt-BR"),
    _p("SA", "BR", "Rio de Janeiro", "RJ", "Rio de Janeiro", ("Copacabana", "Botafogo"),
       "America/Sao_Paulo", -3, -22.9068, -43.1729, ("BRL", "Brazilian Real"), "+55",
       6747815, "22070-011", ("pt-br",), ("beach", "ocean"), 7, "BRL", "pt-BR"),
    _p("SA", "BR", "Santa Catarina", "SC", "Florianópolis", ("Lagoa da Conceição",),
       "America/Sao_Paulo", -3, -27.5954, -48.548, ("BRL", "Brazilian Real"), "+55",
       508826, "88010-000", ("pt-br",), ("beach", "island"), 3, "BRL", "pt-BR"),
    _p("EU", "GB", "England", "ENG", "London", ("Camden", "Westminster", "Hackney"),
       "Europe/London", 0, 51.5074, -0.1278, ("GBP", "Pound Sterling"), "+44", 8982000,
       "SW1A 1AA", ("en-gb",), ("urban",), 9, "GBP", "en-GB"),
    _p("EU", "GB", "Scotland", "SCT", "Edinburgh", ("Leith",), "Europe/London", 0,
       55.9533, -3.1883, ("GBP", "Pound Sterling"), "+44", 506520, "EH1 1YZ", ("en-gb",),
       ("historic",), 2, "GBP", "en-GB"),
    _p("EU", "DE", "Berlin", "BE", "Berlin", ("Mitte", "Kreuzberg"), "Europe/Berlin", 1,
       52.52, 13.405, _EUR, "+49", 3645000, "10115", ("de-de",), ("urban",), 6, "EUR",
       "de-DE"),
    _p("EU", "DE", "Bavaria", "BY", "Munich", ("Schwabing",), "Europe/Berlin", 1, 48.1351,
       11.582, _EUR, "+49", 1488202, "80331", ("de-de",), ("mountains",), 3, "EUR", "de-DE"),
    _p("EU", "FR", "Île-de-France", "IDF", "Paris", ("Le Marais", "Montmartre"),
       "Europe/Paris", 1, 48.8566, 2.3522, _EUR, "+33", 2148000, "75001", ("fr-fr",),
       ("urban", "historic"), 5, "EUR", "fr-FR"),
    _p("EU", "PT", "Lisbon", "11", "Lisbon", ("Alfama", "Belém"), "Europe/Lisbon", 0,
       38.7223, -9.1393, _EUR, "+351", 544851, "1100-148", ("pt-pt",), ("beach", "ocean"),
       3, "EUR", "pt-PT"),
    _p("EU", "ES", "Madrid", "MD", "Madrid", ("Salamanca", "Chamberí"), "Europe/Madrid", 1,
       40.4168, -3.7038, _EUR, "+34", 3223000, "28001", ("es-es",), ("urban",), 4, "EUR",
       "es-ES"),
    _p("OC", "AU", "New South Wales", "NSW", "Sydney", ("Bondi", "Surry Hills"),
       "Australia/Sydney", 11, -33.8688, 151.2093, ("AUD", "Australian Dollar"), "+61",
       5312000, "2000", ("en-au",), ("beach", "ocean"), 4, "AUD", "en-AU"),
    _p("AS", "JP", "Tokyo", "13", "Tokyo", ("Shibuya", "Shinjuku"), "Asia/Tokyo", 9,
       35.6762, 139.6503, ("JPY", "Japanese Yen"), "+81", 13960000, "150-0002", ("ja-jp",),
       ("urban",), 3, "USD", "ja-JP"),
    _p("AS", "IN", "Maharashtra", "MH", "Mumbai", ("Bandra", "Colaba"), "Asia/Kolkata", 5.5,
       19.076, 72.8777, ("INR", "Indian Rupee"), "+91", 12442373, "400001",
       ("hi-in", "mr-in", "en-in"), ("urban", "ocean"), 3, "USD", "en-IN"),
    _p("AF", "ZA", "Western Cape", "WC", "Cape Town", ("Sea Point",), "Africa/Johannesburg",
       2, -33.9249, 18.4241, ("ZAR", "South African Rand"), "+27", 4618000, "8001",
       ("en-za", "af-za", "xh-za"), ("beach", "mountains"), 2, "USD", "en-ZA"),
)

# fmt: on


@dataclass(frozen=True)
class ClientKind:
    """A browser on a device, with the user-agent template its pages send."""

    browser: str | None
    versions: tuple[str, ...]
    browser_type: str
    device: str | None
    vendor: str | None
    category: str
    os: str | None
    os_versions: tuple[str | None, ...]
    user_agent: str
    weight: int


# fmt: off
_WIN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
_MAC_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
_IPH_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15"
_AND_UA = "Mozilla/5.0 (Linux; Android {os}; {dev}) AppleWebKit/537.36 (KHTML, like Gecko)"
CLIENTS: tuple[ClientKind, ...] = (
    ClientKind("Chrome", ("120.0.6099.130", "121.0.6167.85", "122.0.6261.94"), "WEB", None,
               None, "DESKTOP", "Windows", ("10", "11"), _WIN_UA + " Chrome/{v} Safari/537.36",
               20),
    ClientKind("Chrome", ("121.0.6167.85", "122.0.6261.94"), "WEB", "Mac", "Apple", "DESKTOP",
               "macOS", ("14.2.1", "13.6.3"), _MAC_UA + " Chrome/{v} Safari/537.36", 8),
    ClientKind("Safari", ("17.2", "17.1", "16.6"), "WEB", "Mac", "Apple", "DESKTOP", "macOS",
               ("14.2.1", "13.6.3"), _MAC_UA + " Version/{v} Safari/605.1.15", 6),
    ClientKind("Edge", ("120.0.2210.91", "121.0.2277.83"), "WEB", None, None, "DESKTOP",
               "Windows", ("10", "11"), _WIN_UA + " Chrome/120.0.0.0 Safari/537.36 Edg/{v}", 5),
    ClientKind("Firefox", ("121.0", "122.0"), "WEB", None, None, "DESKTOP", "Linux", (None,),
               "Mozilla/5.0 (X11; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}", 3),
    ClientKind("Mobile Safari", ("17.2", "17.1", "16.6"), "WEB", "iPhone", "Apple", "MOBILE",
               "iOS", ("17.2", "17.1", "16.7.4"),
               _IPH_UA + " (KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1", 22),
    ClientKind("Chrome Mobile", ("120.0.6099.144", "121.0.6167.101"), "WEB", "Galaxy S23",
               "Samsung", "MOBILE", "Android", ("14", "13"),
               _AND_UA + " Chrome/{v} Mobile Safari/537.36", 12),
    ClientKind("Chrome Mobile", ("121.0.6167.101",), "WEB", "Pixel 8", "Google", "MOBILE",
               "Android", ("14",), _AND_UA + " Chrome/{v} Mobile Safari/537.36", 4),
    ClientKind("Samsung Internet", ("23.0", "24.0"), "WEB", "Galaxy A54", "Samsung", "MOBILE",
               "Android", ("14", "13"),
               _AND_UA + " SamsungBrowser/{v} Chrome/115.0.0.0 Mobile Safari/537.36", 3),
    ClientKind("Mobile Safari", ("17.2",), "WEB", "iPad", "Apple", "TABLET", "iPadOS",
               ("17.2",), "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15"
               " (KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1", 4),
    ClientKind("Instagram", ("312.0.0.32.112",), "IN_APP", "iPhone", "Apple", "MOBILE", "iOS",
               ("17.2",), _IPH_UA + " (KHTML, like Gecko) Mobile/15E148 Instagram {v}", 4),
    ClientKind("Facebook", ("447.0.0.38.107",), "IN_APP", "Galaxy S23", "Samsung", "MOBILE",
               "Android", ("14",), _AND_UA + " Chrome/121.0.6167.101 Mobile Safari/537.36"
               " [FB_IAB/FB4A;FBAV/{v};]", 2),
    ClientKind("Googlebot", ("2.1",), "CRAWLER", None, None, "BOT", None, (None,),
               "Mozilla/5.0 (compatible; Googlebot/{v}; +http://www.google.com/bot.html)", 2),
    ClientKind(None, (), "OTHER", "Smart TV", "LG", "OTHER", "webOS", ("6.0",),
               "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko)", 1),
    ClientKind(None, (), "UNKNOWN", None, None, "UNKNOWN", None, (None,),
               "Mozilla/5.0 (compatible)", 1),
)
# fmt: on

#: (referrer or None for direct traffic, landing kind, utm query or "", weight)
# fmt: off
REFERRERS: tuple[tuple[str | None, str, str, int], ...] = (
    (None, "home", "", 24),
    ("https://www.google.com/", "search", "", 28),
    ("https://www.google.com/", "product",
     "?utm_source=google&utm_medium=cpc&utm_campaign=shopping", 6),
    ("https://www.bing.com/", "search", "", 4),
    ("https://duckduckgo.com/", "search", "", 3),
    ("https://www.facebook.com/", "product",
     "?utm_source=facebook&utm_medium=social&utm_campaign=new_arrivals", 6),
    ("https://l.instagram.com/", "product",
     "?utm_source=instagram&utm_medium=social&utm_campaign=new_arrivals", 6),
    ("https://t.co/x8Kd2LmQpz", "product", "", 2),
    ("https://www.youtube.com/", "category", "", 3),
    ("https://www.pinterest.com/", "product", "", 3),
    ("https://mail.google.com/", "category",
     "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly_digest", 5),
    ("https://www.reddit.com/r/BuyItForLife/", "product", "", 2),
    ("https://www.bestreviews-weekly.com/top-picks", "product",
     "?utm_source=bestreviews&utm_medium=affiliate&utm_campaign=top_picks", 2),
)
# fmt: on

#: Relative traffic by local hour: quiet nights, a lunch bump, a peak in the evening.
# fmt: off
HOUR_WEIGHTS: tuple[int, ...] = (
    3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 8, 10, 9, 8, 8, 9, 11, 13, 16, 18, 17, 12, 6,
)

SEARCH_TERMS: tuple[str, ...] = (
    "running shoes", "rain jacket", "wireless earbuds", "backpack", "yoga mat", "coffee grinder",
    "hiking boots", "gift card", "water bottle", "linen shirt", "kids sneakers", "desk lamp",
    "sale", "waterproof", "tent 2 person", "bluetooth speaker", "cookbook", "socks",
)
# fmt: on

#: Static pages: (path, title, page height in px)
CONTENT_PAGES: tuple[tuple[str, str, int], ...] = (
    ("/blog/how-to-choose-running-shoes", "How to choose running shoes", 5200),
    ("/blog/packing-list-for-a-weekend-hike", "Packing list for a weekend hike", 4800),
    ("/help/shipping-and-returns", "Shipping and returns", 2600),
    ("/help/contact", "Contact us", 1800),
    ("/stores", "Find a store", 2200),
    ("/about", "About Acme", 2400),
)

COUPONS: tuple[str, ...] = ("WELCOME10", "SPRING-SALE", "FREESHIP", "VIP15", "BUNDLE2")
PAYMENT_METHODS: tuple[str, ...] = ("Credit Card", "PayPal", "Apple Pay", "Google Pay", "Pix")

#: (slug, name, brands, product nouns, (min, max) USD price, variants)
# fmt: off
_CATEGORIES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[int, int],
                         tuple[str, ...]], ...] = (
    ("shoes", "Shoes", ("Northpeak", "Strider", "Veloz", "Kumo"),
     ("Running Shoe", "Trail Runner", "Sneaker", "Hiking Boot", "Slip-On"), (45, 180),
     ("US 8 / Black", "US 9 / White", "US 10 / Grey", "EU 42 / Navy")),
    ("apparel", "Apparel", ("Northpeak", "Linea", "Harbor & Co"),
     ("Rain Jacket", "Linen Shirt", "Fleece Hoodie", "Merino Tee", "Chino Pants"), (19, 220),
     ("S / Navy", "M / Olive", "L / Black", "XL / Sand")),
    ("electronics", "Electronics", ("Sonique", "Voltra", "Pixelbay"),
     ("Wireless Earbuds", "Bluetooth Speaker", "Smart Watch", "Power Bank", "Action Camera"),
     (25, 450), ("Graphite", "Silver", "128GB Midnight", "Arctic White")),
    ("outdoor", "Outdoor & Camping", ("Northpeak", "Ridgeline", "Campo"),
     ("Backpack 30L", "Tent 2-Person", "Sleeping Bag", "Water Bottle", "Headlamp"), (12, 390),
     ("Forest Green", "Orange", "Slate")),
    ("home-kitchen", "Home & Kitchen", ("Casa Bela", "Brewmaster", "Hearth"),
     ("Coffee Grinder", "Desk Lamp", "Cast Iron Skillet", "Linen Throw", "French Press"),
     (15, 260), ("Matte Black", "Copper", "Natural")),
    ("sports", "Sports & Fitness", ("Strider", "Core Labs", "Veloz"),
     ("Yoga Mat", "Kettlebell 12kg", "Resistance Bands", "Cycling Gloves", "Foam Roller"),
     (9, 140), ("Purple", "Black", "Set of 3")),
    ("books", "Books", ("Lighthouse Press", "Atlas Books"),
     ("Trail Cookbook", "Field Guide to Birds", "The Long Walk", "Knots and Ropes"), (9, 45),
     ("Paperback", "Hardcover")),
)
# fmt: on


@dataclass(frozen=True)
class Slot:
    """A personalised slot and what it can serve: (experience, audience, experiment) rows."""

    slot_id: str
    name: str
    custom_id: str | None
    major: int
    minor: int
    experiences: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Catalog:
    """Products (one dict per product and currency, without ``currency``), audiences, slots."""

    products: tuple[dict[str, Any], ...]
    prices: dict[str, tuple[dict[str, Any], ...]]
    category_of: dict[str, str]
    #: category slug -> indices into ``products`` (and into each ``prices`` tuple)
    by_category: dict[str, tuple[int, ...]]
    categories: tuple[tuple[str, str], ...]
    audiences: tuple[dict[str, Any], ...]
    slots: tuple[Slot, ...]


def _price(usd: float, rate: float) -> float:
    # shops price just under a round number: 49.90, 249.99
    whole = max(1, int(usd * rate))
    return whole + (0.9 if whole % 3 else 0.99)


def build_catalog(seed: int) -> Catalog:
    """Build the shop's products, audiences and personalised slots for a seed.

    Examples
    --------
    >>> cat = build_catalog(0)
    >>> len(cat.products) > 50, sorted(cat.prices) == sorted(CURRENCIES)
    (True, True)
    """
    rng = random.Random(f"catalog:{seed}")
    products: list[dict[str, Any]] = []
    usd: list[float] = []
    on_sale: list[float | None] = []
    category_of: dict[str, str] = {}
    used_ids: set[str] = set()
    for slug, name, brands, nouns, (low, high), variants in _CATEGORIES:
        for noun in nouns:
            for brand in rng.sample(brands, k=min(len(brands), 2)):
                pid = str(rng.randint(1000, 99999))
                while pid in used_ids:
                    pid = str(rng.randint(1000, 99999))
                used_ids.add(pid)
                model = rng.choice(("", "Pro ", "Lite ", "2 ", "X ", "Classic ", "Air "))
                title = f"{brand} {model}{noun}"
                page = f"{SHOP}/p/{title.lower().replace(' ', '-').replace('&', 'and')}-{pid}"
                products.append(
                    {
                        "productId": pid,
                        "sku": None
                        if rng.random() < 0.15
                        else f"{slug[:3].upper()}-{brand[:3].upper()}-{pid}",
                        "name": title,
                        "category": name,
                        "brand": brand,
                        "variant": None if rng.random() < 0.25 else rng.choice(variants),
                        "displayPrice": 0.0,
                        "originalPrice": None,
                        "url": None if rng.random() < 0.08 else page,
                        "imageUrl": None if rng.random() < 0.1 else f"{CDN}/img/{pid}/main.jpg",
                    }
                )
                usd.append(rng.uniform(low, high))
                on_sale.append(rng.uniform(1.15, 1.5) if rng.random() < 0.35 else None)
                category_of[pid] = slug
    for amount in (25, 50, 100):
        # gift cards: the app sends no category, brand or variant for them
        pid = f"GC{amount}"
        products.append(
            {
                "productId": pid,
                "sku": f"GIFT-{amount}",
                "name": f"Acme Gift Card {amount}",
                "category": None,
                "brand": None,
                "variant": None,
                "displayPrice": 0.0,
                "originalPrice": None,
                "url": f"{SHOP}/gift-cards",
                "imageUrl": f"{CDN}/img/gift-card-{amount}.png",
            }
        )
        usd.append(float(amount))
        on_sale.append(None)
        category_of[pid] = "gift-cards"
    prices: dict[str, tuple[dict[str, Any], ...]] = {}
    for code, (rate, _) in CURRENCIES.items():
        priced = []
        for product, base, markup in zip(products, usd, on_sale):
            p = dict(product)
            p["displayPrice"] = _price(base, rate)
            if markup is not None:
                p["originalPrice"] = _price(base * markup, rate)
            priced.append(p)
        prices[code] = tuple(priced)
    return Catalog(
        products=tuple(products),
        prices=prices,
        category_of=category_of,
        by_category={
            slug: tuple(i for i, p in enumerate(products) if category_of[p["productId"]] == slug)
            for slug in sorted(set(category_of.values()))
        },
        categories=tuple((slug, name) for slug, name, *_ in _CATEGORIES),
        audiences=_audiences(rng),
        slots=_slots(rng),
    )


_AUDIENCE_NAMES: tuple[tuple[str | None, str | None], ...] = (
    ("Returning customers", "returning-customers"),
    ("First-time visitors", "first-time"),
    ("Runners", "runners"),
    ("High cart value", None),
    ("Mobile shoppers", "mobile"),
    ("Newsletter subscribers", "newsletter"),
    (None, None),  # an audience deleted since: the export no longer knows its names
)


def _audiences(rng: random.Random) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"id": new_uuid(rng), "name": name, "customId": custom} for name, custom in _AUDIENCE_NAMES
    )


def _slots(rng: random.Random) -> tuple[Slot, ...]:
    specs = (
        ("Home hero banner", "home-hero", ("Spring sale hero", "Default hero")),
        ("Product recommendations", "pdp-recommendations", ("Similar items", "Best sellers")),
        ("Announcement bar", None, ("Free shipping notice",)),
        ("Cart upsell", "cart-upsell", ("Add a gift card", "Bundle offer")),
    )
    slots = []
    for name, custom, experiences in specs:
        rows = []
        for i, experience in enumerate(experiences):
            experiment = None
            if i == 0 and rng.random() < 0.8:
                experiment = {
                    "id": new_uuid(rng),
                    "name": f"{experience} test",
                    "variants": ((new_uuid(rng), "Control"), (new_uuid(rng), "Variant B")),
                }
            rows.append(
                {
                    "id": new_uuid(rng),
                    "name": experience,
                    "contents": (new_uuid(rng), new_uuid(rng)),
                    "experiment": experiment,
                }
            )
        slots.append(
            Slot(new_uuid(rng), name, custom, rng.randint(1, 4), rng.randint(0, 9), tuple(rows))
        )
    return tuple(slots)
